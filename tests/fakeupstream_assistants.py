"""Assistants, threads, runs and responses for the fake provider (tests/fakeupstream.py).

`register(module)` adds the routes and state to the fake's route table; fakeupstream.py calls
it once at import. What it serves:

- Assistants API v2 (every path needs ``OpenAI-Beta: assistants=v2``, as the real API did):
  assistants CRUD and a cursor-paged list (``limit``, ``order``, ``after``, ``before``;
  ``first_id``, ``last_id``, ``has_more``); ``POST /threads/runs`` makes a thread and a run;
  ``GET /threads/{id}/runs/{id}``, ``POST …/cancel``, ``GET /threads/{id}/messages``.
- Responses API: ``POST /responses`` (``background: true`` runs over time, otherwise it ends at
  once), ``GET /responses/{id}``, ``POST /responses/{id}/cancel``.

Runs and background responses move over time: queued for one step, in progress for one more,
then done (``fake.run_step_seconds`` per step, 1 s by default). The user's message picks the
ending: ``[fail]`` fails with ``server_error``, ``[expire]`` expires (runs only),
``[incomplete]`` stops incomplete, ``[slow]`` stays in progress until cancelled; otherwise it
completes with an answer that quotes the message. Cancelling a run goes through
``cancelling`` for one step; a response is cancelled at once.

``fake.assistants_api_removed = True`` (or ``--no-assistants-api`` on the command line)
answers every Assistants and threads path with 404, as api.openai.com does since 2026-08-26.

``fake.litellm_mode = True`` (``--litellm``) answers like a LiteLLM proxy in front of a
provider without assistants: every Assistants and threads path is a 500 whose message says
the API is not supported, and background response ids are LiteLLM's: "resp_" and base64,
about 470 characters, with "+", "/" and "=" in them.

``fake.lose_created_assistants`` makes the next creates of an assistant succeed and their
answers go missing, one mode per create, in order: ``"502"`` (a proxy's HTML Bad Gateway),
``"drop"`` (the connection closes without an answer), ``"slow"`` (the answer comes after
``fake.slow_seconds``, when the client has given up). The assistant exists all the same.

The switches go back to their defaults on ``reset()``.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from tests.fakeupstream import FakeRequest, FakeUpstream, Reply

DEFAULT_RUN_STEP_SECONDS = 1.0
BETA = "assistants=v2"
METADATA_MAX = 16
TERMINAL = {"cancelled", "failed", "completed", "incomplete", "expired"}

_ROUTES: list[tuple[str, str, Callable[..., Any]]] = []
_module: ModuleType | None = None  # tests.fakeupstream (or __main__ when run alone)


def _route(method: str, pattern: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def add(handler: Callable[..., Any]) -> Callable[..., Any]:
        _ROUTES.append((method, pattern, handler))
        return handler

    return add


def register(module: ModuleType) -> None:
    """Add this file's routes and state to the fake in `module` (once)."""
    global _module
    if getattr(module, "_assistants_registered", False):
        return
    _module = module
    for method, pattern, handler in _ROUTES:
        module.route(method, pattern)(_guarded(handler, pattern))
    module.state_factory("assistants")(dict)
    module.state_factory("threads")(dict)
    module.state_factory("runs")(dict)
    module.state_factory("responses")(dict)

    original_reset = module.FakeUpstream.reset

    def reset(self: FakeUpstream) -> None:
        original_reset(self)
        self.assistants_api_removed = False
        self.litellm_mode = False
        self.lose_created_assistants = []
        self.run_step_seconds = DEFAULT_RUN_STEP_SECONDS

    module.FakeUpstream.reset = reset
    module._assistants_registered = True


# --- helpers --------------------------------------------------------------------------------


def _reply() -> type[Reply]:
    assert _module is not None
    return _module.Reply


def _json(data: Any, status: int = 200) -> Reply:
    return _reply().json(data, status)


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> Reply:
    return _reply().error(status, message, "invalid_request_error", code, param)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


# LiteLLM's answer on an Assistants path when its provider has no Assistants API (its fields
# as it sends them: the status as the code, the type and param as the text "None").
LITELLM_ASSISTANTS_ERROR = {
    "error": {
        "message": "litellm.BadRequestError: LiteLLM doesn't support assistants for "
        "custom_llm_provider=hosted_vllm. Supported providers: openai, azure. "
        "Received Model Group=None",
        "type": "None",
        "param": "None",
        "code": "500",
    }
}
LITELLM_RESPONSE_ID_LENGTH = 473


