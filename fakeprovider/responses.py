"""Responses for the fake provider: ``POST /v1/responses`` (``background: true`` runs over
time as `fakeprovider.common` says, otherwise it ends at once), ``GET /v1/responses/{id}``,
``POST /v1/responses/{id}/cancel`` (a response is cancelled at once).

A response may follow another (``previous_response_id``, which must exist, 404 otherwise as
the API answers): it is kept, given back, and its answer quotes the user's message before.

With ``fake.litellm_mode`` the background response ids are LiteLLM's: "resp_" and base64,
about 470 characters, with "+", "/" and "=" in them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fakeprovider.common import (
    TERMINAL,
    answer_text,
    error,
    job,
    json_reply,
    litellm_response_id,
    locked,
    metadata_problem,
    model_problem,
    new_id,
    number_problem,
    path_id,
    progress,
    public,
    tokens,
    unknown_fields,
    user_text,
)
from fakeprovider.inference import stream_response
from fakeprovider.router import FakeRequest, Reply, Router

if TYPE_CHECKING:
    from fakeprovider.server import FakeProvider


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
        return error(400, "Invalid 'tools': expected an array.", param="tools")
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        where = f"tools[{index}]"
        if kind == "code_interpreter" and "container" not in tool:
            return error(400, f"Missing required parameter: '{where}.container'.", param=where)
        if kind == "file_search" and not tool.get("vector_store_ids"):
            return error(
                400, f"Missing required parameter: '{where}.vector_store_ids'.", param=where
            )
        if kind == "function" and (not isinstance(tool.get("name"), str) or "function" in tool):
            return error(400, f"Missing required parameter: '{where}.name'.", param=where)
        if kind not in ("code_interpreter", "file_search", "function", "web_search"):
            return error(400, f"Invalid value for '{where}.type'.", param=where)
    return None


def create_response(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    body = request.json or {}
    problem = (
        unknown_fields(body, RESPONSE_FIELDS)
        or model_problem(fake, body.get("model"))
        or _tools_problem(body.get("tools"))
        or metadata_problem(body.get("metadata"))
        or number_problem(body, "temperature", 2)
        or number_problem(body, "top_p", 1)
    )
    if problem:
        return problem
    given = body.get("input")
    if isinstance(given, str):
        message = given
    elif isinstance(given, list):
        message = user_text(given)
    else:
        return error(400, "Missing required parameter: 'input'.", param="input")
    background = body.get("background") is True
    if background and body.get("store") is False:
        return error(400, "Background mode requires 'store' to be true.", param="store")
    previous_id = body.get("previous_response_id")
    earlier = ""
    if previous_id is not None:
        previous = (
            fake.state["responses"].get(previous_id) if isinstance(previous_id, str) else None
        )
        if previous is None:
            return error(
                404,
                f"Previous response with id '{previous_id}' not found.",
                param="previous_response_id",
            )
        earlier = previous["_message"]
    response = {
        "id": litellm_response_id() if fake.litellm_mode else new_id("resp"),
        "object": "response",
        "created_at": int(fake.clock.time()),
        "model": body["model"],
        "instructions": body.get("instructions"),
        "tools": body.get("tools") or [],
        "metadata": body.get("metadata") or {},
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "background": background,
        "store": body.get("store", True),
        "previous_response_id": previous_id,
        **job(fake, message, background=background, earlier=earlier),
    }
    fake.state["responses"][response["id"]] = response
    if body.get("stream") is True and not background:
        return stream_response(fake, _response_view(fake, response))
    return json_reply(_response_view(fake, response))


def _response_view(fake: FakeProvider, response: dict[str, Any]) -> dict[str, Any]:
    status, when = progress(fake, response)
    if status == "expired":  # responses do not expire: they fail
        status = "failed"
    message = response["_message"]
    output: list[dict[str, Any]] = []
    usage = None
    if status in ("completed", "incomplete"):
        text = answer_text(message, response["_earlier"])
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
        prompt = tokens(message) + tokens(response["instructions"] or "x")
        completion = tokens(answer_text(message, response["_earlier"])) if output else 0
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion,
        }
    return {
        **public(response),
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
        "max_output_tokens": None,
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
    }


def _no_response(response_id: str) -> Reply:
    return error(404, f"Response with id '{response_id}' not found.")


def get_response(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    response_id = path_id(match, "response_id")
    response = fake.state["responses"].get(response_id)
    return json_reply(_response_view(fake, response)) if response else _no_response(response_id)


def cancel_response(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    response_id = path_id(match, "response_id")
    response = fake.state["responses"].get(response_id)
    if response is None:
        return _no_response(response_id)
    if not response["background"]:
        return error(400, "Only responses created with background=true can be cancelled.")
    status, _when = progress(fake, response)
    if status in TERMINAL:
        return error(400, f"Cannot cancel a response with status '{status}'.")
    response["_cancel_requested_at"] = fake.clock.time()
    response["_cancel_immediate"] = True
    return json_reply(_response_view(fake, response))


def register(router: Router) -> None:
    router.state("responses", dict)
    router.add("POST", r"/v1/responses", locked(create_response))
    router.add("GET", r"/v1/responses/(?P<response_id>[^/]+)", locked(get_response))
    router.add("POST", r"/v1/responses/(?P<response_id>[^/]+)/cancel", locked(cancel_response))
