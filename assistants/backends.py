"""The two run APIs behind one interface.

An assistant is a local record first. A connection runs it through one of two backends:

- `AssistantsBackend`: the Assistants API v2 (`OpenAI-Beta: assistants=v2`), where the server
  still has it. A remote assistant (`asst_…`) is created, modified and deleted alongside the
  local one; a run is a thread-and-run, its output the assistant messages of that run.
- `ResponsesBackend`: the Responses API. Nothing lives remotely between runs; each run is one
  background response carrying the assistant's model, instructions and tools.

Backends only speak through `provider.client.ProviderClient` and never touch the ORM: they
read the attributes of the `Assistant` / `Run` they are given and return plain data. Every
failure is a `ProviderError`; an answer that is not the shape the spec gives is
`ProviderError(BAD_RESPONSE)`.
"""

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from assistants.models import PROVIDER_ID_MAX_LENGTH
from connections.models import RunApi
from provider.answer import Requester
from provider.endpoint import path_segment
from provider.errors import ErrorKind, ProviderError
from provider.runapi import ASSISTANTS, ASSISTANTS_BETA, RESPONSES
from provider.secrets import mask_secrets, safe_identifier

if TYPE_CHECKING:
    from assistants.models import Assistant, Run
    from connections.models import Connection


RUN_STATUSES = frozenset(
    {
        "queued",
        "in_progress",
        "requires_action",
        "cancelling",
        "cancelled",
        "failed",
        "completed",
        "incomplete",
        "expired",
    }
)
RESPONSE_STATUSES = frozenset(
    {"queued", "in_progress", "completed", "failed", "cancelled", "incomplete"}
)
# Pages of 100 followed at most when listing remote assistants (10,000 assistants).
MAX_LIST_PAGES = 100
# Pages of 100 looked through, newest first, for the copy an uncertain create may have made.
TAG_LOOKUP_PAGES = 10
# The metadata key that ties a remote assistant to the local record Tablero made it for (its
# id). It is added to what is sent, never stored in the record's metadata nor shown as the
# user's; it is left out when the user's own metadata already has this key or all 16 pairs.
TAG_KEY = "tablero_id"
PROVIDER_METADATA_PAIRS = 16  # the provider's limit on metadata pairs
# Token counts above this are not believed (and would not fit the database).
MAX_TOKENS = 2**31 - 1
# Messages looked at for a run's output (newest first).
MESSAGES_LIMIT = 20


@dataclass(frozen=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None


@dataclass(frozen=True)
class RunSnapshot:
    """What the provider says about a run right now."""

    status: str
    thread_id: str = ""
    remote_run_id: str = ""
    response_id: str = ""
    usage: Usage | None = None
    output_text: str = ""
    # A failed run's `last_error.code` / `error.code`, or an incomplete run's reason.
    error_code: str = ""
    error_message: str = ""
    completed_at: datetime | None = None
    # How long after its creation the provider itself ends the run if unfinished (an Assistants
    # API run's `expires_at` minus its `created_at`: both on the provider's clock, so a clock
    # that differs from Tablero's does not matter).
    lifetime: timedelta | None = None


@dataclass(frozen=True)
class TurnContext:
    """Where a conversation's next turn goes on from (empty for a first turn)."""

    # Assistants API: the conversation's thread, which the new run goes on.
    thread_id: str = ""
    # Assistants API: whether the turn's message is added to the thread with the run (not for
    # the retry of a run that reached the thread).
    add_message: bool = True
    # Responses API: the last answered turn's response, which the new one follows.
    previous_response_id: str = ""


class RunBackend(Protocol):
    name: str

    def create_assistant(self, assistant: "Assistant") -> str | None: ...

    def update_assistant(self, assistant: "Assistant") -> str | None: ...

    def delete_assistant(self, assistant: "Assistant") -> None: ...

    def list_remote_assistants(self, *, max_pages: int = ...) -> Iterator[dict[str, Any]]: ...

    def find_tagged_assistant(self, tag: str) -> str | None: ...

    def start_run(
        self, assistant: "Assistant", message: str, *, context: TurnContext = ...
    ) -> RunSnapshot: ...

    def get_run(self, run: "Run") -> RunSnapshot: ...

    def cancel_run(self, run: "Run") -> RunSnapshot: ...


# --- reading answers ------------------------------------------------------------------------


# A provider id: OpenAI's are `prefix_` and letters and digits; LiteLLM's background response
# ids are "resp_" and standard base64 (with "+", "/" and "="), about 470 characters. Kept
# whole up to PROVIDER_ID_MAX_LENGTH; each is sent back as one percent-encoded path segment.
REMOTE_ID = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9_.:+/=-]{0,%d}" % (PROVIDER_ID_MAX_LENGTH - 1)  # noqa: UP031
)