def _litellm_response_id() -> str:
    """A response id as LiteLLM gives it: "resp_" and the base64 of where it routed the call
    and the upstream id. Leading bytes make the base64 start with "++++////"; the length
    leaves "==" at its end."""
    upstream = f"resp_{uuid.uuid4().hex}{uuid.uuid4().hex}"
    text = (
        f"litellm:custom_llm_provider:openai;model_id:{uuid.uuid4().hex * 2};"
        f"response_id:{upstream};user_id:"
    ).encode()
    raw = b"\xfb\xef\xbe\xff\xff\xff" + text
    raw += b"0" * (349 - len(raw))
    value = "resp_" + base64.b64encode(raw).decode()
    assert len(value) == LITELLM_RESPONSE_ID_LENGTH
    return value


def _path_id(match: re.Match[str], name: str) -> str:
    """An id from the path, percent-decoded (a base64 id arrives with %2F, %2B, %3D)."""
    return unquote(match[name])


def _guarded(handler: Callable[..., Reply], pattern: str) -> Callable[..., Reply]:
    """The Assistants API's own checks before `handler`: removed API, beta header."""
    assistants_api = pattern.startswith((r"/v1/assistants", r"/v1/threads"))

    def serve(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
        if assistants_api:
            if fake.litellm_mode:
                return _json(LITELLM_ASSISTANTS_ERROR, 500)
            if fake.assistants_api_removed:
                return _error(
                    404, f"Invalid URL ({request.method} {request.path})", code="unknown_url"
                )
            beta = request.headers.get("openai-beta", "")
            if beta != BETA:
                return _error(
                    400,
                    "You must provide the 'OpenAI-Beta' header to access the Assistants API. "
                    "Please try again by setting the header 'OpenAI-Beta: assistants=v2'.",
                    code="invalid_beta",
                )
        if request.method == "POST" and request.body and not isinstance(request.json, dict):
            return _error(400, "We could not parse the JSON body of your request.")
        with fake._lock:
            return handler(fake, request, match)

    serve.__name__ = handler.__name__
    return serve


def _unknown_fields(body: dict[str, Any], allowed: set[str]) -> Reply | None:
    for key in body:
        if key not in allowed:
            return _error(400, f"Unrecognized request argument supplied: {key}", param=key)
    return None


def _metadata_problem(metadata: Any) -> Reply | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > METADATA_MAX:
        return _error(400, "Invalid 'metadata': at most 16 key-value pairs.", param="metadata")
    for key, value in metadata.items():
        if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
            return _error(
                400, f"Invalid 'metadata.{key}': expected a string of up to 512.", "metadata"
            )
    return None


def _number_problem(body: dict[str, Any], name: str, high: float) -> Reply | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        return _error(400, f"Invalid '{name}': expected a number between 0 and {high}.", param=name)
    return None


def _model_problem(fake: FakeUpstream, model: Any) -> Reply | None:
    if not isinstance(model, str) or not model:
        return _error(400, "Missing required parameter: 'model'.", param="model")
    if model not in fake.state["models"]:
        return _reply().error(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
            "model",
        )
    return None


def _page(items: list[dict[str, Any]], request: FakeRequest) -> Reply:
    """A cursor page as the API gives it (`order`, `limit`, `after`, `before`)."""
    order = request.param("order", "desc")
    if order not in ("asc", "desc"):
        return _error(400, "Invalid 'order': expected 'asc' or 'desc'.", param="order")
    try:
        limit = int(request.param("limit", "20") or "20")
    except ValueError:
        return _error(400, "Invalid 'limit': expected an integer.", param="limit")
    if not 1 <= limit <= 100:
        return _error(400, "Invalid 'limit': expected a value between 1 and 100.", param="limit")
    items = sorted(items, key=lambda item: (item["created_at"], item["_seq"]))
    if order == "desc":
        items.reverse()
    ids = [item["id"] for item in items]
    after, before = request.param("after"), request.param("before")
    if after:
        items = items[ids.index(after) + 1 :] if after in ids else []
    elif before:
        items = items[: ids.index(before)][-limit:] if before in ids else []
    page = items[:limit]
    data = [_public(item) for item in page]
    return _json(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(items) > limit,
        }
    )


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if not key.startswith("_")}


