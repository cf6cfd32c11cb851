"""What the assistants, threads, runs and responses parts share: request checks, cursor pages,
ids, and how a run or background response moves over time (read from ``fake.clock``).

Runs and background responses move over time: queued for one step, in progress for one more,
then done (``fake.run_step_seconds`` per step, 1 s by default). The user's message picks the
ending: ``[fail]`` fails with ``server_error``, ``[expire]`` expires (runs only),
``[incomplete]`` stops incomplete, ``[slow]`` stays in progress until cancelled; otherwise it
completes with an answer that quotes the message (and, in a conversation, the one before it).
"""

from __future__ import annotations

import base64
import itertools
import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from fakeprovider.models import model_not_found
from fakeprovider.router import FakeRequest, Handler, Reply

if TYPE_CHECKING:
    from fakeprovider.server import FakeProvider

METADATA_MAX = 16
TERMINAL = {"cancelled", "failed", "completed", "incomplete", "expired"}


def json_reply(data: Any, status: int = 200) -> Reply:
    return Reply.json(data, status)


def error(status: int, message: str, param: str | None = None, code: str | None = None) -> Reply:
    return Reply.error(status, message, "invalid_request_error", code, param)


def new_id(prefix: str) -> str:
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


def litellm_response_id() -> str:
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


def path_id(match: re.Match[str], name: str) -> str:
    """An id from the path, percent-decoded (a base64 id arrives with %2F, %2B, %3D)."""
    return unquote(match[name])


def locked(handler: Handler) -> Handler:
    """`handler` behind the checks every JSON route makes, run under the fake's lock."""

    def serve(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
        if request.method == "POST" and request.body and not isinstance(request.json, dict):
            return error(400, "We could not parse the JSON body of your request.")
        with fake._lock:
            return handler(fake, request, match)

    serve.__name__ = handler.__name__
    return serve


def unknown_fields(body: dict[str, Any], allowed: set[str]) -> Reply | None:
    for key in body:
        if key not in allowed:
            return error(400, f"Unrecognized request argument supplied: {key}", param=key)
    return None


def metadata_problem(metadata: Any) -> Reply | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict) or len(metadata) > METADATA_MAX:
        return error(400, "Invalid 'metadata': at most 16 key-value pairs.", param="metadata")
    for key, value in metadata.items():
        if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
            return error(
                400, f"Invalid 'metadata.{key}': expected a string of up to 512.", "metadata"
            )
    return None


def number_problem(body: dict[str, Any], name: str, high: float) -> Reply | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        return error(400, f"Invalid '{name}': expected a number between 0 and {high}.", param=name)
    return None


def model_problem(fake: FakeProvider, model: Any) -> Reply | None:
    if not isinstance(model, str) or not model:
        return error(400, "Missing required parameter: 'model'.", param="model")
    if model not in fake.state["models"]:
        return model_not_found(model)
    return None


def page(items: list[dict[str, Any]], request: FakeRequest) -> Reply:
    """A cursor page as the API gives it (`order`, `limit`, `after`, `before`)."""
    order = request.param("order", "desc")
    if order not in ("asc", "desc"):
        return error(400, "Invalid 'order': expected 'asc' or 'desc'.", param="order")
    try:
        limit = int(request.param("limit", "20") or "20")
    except ValueError:
        return error(400, "Invalid 'limit': expected an integer.", param="limit")
    if not 1 <= limit <= 100:
        return error(400, "Invalid 'limit': expected a value between 1 and 100.", param="limit")
    items = sorted(items, key=lambda item: (item["created_at"], item["_seq"]))
    if order == "desc":
        items.reverse()
    ids = [item["id"] for item in items]
    after, before = request.param("after"), request.param("before")
    if after:
        items = items[ids.index(after) + 1 :] if after in ids else []
    elif before:
        items = items[: ids.index(before)][-limit:] if before in ids else []
    data = [public(item) for item in items[:limit]]
    return json_reply(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(items) > limit,
        }
    )


def public(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if not key.startswith("_")}


_sequence = itertools.count(1)


def next_seq() -> int:
    """An increasing number that orders items created in the same second."""
    return next(_sequence)


def user_text(messages: list[dict[str, Any]]) -> str:
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


# How a run or background response moves over time.


def ending(message: str) -> str:
    for marker in ("fail", "expire", "incomplete", "slow"):
        if f"[{marker}]" in message:
            return marker
    return "complete"


def answer_text(message: str, earlier: str = "") -> str:
    """The answer to `message`; in a conversation (a later run on a thread, a response with a
    `previous_response_id`) it also quotes the user's message before it, so that a test (and
    the demo) can see the conversation was carried on."""
    answer = f"Hello from the fake provider. You said: {message}"
    if earlier:
        answer += f" (Before that you said: {earlier})"
    return answer


def tokens(text: str) -> int:
    return max(1, len(text.split()))


def progress(fake: FakeProvider, job: dict[str, Any]) -> tuple[str, float | None]:
    """(status, when it reached it) for a run or background response at this moment."""
    step = fake.run_step_seconds
    now = fake.clock.time()
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


def job(
    fake: FakeProvider, message: str, *, background: bool = True, earlier: str = ""
) -> dict[str, Any]:
    """The private fields of a run or response that starts now, ending as `message` asks
    (`earlier`: the user's message before it in the conversation, if any)."""
    return {
        "_started": fake.clock.time(),
        "_ending": ending(message),
        "_message": message,
        "_earlier": earlier,
        "_background": background,
        "_cancel_requested_at": None,
        "_cancel_immediate": False,
        "_seq": next_seq(),
    }
