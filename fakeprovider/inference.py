"""Inference and files for the fake provider, as a program calls them through the gateway:

- ``POST /v1/chat/completions``: plain, or with ``stream: true`` server-sent events (chunks of
  the answer, then a usage chunk when ``stream_options.include_usage``, then ``[DONE]``);
- ``POST /v1/embeddings``: one small vector per input;
- ``POST /v1/files`` (multipart), ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``;
- ``POST /v1/audio/speech``: binary audio, streamed in chunks.

A streamed answer sends its first chunk, then, when ``fake.stream_gate`` is set, waits for it
(up to 30 s) before the rest: a test proves the first chunk arrived before the fake finished.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fakeprovider.common import answer_text, error, json_reply, model_problem, new_id, tokens
from fakeprovider.router import FakeRequest, Reply, Router

if TYPE_CHECKING:
    from fakeprovider.server import FakeProvider

GATE_SECONDS = 30.0
SPEECH_CHUNKS = 4
SPEECH_CHUNK = bytes(range(256)) * 16  # 4 KiB of "audio"


def _gated(fake: FakeProvider, chunks: list[bytes]) -> Iterator[bytes]:
    gate = fake.stream_gate
    for index, chunk in enumerate(chunks):
        yield chunk
        if index == 0 and gate is not None:
            gate.wait(GATE_SECONDS)


def _sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _user_text(messages: Any) -> str:
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def chat_completions(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    body = request.json if isinstance(request.json, dict) else {}
    problem = model_problem(fake, body.get("model"))
    if problem:
        return problem
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return error(400, "Missing required parameter: 'messages'.", param="messages")
    text = answer_text(_user_text(messages))
    prompt, completion = tokens(_user_text(messages)) + 3, tokens(text)
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }
    head = {
        "id": new_id("chatcmpl"),
        "created": int(time.time()),
        "model": body["model"],
        "system_fingerprint": "fp_fake",
    }
    if body.get("stream") is not True:
        return json_reply(
            {
                **head,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            }
        )
    include_usage = (body.get("stream_options") or {}).get("include_usage") is True
    chunk = {**head, "object": "chat.completion.chunk"}

    def delta(content: dict[str, Any], finish: str | None = None) -> bytes:
        data = {
            **chunk,
            "choices": [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            data["usage"] = None
        return _sse(data)

    words = text.split(" ")
    events = [delta({"role": "assistant", "content": ""})]
    events += [delta({"content": word if i == 0 else f" {word}"}) for i, word in enumerate(words)]
    events.append(delta({}, "stop"))
    if include_usage:
        events.append(_sse({**chunk, "choices": [], "usage": usage}))
    events.append(b"data: [DONE]\n\n")
    return Reply(200, headers={"Content-Type": "text/event-stream"}, stream=_gated(fake, events))


def embeddings(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    body = request.json if isinstance(request.json, dict) else {}
    problem = model_problem(fake, body.get("model"))
    if problem:
        return problem
    given = body.get("input")
    inputs = given if isinstance(given, list) else [given]
    if not inputs or not all(isinstance(item, str) and item for item in inputs):
        return error(400, "'input' must be a non-empty string or array of strings.", "input")
    count = sum(tokens(item) for item in inputs)
    return json_reply(
        {
            "object": "list",
            "data": [
                {
                    "object": "embedding",
                    "index": index,
                    "embedding": [round((len(item) % 7) / 7 + k / 100, 4) for k in range(8)],
                }
                for index, item in enumerate(inputs)
            ],
            "model": body["model"],
            "usage": {"prompt_tokens": count, "total_tokens": count},
        }
    )


def _multipart(request: FakeRequest) -> dict[str, tuple[str | None, bytes]]:
    """name → (filename, value) of a multipart/form-data body."""
    content_type = request.headers.get("content-type", "")
    found = re.search(r'boundary="?([^";]+)"?', content_type)
    if found is None:
        return {}
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in request.body.split(b"--" + found.group(1).encode())[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        filename = re.search(rb'filename="([^"]*)"', head)
        if name is None:
            continue
        fields[name.group(1).decode()] = (
            filename.group(1).decode() if filename else None,
            value[:-2] if value.endswith(b"\r\n") else value,
        )
    return fields


def _file_view(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if not key.startswith("_")}


def upload_file(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    fields = _multipart(request)
    filename, content = fields.get("file", (None, b""))
    purpose = fields.get("purpose", (None, b""))[1].decode()
    if filename is None:
        return error(400, "Missing required parameter: 'file'.", param="file")
    if not purpose:
        return error(400, "Missing required parameter: 'purpose'.", param="purpose")
    item = {
        "id": new_id("file"),
        "object": "file",
        "bytes": len(content),
        "created_at": int(time.time()),
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "_content": content,
    }
    fake.state["files"][item["id"]] = item
    return json_reply(_file_view(item))


def _no_file(file_id: str) -> Reply:
    return error(404, f"No such File object: {file_id}", param="id")


def retrieve_file(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    item = fake.state["files"].get(match["file_id"])
    return json_reply(_file_view(item)) if item else _no_file(match["file_id"])


def file_content(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    item = fake.state["files"].get(match["file_id"])
    if item is None:
        return _no_file(match["file_id"])
    return Reply(200, item["_content"], {"Content-Type": "application/octet-stream"})


def speech(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    body = request.json if isinstance(request.json, dict) else {}
    problem = model_problem(fake, body.get("model"))
    if problem:
        return problem
    if not isinstance(body.get("input"), str) or not body["input"]:
        return error(400, "Missing required parameter: 'input'.", param="input")
    return Reply(
        200,
        headers={"Content-Type": "audio/mpeg"},
        stream=_gated(fake, [SPEECH_CHUNK] * SPEECH_CHUNKS),
    )


def stream_response(fake: FakeProvider, response: dict[str, Any]) -> Reply:
    """A created response as the events of `stream: true` (created, text deltas, completed)."""
    text = response["output"][0]["content"][0]["text"] if response["output"] else ""
    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    events = [
        _sse(
            {"type": "response.created", "response": pending, "sequence_number": 0},
            "response.created",
        )
    ]
    for number, word in enumerate(text.split(" "), start=1):
        events.append(
            _sse(
                {
                    "type": "response.output_text.delta",
                    "item_id": f"msg_{response['id'][5:]}",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": word if number == 1 else f" {word}",
                    "logprobs": [],
                    "sequence_number": number,
                },
                "response.output_text.delta",
            )
        )
    events.append(
        _sse(
            {"type": "response.completed", "response": response, "sequence_number": len(events)},
            "response.completed",
        )
    )
    return Reply(200, headers={"Content-Type": "text/event-stream"}, stream=_gated(fake, events))


def register(router: Router) -> None:
    router.state("files", dict)
    router.add("POST", r"/v1/chat/completions", chat_completions)
    router.add("POST", r"/v1/embeddings", embeddings)
    router.add("POST", r"/v1/files", upload_file)
    router.add("GET", r"/v1/files/(?P<file_id>[^/]+)", retrieve_file)
    router.add("GET", r"/v1/files/(?P<file_id>[^/]+)/content", file_content)
    router.add("POST", r"/v1/audio/speech", speech)