def is_remote_id(value: str) -> bool:
    """Whether `value` can be a provider id: REMOTE_ID, and no ".." (for servers that decode
    %2F before routing)."""
    return bool(REMOTE_ID.fullmatch(value or "")) and ".." not in value


def _segment(value: str) -> str:
    """A remote id used as one URL path segment: ids typed into the lookup form (or sent back
    by a server) cannot reach another path ("/" is sent as %2F)."""
    if not is_remote_id(value):
        raise ProviderError(ErrorKind.BAD_RESPONSE, "Not a valid identifier.")
    return path_segment(value)


def _id(data: dict[str, Any], key: str, *, required: bool = True) -> str:
    """An id the provider gave, whole: one longer than Tablero keeps, or with characters no id
    has, makes the answer a bad one (with the reason), never an id cut short."""
    value = _string(data, key, required=required)
    if not value:
        return value
    if len(value) > PROVIDER_ID_MAX_LENGTH:
        raise ProviderError(
            ErrorKind.BAD_RESPONSE,
            f"Unexpected answer: {key!r} is {len(value)} characters long; Tablero keeps "
            f"provider ids of up to {PROVIDER_ID_MAX_LENGTH} characters whole and does not "
            "cut them (a cut id could be neither polled nor cancelled).",
        )
    if not is_remote_id(value):
        raise _bad(f"{key!r} is not an id (letters, digits and _ . : + / = -)")
    return value


def _bad(what: str) -> ProviderError:
    return ProviderError(ErrorKind.BAD_RESPONSE, f"Unexpected answer: {what}")


def _answer(client: "Requester", method: str, path: str, **kwargs: Any) -> Any:
    """The data of the provider's answer (the client already made it fit to store: no NUL,
    no lone surrogates, no NaN or Infinity, bounded depth)."""
    return client.request(method, path, **kwargs).data


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _bad(f"{what} is not a JSON object")
    return data


