"""Assistants, threads and runs (the Assistants API v2) for the fake provider.

Every path needs ``OpenAI-Beta: assistants=v2``, as the real API did: assistants CRUD and a
cursor-paged list (``limit``, ``order``, ``after``, ``before``; ``first_id``, ``last_id``,
``has_more``); ``POST /threads/runs`` makes a thread and a run; ``POST /threads/{id}/runs``
makes another run on a thread (its ``additional_messages`` added first; refused while a run of
the thread is active, as the API refuses it), whose answer also quotes the user's message
before the newest; ``GET /threads/{id}/runs/{id}``, ``POST …/cancel``,
``GET /threads/{id}/messages``. Runs move over time as `fakeprovider.common`
says; cancelling a run goes through ``cancelling`` for one step.

``fake.assistants_api_removed = True`` (or ``--no-assistants-api`` on the command line)
answers every Assistants and threads path with 404, as api.openai.com does since 2026-08-26.

``fake.litellm_mode = True`` (``--litellm``) answers like a LiteLLM proxy in front of a
provider without assistants: every Assistants and threads path is a 500 whose message says
the API is not supported (and background response ids are LiteLLM's, see
`fakeprovider.responses`).

``fake.lose_created_assistants`` makes the next creates of an assistant succeed and their
answers go missing, one mode per create, in order: ``"502"`` (a proxy's HTML Bad Gateway),
``"drop"`` (the connection closes without an answer), ``"slow"`` (the answer comes after
``fake.slow_seconds`` of the fake's clock, when the client has given up). The assistant exists
all the same.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fakeprovider.common import (
    LITELLM_ASSISTANTS_ERROR,
    TERMINAL,
    answer_text,
    error,
    job,
    json_reply,
    locked,
    metadata_problem,
    model_problem,
    new_id,
    next_seq,
    number_problem,
    page,
    progress,
    public,
    tokens,
    unknown_fields,
    user_text,
)
from fakeprovider.router import FakeRequest, Handler, Reply, Router

if TYPE_CHECKING:
    from fakeprovider.server import FakeProvider

BETA = "assistants=v2"


def assistants_api(handler: Handler) -> Handler:
    """The Assistants API's own checks before `handler`: LiteLLM, removed API, beta header."""

    def serve(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
        if fake.litellm_mode:
            return json_reply(LITELLM_ASSISTANTS_ERROR, 500)
        if fake.assistants_api_removed:
            return error(404, f"Invalid URL ({request.method} {request.path})", code="unknown_url")
        if request.headers.get("openai-beta", "") != BETA:
            return error(
                400,
                "You must provide the 'OpenAI-Beta' header to access the Assistants API. "
                "Please try again by setting the header 'OpenAI-Beta: assistants=v2'.",
                code="invalid_beta",
            )
        return handler(fake, request, match)

    serve.__name__ = handler.__name__
    return serve


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


def _assistant_problem(fake: FakeProvider, body: dict[str, Any], *, create: bool) -> Reply | None:
    problem = unknown_fields(body, ASSISTANT_FIELDS)
    if problem:
        return problem
    if create or "model" in body:
        problem = model_problem(fake, body.get("model"))
        if problem:
            return problem
    for name, limit in (("name", 256), ("description", 512), ("instructions", 256000)):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            return error(400, f"Invalid '{name}': string too long.", param=name)
    tools = body.get("tools", [])
    if not isinstance(tools, list) or len(tools) > 128:
        return error(400, "Invalid 'tools': expected an array of at most 128.", param="tools")
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "retrieval":
            return error(
                400,
                "The 'retrieval' tool type is not supported in v2. Use 'file_search'.",
                param=f"tools[{index}].type",
            )
        if kind not in ("code_interpreter", "file_search", "function"):
            return error(400, f"Invalid 'tools[{index}].type'.", param=f"tools[{index}]")
        if kind == "function" and not isinstance((tool.get("function") or {}).get("name"), str):
            return error(400, f"Missing 'tools[{index}].function.name'.", param=f"tools[{index}]")
    return (
        metadata_problem(body.get("metadata"))
        or number_problem(body, "temperature", 2)
        or number_problem(body, "top_p", 1)
    )


def create_assistant(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    body = request.json or {}
    problem = _assistant_problem(fake, body, create=True)
    if problem:
        return problem
    assistant = {
        "id": new_id("asst"),
        "object": "assistant",
        "created_at": int(fake.clock.time()),
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
        "_seq": next_seq(),
    }
    fake.state["assistants"][assistant["id"]] = assistant
    if fake.lose_created_assistants:
        return _lost_answer(fake, fake.lose_created_assistants.pop(0), assistant)
    return json_reply(public(assistant))


def _lost_answer(fake: FakeProvider, mode: str, assistant: dict[str, Any]) -> Reply:
    """The answer to a create that was carried out, as it fails to reach the client."""
    if mode == "502":
        return Reply(
            502,
            b"<html><head><title>502 Bad Gateway</title></head>"
            b"<body><center><h1>502 Bad Gateway</h1></center></body></html>",
            {"Content-Type": "text/html"},
        )
    if mode == "drop":
        return Reply(drop=True)
    if mode == "slow":
        # The route runs under the fake's lock: wait outside it, as a slow upstream would.
        fake._lock.release()
        try:
            fake.clock.sleep(fake.slow_seconds)
        finally:
            fake._lock.acquire()
        return json_reply(public(assistant))
    raise ValueError(f"unknown mode {mode!r}")


def _no_assistant(assistant_id: str) -> Reply:
    return error(404, f"No assistant found with id '{assistant_id}'.")


def list_assistants(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    return page(list(fake.state["assistants"].values()), request)


def get_assistant(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    assistant = fake.state["assistants"].get(match["assistant_id"])
    return json_reply(public(assistant)) if assistant else _no_assistant(match["assistant_id"])


def modify_assistant(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
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
    return json_reply(public(assistant))


def delete_assistant(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    if fake.state["assistants"].pop(match["assistant_id"], None) is None:
        return _no_assistant(match["assistant_id"])
    return json_reply({"id": match["assistant_id"], "object": "assistant.deleted", "deleted": True})


# Threads and runs.

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


def _message(
    fake: FakeProvider,
    thread_id: str,
    role: str,
    text: str,
    *,
    run_id: str | None,
    assistant_id: str | None,
) -> dict[str, Any]:
    now = int(fake.clock.time())
    return {
        "id": new_id("msg"),
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
        "_seq": next_seq(),
    }


def create_thread_and_run(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    body = request.json or {}
    problem = unknown_fields(body, RUN_FIELDS) or metadata_problem(body.get("metadata"))
    if problem:
        return problem
    assistant = fake.state["assistants"].get(body.get("assistant_id"))
    if not isinstance(body.get("assistant_id"), str):
        return error(400, "Missing required parameter: 'assistant_id'.", param="assistant_id")
    if assistant is None:
        return _no_assistant(body["assistant_id"])
    thread_body = body.get("thread") or {}
    messages = thread_body.get("messages") or []
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and m.get("role") in ("user", "assistant") and "content" in m
        for m in messages
    ):
        return error(400, "Invalid 'thread.messages'.", param="thread.messages")
    thread_id, run_id = new_id("thread"), new_id("run")
    fake.state["threads"][thread_id] = {
        "id": thread_id,
        "object": "thread",
        "created_at": int(fake.clock.time()),
        "metadata": thread_body.get("metadata") or {},
        "messages": [
            _message(fake, thread_id, m["role"], user_text([m]), run_id=None, assistant_id=None)
            for m in messages
        ],
    }
    run = {
        "id": run_id,
        "object": "thread.run",
        "created_at": int(fake.clock.time()),
        "thread_id": thread_id,
        "assistant_id": assistant["id"],
        "model": body.get("model") or assistant["model"],
        "instructions": body.get("instructions") or assistant["instructions"] or "",
        "tools": body.get("tools") or assistant["tools"],
        "metadata": body.get("metadata") or {},
        "temperature": assistant["temperature"],
        "top_p": assistant["top_p"],
        **job(fake, user_text(messages)),
    }
    fake.state["runs"][run_id] = run
    return json_reply(_run_view(fake, run))


THREAD_RUN_FIELDS = (RUN_FIELDS - {"thread"}) | {
    "additional_messages",
    "additional_instructions",
    "include",
    "reasoning_effort",
}


def create_run(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    """A new run on a thread: the conversation goes on."""
    body = request.json or {}
    problem = unknown_fields(body, THREAD_RUN_FIELDS) or metadata_problem(body.get("metadata"))
    if problem:
        return problem
    thread = fake.state["threads"].get(match["thread_id"])
    if thread is None:
        return error(404, f"No thread found with id '{match['thread_id']}'.")
    if not isinstance(body.get("assistant_id"), str):
        return error(400, "Missing required parameter: 'assistant_id'.", param="assistant_id")
    assistant = fake.state["assistants"].get(body["assistant_id"])
    if assistant is None:
        return _no_assistant(body["assistant_id"])
    added = body.get("additional_messages") or []
    if not isinstance(added, list) or not all(
        isinstance(m, dict) and m.get("role") in ("user", "assistant") and "content" in m
        for m in added
    ):
        return error(400, "Invalid 'additional_messages'.", param="additional_messages")
    for other in fake.state["runs"].values():
        # Its answer lands in the thread before the new messages (`_run_view` adds it once).
        if other["thread_id"] == thread["id"] and _run_view(fake, other)["status"] not in TERMINAL:
            return error(400, f"Thread {thread['id']} already has an active run {other['id']}.")
    run_id = new_id("run")
    thread["messages"] += [
        _message(fake, thread["id"], m["role"], user_text([m]), run_id=None, assistant_id=None)
        for m in added
    ]
    asked = [_text(m) for m in thread["messages"] if m["role"] == "user"]
    run = {
        "id": run_id,
        "object": "thread.run",
        "created_at": int(fake.clock.time()),
        "thread_id": thread["id"],
        "assistant_id": assistant["id"],
        "model": body.get("model") or assistant["model"],
        "instructions": body.get("instructions") or assistant["instructions"] or "",
        "tools": body.get("tools") or assistant["tools"],
        "metadata": body.get("metadata") or {},
        "temperature": assistant["temperature"],
        "top_p": assistant["top_p"],
        **job(
            fake,
            asked[-1] if asked else "",
            earlier=asked[-2] if len(asked) > 1 else "",
        ),
    }
    fake.state["runs"][run_id] = run
    return json_reply(_run_view(fake, run))


def _text(message: dict[str, Any]) -> str:
    return "".join(part["text"]["value"] for part in message["content"] if part["type"] == "text")


def _run_view(fake: FakeProvider, run: dict[str, Any]) -> dict[str, Any]:
    status, when = progress(fake, run)
    ended = int(when) if when is not None else None
    message = run["_message"]
    done = status in ("completed", "incomplete")
    if done and not run.get("_answered"):
        thread = fake.state["threads"][run["thread_id"]]
        text = answer_text(message, run["_earlier"])
        if status == "incomplete":
            text = text[: max(1, len(text) // 2)]
        thread["messages"].append(
            _message(
                fake,
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
        prompt = tokens(message) + tokens(run["instructions"] or "x")
        completion = tokens(answer_text(message, run["_earlier"])) if done else 0
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    started = run["created_at"] if status != "queued" else None
    return {
        **public(run),
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


def _find_run(fake: FakeProvider, match: re.Match[str]) -> dict[str, Any] | None:
    run = fake.state["runs"].get(match["run_id"])
    if run is None or run["thread_id"] != match["thread_id"]:
        return None
    return run


def _no_run(match: re.Match[str]) -> Reply:
    return error(404, f"No run found with id '{match['run_id']}'.")


def get_run(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    run = _find_run(fake, match)
    return json_reply(_run_view(fake, run)) if run else _no_run(match)


def cancel_run(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    run = _find_run(fake, match)
    if run is None:
        return _no_run(match)
    status, _when = progress(fake, run)
    if status in TERMINAL or status == "cancelling":
        return error(400, f"Cannot cancel run with status '{status}'.")
    run["_cancel_requested_at"] = fake.clock.time()
    return json_reply(_run_view(fake, run))


def list_messages(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    thread = fake.state["threads"].get(match["thread_id"])
    if thread is None:
        return error(404, f"No thread found with id '{match['thread_id']}'.")
    for run in fake.state["runs"].values():
        if run["thread_id"] == thread["id"]:
            _run_view(fake, run)  # adds the answer once the run is done
    messages = thread["messages"]
    run_id = request.param("run_id")
    if run_id:
        messages = [message for message in messages if message["run_id"] == run_id]
    return page(messages, request)


ASSISTANT = r"/v1/assistants/(?P<assistant_id>[^/]+)"
RUN = r"/v1/threads/(?P<thread_id>[^/]+)/runs/(?P<run_id>[^/]+)"
ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", r"/v1/assistants", create_assistant),
    ("GET", r"/v1/assistants", list_assistants),
    ("GET", ASSISTANT, get_assistant),
    ("POST", ASSISTANT, modify_assistant),
    ("DELETE", ASSISTANT, delete_assistant),
    ("POST", r"/v1/threads/runs", create_thread_and_run),
    ("POST", r"/v1/threads/(?P<thread_id>[^/]+)/runs", create_run),
    ("GET", RUN, get_run),
    ("POST", RUN + "/cancel", cancel_run),
    ("GET", r"/v1/threads/(?P<thread_id>[^/]+)/messages", list_messages),
]


def register(router: Router) -> None:
    for name in ("assistants", "threads", "runs"):
        router.state(name, dict)
    for method, pattern, handler in ROUTES:
        router.add(method, pattern, assistants_api(locked(handler)))