_sequence = 0


def _seq() -> int:
    global _sequence
    _sequence += 1
    return _sequence


# --- assistants -----------------------------------------------------------------------------

ASSISTANT_FIELDS = {
    "model",
    "name",
    "description",
    "instructions",
    "reasoning_effort",
    "tools",
    "tool_resources",
    "metadata",
    "temperature",
    "top_p",
    "response_format",
}


def _assistant_problem(fake: FakeUpstream, body: dict[str, Any], *, create: bool) -> Reply | None:
    problem = _unknown_fields(body, ASSISTANT_FIELDS)
    if problem:
        return problem
    if create or "model" in body:
        problem = _model_problem(fake, body.get("model"))
        if problem:
            return problem
    for name, limit in (("name", 256), ("description", 512), ("instructions", 256000)):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            return _error(400, f"Invalid '{name}': string too long.", param=name)
    tools = body.get("tools", [])
    if not isinstance(tools, list) or len(tools) > 128:
        return _error(400, "Invalid 'tools': expected an array of at most 128.", param="tools")
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "retrieval":
            return _error(
                400,
                "The 'retrieval' tool type is not supported in v2. Use 'file_search'.",
                param=f"tools[{index}].type",
            )
        if kind not in ("code_interpreter", "file_search", "function"):
            return _error(400, f"Invalid 'tools[{index}].type'.", param=f"tools[{index}]")
        if kind == "function" and not isinstance((tool.get("function") or {}).get("name"), str):
            return _error(400, f"Missing 'tools[{index}].function.name'.", param=f"tools[{index}]")
    return (
        _metadata_problem(body.get("metadata"))
        or _number_problem(body, "temperature", 2)
        or _number_problem(body, "top_p", 1)
    )