def _string(data: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = data.get(key)
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return ""
    raise _bad(f"{key!r} is missing or not a string")


def _status(data: dict[str, Any], allowed: frozenset[str]) -> str:
    status = data.get("status")
    if status not in allowed:
        raise _bad("unknown status")
    return status


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        return None
    return value


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _lifetime(data: dict[str, Any]) -> timedelta | None:
    created, expires = _timestamp(data.get("created_at")), _timestamp(data.get("expires_at"))
    if created is None or expires is None or expires <= created:
        return None
    return expires - created


def _error(data: dict[str, Any], key: str) -> tuple[str, str]:
    """A run's (code, message). The client masked the connection's keys in the answer
    already; a key-shaped token is masked too, and a code is kept only if it looks like one."""
    error = data.get(key)
    if not isinstance(error, dict):
        return "", ""
    code, message = error.get("code"), error.get("message")
    return (
        (safe_identifier(code) or "") if isinstance(code, str) else "",
        mask_secrets(message)[:2000] if isinstance(message, str) else "",
    )


def _incomplete_reason(data: dict[str, Any]) -> str:
    details = data.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    return (safe_identifier(reason) or "") if isinstance(reason, str) else ""


# --- the tag on what Tablero creates ---------------------------------------------------------


def tagged_metadata(assistant: "Assistant") -> dict[str, str]:
    """The metadata sent for `assistant`: the user's own pairs, untouched, plus the tag with the
    record's id when there is room for it and the user has no key of that name."""
    metadata = dict(assistant.metadata)
    if TAG_KEY not in metadata and len(metadata) < PROVIDER_METADATA_PAIRS:
        metadata[TAG_KEY] = str(assistant.pk)
    return metadata


def remote_tag(remote: dict[str, Any]) -> str | None:
    """The local record id a remote assistant is tagged with, if it has a tag of the shape
    Tablero writes (a UUID); a user's own non-UUID value under that key is not a tag."""
    metadata = remote.get("metadata")
    value = metadata.get(TAG_KEY) if isinstance(metadata, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


# --- tools ----------------------------------------------------------------------------------


def assistants_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored tools in the Assistants API v2 shape (only the fields the spec allows)."""
    result: list[dict[str, Any]] = []
    for tool in tools:
        kind = tool.get("type")
        if kind in ("code_interpreter", "file_search"):
            result.append({"type": kind})
        elif kind == "function":
            function = tool.get("function") or {}
            sent = {"name": function.get("name", "")}
            if function.get("description"):
                sent["description"] = function["description"]
            if function.get("parameters") is not None:
                sent["parameters"] = function["parameters"]
            result.append({"type": "function", "function": sent})
    return result


def responses_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored tools in the Responses API shape.

    Code interpreter needs a container (`{"type": "auto"}` lets the provider make one).
    File search needs vector store ids, which Tablero's assistants do not carry: it is left
    out (the assistant page says so). Function tools are flattened.
    """
    result: list[dict[str, Any]] = []
    for tool in tools:
        kind = tool.get("type")
        if kind == "code_interpreter":
            result.append({"type": "code_interpreter", "container": {"type": "auto"}})
        elif kind == "function":
            function = tool.get("function") or {}
            result.append(
                {
                    "type": "function",
                    "name": function.get("name", ""),
                    "description": function.get("description") or None,
                    "parameters": function.get("parameters"),
                    "strict": False,
                }
            )
    return result


def responses_drops_file_search(tools: list[dict[str, Any]]) -> bool:
    return any(tool.get("type") == "file_search" for tool in tools)


def normalise_remote_tools(tools: Any) -> list[dict[str, Any]]:
    """Tools read from a remote assistant, in the stored v2 shape (v1 `retrieval` becomes
    `file_search`; unknown tool types are dropped)."""
    result: list[dict[str, Any]] = []
    if not isinstance(tools, list):
        return result
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        kind = tool.get("type")
        if kind == "retrieval":
            kind = "file_search"
        if kind in ("code_interpreter", "file_search"):
            if {"type": kind} not in result:
                result.append({"type": kind})
        elif kind == "function" and isinstance(tool.get("function"), dict):
            function = tool["function"]
            if not isinstance(function.get("name"), str):
                continue
            stored: dict[str, Any] = {"name": function["name"]}
            if isinstance(function.get("description"), str) and function["description"]:
                stored["description"] = function["description"]
            if isinstance(function.get("parameters"), dict):
                stored["parameters"] = function["parameters"]
            result.append({"type": "function", "function": stored})
    return result


# --- Assistants API -------------------------------------------------------------------------


class AssistantsBackend:
    name = ASSISTANTS

    def __init__(self, client: Requester) -> None:
        self.client = client

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return _answer(self.client, method, path, beta=ASSISTANTS_BETA, **kwargs)

    @staticmethod
    def _assistant_body(assistant: "Assistant") -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": assistant.model,
            "name": assistant.name,
            "description": assistant.description or None,
            "instructions": assistant.instructions or None,
            "tools": assistants_tools(assistant.tools),
            "metadata": tagged_metadata(assistant),
            "temperature": assistant.temperature,
            "top_p": assistant.top_p,
        }
        return body

    def create_assistant(self, assistant: "Assistant") -> str:
        body = self._assistant_body(assistant)
        for key in ("temperature", "top_p", "description", "instructions"):
            if body[key] is None:
                del body[key]
        data = _object(self._call("POST", "/assistants", json=body), "the assistant")
        return _id(data, "id")

    def update_assistant(self, assistant: "Assistant") -> str:
        if not assistant.remote_id:
            return self.create_assistant(assistant)
        data = self._call(
            "POST",
            f"/assistants/{_segment(assistant.remote_id)}",
            json=self._assistant_body(assistant),
        )
        return _id(_object(data, "the assistant"), "id")

    def delete_assistant(self, assistant: "Assistant") -> None:
        if assistant.remote_id:
            _object(
                self._call("DELETE", f"/assistants/{_segment(assistant.remote_id)}"), "the answer"
            )

    def list_remote_assistants(
        self, *, max_pages: int = MAX_LIST_PAGES
    ) -> Iterator[dict[str, Any]]:
        after: str | None = None
        for _page in range(max_pages):
            params: dict[str, Any] = {"limit": 100}
            if after:
                params["after"] = after
            data = _object(self._call("GET", "/assistants", params=params), "the list")
            items = data.get("data")
            if not isinstance(items, list):
                raise _bad("'data' is not a list")
            for item in items:
                item = _object(item, "an assistant")
                _string(item, "id")
                yield item
            last_id = data.get("last_id") or (items[-1]["id"] if items else None)
            if data.get("has_more") is not True or not items or last_id == after:
                return
            after = last_id

    def find_tagged_assistant(self, tag: str) -> str | None:
        """The id of the newest remote assistant tagged with `tag` (see TAG_KEY) among the
        most recent ones, or None. Raises ProviderError when the list cannot be read."""
        for item in self.list_remote_assistants(max_pages=TAG_LOOKUP_PAGES):
            if remote_tag(item) == tag and is_remote_id(item["id"]):
                return item["id"]
        return None

    def start_run(
        self, assistant: "Assistant", message: str, *, context: TurnContext = TurnContext()
    ) -> RunSnapshot:
        """A first turn makes a thread and its run in one call; a later one makes a run on the
        conversation's thread, its message added by that same call (`additional_messages`), so
        that the start stays one request, sent once: never a message added without its run."""
        user_message = {"role": "user", "content": message}
        if not context.thread_id:
            body: dict[str, Any] = {
                "assistant_id": assistant.remote_id,
                "thread": {"messages": [user_message]},
            }
            return self._finished(self._snapshot(self._call("POST", "/threads/runs", json=body)))
        body = {"assistant_id": assistant.remote_id}
        if context.add_message:
            body["additional_messages"] = [user_message]
        data = self._call("POST", f"/threads/{_segment(context.thread_id)}/runs", json=body)
        return self._finished(self._snapshot(data))

    def get_run(self, run: "Run") -> RunSnapshot:
        return self.lookup(run.thread_id, run.remote_run_id)

    def cancel_run(self, run: "Run") -> RunSnapshot:
        data = self._call(
            "POST", f"/threads/{_segment(run.thread_id)}/runs/{_segment(run.remote_run_id)}/cancel"
        )
        return self._finished(self._snapshot(data))

    def lookup(self, thread_id: str, run_id: str) -> RunSnapshot:
        data = self._call("GET", f"/threads/{_segment(thread_id)}/runs/{_segment(run_id)}")
        return self._finished(self._snapshot(data))

    def _finished(self, snapshot: RunSnapshot) -> RunSnapshot:
        """Add the output of a run that ended with one (asked once: ended runs are not polled
        again)."""
        if snapshot.status not in ("completed", "incomplete"):
            return snapshot
        text = self.run_output(snapshot.thread_id, snapshot.remote_run_id)
        return replace(snapshot, output_text=text)

    def run_output(self, thread_id: str, run_id: str) -> str:
        data = _object(
            self._call(
                "GET",
                f"/threads/{_segment(thread_id)}/messages",
                params={"order": "desc", "limit": MESSAGES_LIMIT},
            ),
            "the message list",
        )
        messages = data.get("data")
        if not isinstance(messages, list):
            raise _bad("'data' is not a list")
        parts: list[str] = []
        for message in reversed(messages):  # oldest first
            if not isinstance(message, dict) or message.get("role") != "assistant":
                continue
            if message.get("run_id") not in (run_id, None):
                continue
            for content in message.get("content") or []:
                if isinstance(content, dict) and content.get("type") == "text":
                    text = content.get("text")
                    value = text.get("value") if isinstance(text, dict) else None
                    if isinstance(value, str):
                        parts.append(value)
        return "\n\n".join(parts)

    @staticmethod
    def _snapshot(data: Any) -> RunSnapshot:
        data = _object(data, "the run")
        status = _status(data, RUN_STATUSES)
        code, message = _error(data, "last_error")
        if status == "incomplete" and not code:
            code = _incomplete_reason(data)
        usage = data.get("usage")
        return RunSnapshot(
            status=status,
            thread_id=_id(data, "thread_id"),
            remote_run_id=_id(data, "id"),
            usage=Usage(
                input_tokens=_int_or_none(usage.get("prompt_tokens")),
                output_tokens=_int_or_none(usage.get("completion_tokens")),
                total_tokens=_int_or_none(usage.get("total_tokens")),
            )
            if isinstance(usage, dict)
            else None,
            error_code=code,
            error_message=message,
            completed_at=_timestamp(data.get("completed_at"))
            or _timestamp(data.get("failed_at"))
            or _timestamp(data.get("cancelled_at")),
            lifetime=_lifetime(data),
        )


# --- Responses API --------------------------------------------------------------------------


class ResponsesBackend:
    name = RESPONSES

    def __init__(self, client: Requester) -> None:
        self.client = client

    # Nothing lives remotely between runs.
    def create_assistant(self, assistant: "Assistant") -> None:
        return None

    def update_assistant(self, assistant: "Assistant") -> None:
        return None

    def delete_assistant(self, assistant: "Assistant") -> None:
        return None

    def list_remote_assistants(
        self, *, max_pages: int = MAX_LIST_PAGES
    ) -> Iterator[dict[str, Any]]:
        return iter(())

    def find_tagged_assistant(self, tag: str) -> str | None:
        return None

    def start_run(
        self, assistant: "Assistant", message: str, *, context: TurnContext = TurnContext()
    ) -> RunSnapshot:
        body: dict[str, Any] = {
            "model": assistant.model,
            "input": message,
            "background": True,
            "store": True,
        }
        if context.previous_response_id:
            body["previous_response_id"] = context.previous_response_id
        if assistant.instructions:
            body["instructions"] = assistant.instructions
        tools = responses_tools(assistant.tools)
        if tools:
            body["tools"] = tools
        if assistant.temperature is not None:
            body["temperature"] = assistant.temperature
        if assistant.top_p is not None:
            body["top_p"] = assistant.top_p
        if assistant.metadata:
            body["metadata"] = dict(assistant.metadata)
        return self._snapshot(_answer(self.client, "POST", "/responses", json=body))

    def get_run(self, run: "Run") -> RunSnapshot:
        return self.lookup(run.response_id)

    def cancel_run(self, run: "Run") -> RunSnapshot:
        data = _answer(self.client, "POST", f"/responses/{_segment(run.response_id)}/cancel")
        return self._snapshot(data)

    def lookup(self, response_id: str) -> RunSnapshot:
        return self._snapshot(_answer(self.client, "GET", f"/responses/{_segment(response_id)}"))

    @staticmethod
    def _snapshot(data: Any) -> RunSnapshot:
        data = _object(data, "the response")
        status = _status(data, RESPONSE_STATUSES)
        code, message = _error(data, "error")
        if status == "incomplete" and not code:
            code = _incomplete_reason(data)
        usage = data.get("usage")
        return RunSnapshot(
            status=status,
            response_id=_id(data, "id"),
            usage=Usage(
                input_tokens=_int_or_none(usage.get("input_tokens")),
                output_tokens=_int_or_none(usage.get("output_tokens")),
                total_tokens=_int_or_none(usage.get("total_tokens")),
            )
            if isinstance(usage, dict)
            else None,
            output_text=ResponsesBackend.output_text(data),
            error_code=code,
            error_message=message,
            completed_at=_timestamp(data.get("completed_at")),
        )

    @staticmethod
    def output_text(data: dict[str, Any]) -> str:
        parts: list[str] = []
        output = data.get("output")
        for item in output if isinstance(output, list) else []:
            if not isinstance(item, dict) or item.get("type") != "message":
                continue
            for content in item.get("content") or []:
                if (
                    isinstance(content, dict)
                    and content.get("type") == "output_text"
                    and isinstance(content.get("text"), str)
                ):
                    parts.append(content["text"])
        if not parts and isinstance(data.get("output_text"), str):
            return data["output_text"]
        return "\n\n".join(parts)


# --- choosing a backend ---------------------------------------------------------------------


def run_api_for(connection: "Connection") -> RunApi:
    """The run API a connection uses: the admin's choice, else the detected one; before any
    detection, Responses on api.openai.com (which no longer serves assistants) and the
    Assistants API on other servers."""
    chosen = connection.effective_run_api
    if chosen in RunApi.apis():
        return RunApi(chosen)
    host = (urlsplit(connection.base_url).hostname or "").lower()
    return RESPONSES if host == "api.openai.com" else ASSISTANTS


def backend_for(
    connection: "Connection", *, api: str | None = None, client: Requester | None = None
) -> RunBackend:
    """The backend for `connection` (or for `api`, e.g. the one a run was started on).

    Raises ProviderError(KEY_UNREADABLE) when the stored key does not decrypt."""
    if client is None:
        from connections import crypto
        from connections.services import client_for, unreadable_key_error

        try:
            client = client_for(connection)
        except crypto.DecryptionError:
            raise unreadable_key_error() from None
    api = api or run_api_for(connection)
    if api == ASSISTANTS:
        return AssistantsBackend(client)
    return ResponsesBackend(client)
