"""The pass-through's small parts: paths, multipart fields, usage blocks (no server)."""

import json

import pytest

from gateway.proxy import _multipart_field, _relative_path, usage_tokens

pytestmark = pytest.mark.django_db(transaction=False)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"/v1/chat/completions", "chat/completions"),
        (b"/v1/files/file-abc/content", "files/file-abc/content"),
        (b"/v1/models/ft:gpt-4o:acme:x:abc", "models/ft:gpt-4o:acme:x:abc"),
        (b"/v1/../admin", None),
        (b"/v1/models/%2e%2e", None),
        (b"/v1//host/x", None),
        (b"/v1/a\\b", None),
        (b"/v1/models/\xc3\xa9", None),
        (b"/v2/models", None),
    ],
)
def test_relative_path(raw, expected):
    assert _relative_path(raw) == expected


def test_multipart_field_reads_the_form_field_not_a_file():
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="model"\r\n\r\n'
        b'name="model" inside the file\r\n'
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="model"\r\n\r\n'
        b"whisper-1\r\n"
        b"--XyZ--\r\n"
    )
    assert _multipart_field(body, b"multipart/form-data; boundary=XyZ", b"model") == "whisper-1"
    assert _multipart_field(body, b"multipart/form-data; boundary=XyZ", b"other") == ""
    assert _multipart_field(body, b"multipart/form-data", b"model") == ""


def test_usage_of_a_chat_stream_is_its_last_usage_block():
    events = [
        {"choices": [{"delta": {"content": "Hi"}}], "usage": None},
        {
            "choices": [],
            "usage": {
                "prompt_tokens": 11,
                "completion_tokens": 7,
                "prompt_tokens_details": {"cached_tokens": 3},
            },
        },
    ]
    stream = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"
    assert usage_tokens(stream) == (11, 3, 7)


def test_usage_of_a_response_and_of_nothing():
    response = {"usage": {"input_tokens": 5, "output_tokens": 9}, "user": None}
    assert usage_tokens(json.dumps(response).encode()) == (5, None, 9)
    assert usage_tokens(b'{"data": []}') == (None, None, None)
    assert usage_tokens(b'"usage": {"input_tokens": -1, "output_tokens": true}') == (
        None,
        None,
        None,
    )