@_route("POST", r"/v1/assistants")
def create_assistant(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    body = request.json or {}
    problem = _assistant_problem(fake, body, create=True)
    if problem:
        return problem
    assistant = {
        "id": _new_id("asst"),
        "object": "assistant",
        "created_at": int(time.time()),
        "name": body.get("name"),
        "description": body.get("description"),
        "model": body["model"],
        "instructions": body.get("instructions"),
        "tools": body.get("tools", []),
        "tool_resources": body.get("tool_resources") or {},
        "metadata": body.get("metadata") or {},
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "response_format": body.get("response_format", "auto"),
        "_seq": _seq(),
    }
    fake.state["assistants"][assistant["id"]] = assistant
    if fake.lose_created_assistants:
        return _lost_answer(fake, fake.lose_created_assistants.pop(0), assistant)
    return _json(_public(assistant))


def _lost_answer(fake: FakeUpstream, mode: str, assistant: dict[str, Any]) -> Reply:
    """The answer to a create that was carried out, as it fails to reach the client."""
    if mode == "502":
        return _reply()(
            502,
            b"<html><head><title>502 Bad Gateway</title></head>"
            b"<body><center><h1>502 Bad Gateway</h1></center></body></html>",
            {"Content-Type": "text/html"},
        )
    if mode == "drop":
        return _reply()(drop=True)
    if mode == "slow":
        # The route runs under the fake's lock: wait outside it, as a slow upstream would.
        fake._lock.release()
        try:
            time.sleep(fake.slow_seconds)
        finally:
            fake._lock.acquire()
        return _json(_public(assistant))
    raise ValueError(f"unknown mode {mode!r}")


def _no_assistant(assistant_id: str) -> Reply:
    return _error(404, f"No assistant found with id '{assistant_id}'.")


@_route("GET", r"/v1/assistants")
def list_assistants(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    return _page(list(fake.state["assistants"].values()), request)


@_route("GET", r"/v1/assistants/(?P<assistant_id>[^/]+)")
def get_assistant(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    assistant = fake.state["assistants"].get(match["assistant_id"])
    return _json(_public(assistant)) if assistant else _no_assistant(match["assistant_id"])


@_route("POST", r"/v1/assistants/(?P<assistant_id>[^/]+)")
def modify_assistant(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    assistant = fake.state["assistants"].get(match["assistant_id"])
    if assistant is None:
        return _no_assistant(match["assistant_id"])
    body = request.json or {}
    problem = _assistant_problem(fake, body, create=False)
    if problem:
        return problem
    for key, value in body.items():
        if key in ("temperature", "top_p") and value is None:
            value = 1.0
        if key == "metadata" and value is None:
            value = {}
        assistant[key] = value
    return _json(_public(assistant))


@_route("DELETE", r"/v1/assistants/(?P<assistant_id>[^/]+)")
def delete_assistant(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    if fake.state["assistants"].pop(match["assistant_id"], None) is None:
        return _no_assistant(match["assistant_id"])
    return _json({"id": match["assistant_id"], "object": "assistant.deleted", "deleted": True})


# --- how a run or response moves over time --------------------------------------------------


def _ending(message: str) -> str:
    for marker in ("fail", "expire", "incomplete", "slow"):
        if f"[{marker}]" in message:
            return marker
    return "complete"


def _answer_text(message: str) -> str:
    return f"Hello from the fake provider. You said: {message}"


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


def _progress(fake: FakeUpstream, job: dict[str, Any]) -> tuple[str, float | None]:
    """(status, when it reached it) for a run or background response at this moment."""
    step = fake.run_step_seconds
    now = time.time()
    if job["_cancel_requested_at"] is not None:
        if job["_cancel_immediate"] or now >= job["_cancel_requested_at"] + step:
            return "cancelled", job["_cancel_requested_at"] + (
                0 if job["_cancel_immediate"] else step
            )
        return "cancelling", None
    elapsed = now - job["_started"]
    if not job["_background"]:
        elapsed = float("inf")
    if elapsed < step:
        return "queued", None
    if elapsed < 2 * step or (job["_ending"] == "slow" and job["_background"]):
        return "in_progress", None
    finished = job["_started"] + (2 * step if job["_background"] else 0)
    return {
        "complete": "completed",
        "fail": "failed",
        "expire": "expired",
        "incomplete": "incomplete",
        "slow": "completed",
    }[job["_ending"]], finished


def _job(message: str, *, background: bool = True) -> dict[str, Any]:
    return {
        "_started": time.time(),
        "_ending": _ending(message),
        "_message": message,
        "_background": background,
        "_cancel_requested_at": None,
        "_cancel_immediate": False,
        "_seq": _seq(),
    }


# --- threads and runs -----------------------------------------------------------------------

RUN_FIELDS = {
    "assistant_id",
    "thread",
    "model",
    "instructions",
    "tools",
    "tool_resources",
    "metadata",
    "temperature",
    "top_p",
    "stream",
    "max_prompt_tokens",
    "max_completion_tokens",
    "truncation_strategy",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
}


def _message(thread_id: str, role: str, text: str, *, run_id: str | None, assistant_id: str | None):
    now = int(time.time())
    return {
        "id": _new_id("msg"),
        "object": "thread.message",
        "created_at": now,
        "thread_id": thread_id,
        "status": "completed",
        "incomplete_details": None,
        "completed_at": now,
        "incomplete_at": None,
        "role": role,
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
        "assistant_id": assistant_id,
        "run_id": run_id,
        "attachments": [],
        "metadata": {},
        "_seq": _seq(),
    }


def _user_text(messages: list[dict[str, Any]]) -> str:
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            ]
    return "\n".join(parts)


@_route("POST", r"/v1/threads/runs")
def create_thread_and_run(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    body = request.json or {}
    problem = _unknown_fields(body, RUN_FIELDS) or _metadata_problem(body.get("metadata"))
    if problem:
        return problem
    assistant = fake.state["assistants"].get(body.get("assistant_id"))
    if not isinstance(body.get("assistant_id"), str):
        return _error(400, "Missing required parameter: 'assistant_id'.", param="assistant_id")
    if assistant is None:
        return _no_assistant(body["assistant_id"])
    thread_body = body.get("thread") or {}
    messages = thread_body.get("messages") or []
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and m.get("role") in ("user", "assistant") and "content" in m
        for m in messages
    ):
        return _error(400, "Invalid 'thread.messages'.", param="thread.messages")
    thread_id, run_id = _new_id("thread"), _new_id("run")
    fake.state["threads"][thread_id] = {
        "id": thread_id,
        "object": "thread",
        "created_at": int(time.time()),
        "metadata": thread_body.get("metadata") or {},
        "messages": [
            _message(thread_id, m["role"], _user_text([m]), run_id=None, assistant_id=None)
            for m in messages
        ],
    }
    run = {
        "id": run_id,
        "object": "thread.run",
        "created_at": int(time.time()),
        "thread_id": thread_id,
        "assistant_id": assistant["id"],
        "model": body.get("model") or assistant["model"],
        "instructions": body.get("instructions") or assistant["instructions"] or "",
        "tools": body.get("tools") or assistant["tools"],
        "metadata": body.get("metadata") or {},
        "temperature": assistant["temperature"],
        "top_p": assistant["top_p"],
        **_job(_user_text(messages)),
    }
    fake.state["runs"][run_id] = run
    return _json(_run_view(fake, run))


def _run_view(fake: FakeUpstream, run: dict[str, Any]) -> dict[str, Any]:
    status, when = _progress(fake, run)
    ended = int(when) if when is not None else None
    message = run["_message"]
    done = status in ("completed", "incomplete")
    if done and not run.get("_answered"):
        thread = fake.state["threads"][run["thread_id"]]
        text = _answer_text(message)
        if status == "incomplete":
            text = text[: max(1, len(text) // 2)]
        thread["messages"].append(
            _message(
                run["thread_id"],
                "assistant",
                text,
                run_id=run["id"],
                assistant_id=run["assistant_id"],
            )
        )
        run["_answered"] = True
    usage = None
    if status in TERMINAL:
        prompt = _tokens(message) + _tokens(run["instructions"] or "x")
        completion = _tokens(_answer_text(message)) if done else 0
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    started = run["created_at"] if status != "queued" else None
    return {
        **_public(run),
        "status": status,
        "required_action": None,
        "last_error": {
            "code": "server_error",
            "message": "Sorry, something went wrong.",
        }
        if status == "failed"
        else None,
        "expires_at": None if status in TERMINAL else run["created_at"] + 600,
        "started_at": started,
        "cancelled_at": ended if status == "cancelled" else None,
        "failed_at": ended if status == "failed" else None,
        "completed_at": ended if status == "completed" else None,
        "incomplete_details": {"reason": "max_completion_tokens"}
        if status == "incomplete"
        else None,
        "usage": usage,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "response_format": "auto",
    }


def _find_run(fake: FakeUpstream, match: re.Match[str]) -> dict[str, Any] | None:
    run = fake.state["runs"].get(match["run_id"])
    if run is None or run["thread_id"] != match["thread_id"]:
        return None
    return run


def _no_run(match: re.Match[str]) -> Reply:
    return _error(404, f"No run found with id '{match['run_id']}'.")


@_route("GET", r"/v1/threads/(?P<thread_id>[^/]+)/runs/(?P<run_id>[^/]+)")
def get_run(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    run = _find_run(fake, match)
    return _json(_run_view(fake, run)) if run else _no_run(match)


@_route("POST", r"/v1/threads/(?P<thread_id>[^/]+)/runs/(?P<run_id>[^/]+)/cancel")
def cancel_run(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    run = _find_run(fake, match)
    if run is None:
        return _no_run(match)
    status, _when = _progress(fake, run)
    if status in TERMINAL or status == "cancelling":
        return _error(400, f"Cannot cancel run with status '{status}'.")
    run["_cancel_requested_at"] = time.time()
    return _json(_run_view(fake, run))


@_route("GET", r"/v1/threads/(?P<thread_id>[^/]+)/messages")
def list_messages(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    thread = fake.state["threads"].get(match["thread_id"])
    if thread is None:
        return _error(404, f"No thread found with id '{match['thread_id']}'.")
    for run in fake.state["runs"].values():
        if run["thread_id"] == thread["id"]:
            _run_view(fake, run)  # adds the answer once the run is done
    messages = thread["messages"]
    run_id = request.param("run_id")
    if run_id:
        messages = [message for message in messages if message["run_id"] == run_id]
    return _page(messages, request)


# --- responses ------------------------------------------------------------------------------

RESPONSE_FIELDS = {
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "temperature",
    "top_p",
    "background",
    "store",
    "metadata",
    "max_output_tokens",
    "previous_response_id",
    "parallel_tool_calls",
    "text",
    "reasoning",
    "truncation",
    "include",
    "stream",
    "user",
    "conversation",
    "prompt_cache_key",
    "safety_identifier",
    "service_tier",
}


def _tools_problem(tools: Any) -> Reply | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return _error(400, "Invalid 'tools': expected an array.", param="tools")
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        where = f"tools[{index}]"
        if kind == "code_interpreter" and "container" not in tool:
            return _error(400, f"Missing required parameter: '{where}.container'.", param=where)
        if kind == "file_search" and not tool.get("vector_store_ids"):
            return _error(
                400, f"Missing required parameter: '{where}.vector_store_ids'.", param=where
            )
        if kind == "function" and (not isinstance(tool.get("name"), str) or "function" in tool):
            return _error(400, f"Missing required parameter: '{where}.name'.", param=where)
        if kind not in ("code_interpreter", "file_search", "function", "web_search"):
            return _error(400, f"Invalid value for '{where}.type'.", param=where)
    return None


@_route("POST", r"/v1/responses")
def create_response(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    body = request.json or {}
    problem = (
        _unknown_fields(body, RESPONSE_FIELDS)
        or _model_problem(fake, body.get("model"))
        or _tools_problem(body.get("tools"))
        or _metadata_problem(body.get("metadata"))
        or _number_problem(body, "temperature", 2)
        or _number_problem(body, "top_p", 1)
    )
    if problem:
        return problem
    given = body.get("input")
    if isinstance(given, str):
        message = given
    elif isinstance(given, list):
        message = _user_text(given)
    else:
        return _error(400, "Missing required parameter: 'input'.", param="input")
    background = body.get("background") is True
    if background and body.get("store") is False:
        return _error(400, "Background mode requires 'store' to be true.", param="store")
    response = {
        "id": _litellm_response_id() if fake.litellm_mode else _new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "model": body["model"],
        "instructions": body.get("instructions"),
        "tools": body.get("tools") or [],
        "metadata": body.get("metadata") or {},
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "background": background,
        "store": body.get("store", True),
        **_job(message, background=background),
    }
    fake.state["responses"][response["id"]] = response
    return _json(_response_view(fake, response))


def _response_view(fake: FakeUpstream, response: dict[str, Any]) -> dict[str, Any]:
    status, when = _progress(fake, response)
    if status == "expired":  # responses do not expire: they fail
        status = "failed"
    message = response["_message"]
    output: list[dict[str, Any]] = []
    usage = None
    if status in ("completed", "incomplete"):
        text = _answer_text(message)
        if status == "incomplete":
            text = text[: max(1, len(text) // 2)]
        output = [
            {
                "type": "message",
                "id": f"msg_{response['id'][5:]}",
                "status": "completed" if status == "completed" else "incomplete",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
                ],
            }
        ]
    if status in TERMINAL:
        prompt = _tokens(message) + _tokens(response["instructions"] or "x")
        completion = _tokens(_answer_text(message)) if output else 0
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        }
    return {
        **_public(response),
        "status": status,
        "completed_at": int(when) if status == "completed" and when is not None else None,
        "error": {"code": "server_error", "message": "Sorry, something went wrong."}
        if status == "failed"
        else None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "output": output,
        "usage": usage,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "previous_response_id": None,
        "max_output_tokens": None,
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
    }


def _no_response(response_id: str) -> Reply:
    return _error(404, f"Response with id '{response_id}' not found.")


@_route("GET", r"/v1/responses/(?P<response_id>[^/]+)")
def get_response(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    response_id = _path_id(match, "response_id")
    response = fake.state["responses"].get(response_id)
    return _json(_response_view(fake, response)) if response else _no_response(response_id)


@_route("POST", r"/v1/responses/(?P<response_id>[^/]+)/cancel")
def cancel_response(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    response_id = _path_id(match, "response_id")
    response = fake.state["responses"].get(response_id)
    if response is None:
        return _no_response(response_id)
    if not response["background"]:
        return _error(400, "Only responses created with background=true can be cancelled.")
    status, _when = _progress(fake, response)
    if status in TERMINAL:
        return _error(400, f"Cannot cancel a response with status '{status}'.")
    response["_cancel_requested_at"] = time.time()
    response["_cancel_immediate"] = True
    return _json(_response_view(fake, response))
