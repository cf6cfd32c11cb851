"""The official `openai` SDK, as a user would call it, through the gateway to the fake."""

import threading

import openai
import pytest

from fakeprovider import KEY_QUOTA, Reply
from gateway.scopes import Scope
from gateway.services import token_revoke
from tests.connections.helpers import make_connection

HELLO = [{"role": "user", "content": "Hi there"}]


def test_models_list_shows_only_the_token_models(sdk, make_token, fake_upstream):
    client = sdk(make_token(allowed_models=["gpt-4o", "o3"]))

    assert sorted(model.id for model in client.models.list()) == ["gpt-4o", "o3"]
    assert client.models.retrieve("o3").id == "o3"
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.models.retrieve("gpt-4.1")
    assert "Tablero refused" in refused.value.message
    assert refused.value.code == "model_not_allowed"
    # Refused before anything was forwarded.
    assert fake_upstream.requests_to("/v1/models/gpt-4.1") == []


def test_models_list_unfiltered_without_a_model_list(sdk, make_token):
    ids = [model.id for model in sdk(make_token()).models.list()]
    assert {"gpt-4o", "whisper-1", "tts-1"} <= set(ids)


def test_chat_completion(sdk, make_token, fake_upstream, written, gateway_connection, member):
    client = sdk(make_token())

    completion = client.chat.completions.create(model="gpt-4o", messages=HELLO)

    assert completion.choices[0].message.content.endswith("You said: Hi there")
    (sent,) = fake_upstream.requests_to("/v1/chat/completions", "POST")
    assert sent.json == {"model": "gpt-4o", "messages": HELLO}
    assert sent.headers["authorization"] == f"Bearer {gateway_connection.api_key()}"
    (call,) = written()
    assert (call.family, call.method, call.path, call.model) == (
        Scope.INFERENCE,
        "POST",
        "chat/completions",
        "gpt-4o",
    )
    assert (call.status, call.refused, call.streamed) == (200, False, False)
    assert call.user == member and call.connection == gateway_connection
    assert call.input_tokens == completion.usage.prompt_tokens
    assert call.output_tokens == completion.usage.completion_tokens
    assert call.request_id.startswith("req_")
    assert call.latency_ms is not None and call.first_byte_ms is not None


def test_chat_completion_streamed(sdk, make_token, written):
    client = sdk(make_token())

    stream = client.chat.completions.create(
        model="gpt-4o", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith("You said: Hi there")
    usage = chunks[-1].usage
    (call,) = written()
    assert call.streamed
    assert (call.input_tokens, call.output_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )


def test_first_chunk_arrives_before_the_provider_has_finished(sdk, make_token, fake_upstream):
    gate = threading.Event()
    fake_upstream.stream_gate = gate
    client = sdk(make_token())

    stream = client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
    first = next(iter(stream))

    # The fake still holds the rest of the answer: the first chunk came through alone.
    assert not gate.is_set()
    assert first.choices[0].delta.role == "assistant"
    gate.set()
    rest = list(stream)
    assert rest[-1].choices[0].finish_reason == "stop"


def test_responses_plain_streamed_and_background(sdk, make_token, fake_upstream, written):
    client = sdk(make_token())

    plain = client.responses.create(model="gpt-4o", input="Hello")
    assert plain.output_text.endswith("You said: Hello")

    events = list(client.responses.create(model="gpt-4o", input="Hello", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas.endswith("You said: Hello")

    background = client.responses.create(model="gpt-4o", input="Take [slow] time", background=True)
    assert background.status == "queued"
    assert client.responses.retrieve(background.id).id == background.id
    cancelled = client.responses.cancel(background.id)
    assert cancelled.status == "cancelled"

    calls = written()
    assert [c.path for c in calls] == [
        "responses",
        "responses",
        "responses",
        f"responses/{background.id}",
        f"responses/{background.id}/cancel",
    ]
    assert calls[0].input_tokens == plain.usage.input_tokens
    assert calls[1].streamed and calls[1].output_tokens == events[-1].response.usage.output_tokens


def test_embeddings(sdk, make_token, written):
    result = sdk(make_token()).embeddings.create(
        model="text-embedding-3-small", input=["one two", "three"]
    )
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8
    assert written()[0].input_tokens == result.usage.prompt_tokens


def test_file_upload_and_download(sdk, make_token, fake_upstream, written):
    client = sdk(make_token())
    content = b'{"prompt": "x"}\n' + bytes(range(256)) * 64

    uploaded = client.files.create(file=("data.jsonl", content), purpose="batch")
    assert uploaded.bytes == len(content) and uploaded.filename == "data.jsonl"
    assert client.files.content(uploaded.id).content == content

    (sent,) = fake_upstream.requests_to("/v1/files", "POST")
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert content in sent.body
    assert [c.family for c in written()] == [Scope.FILES, Scope.FILES]


def test_binary_speech(sdk, make_token):
    from fakeprovider.inference import SPEECH_CHUNK, SPEECH_CHUNKS

    client = sdk(make_token())
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input="Hello"
    ) as answer:
        assert answer.headers["content-type"] == "audio/mpeg"
        audio = b"".join(answer.iter_bytes())
    assert audio == SPEECH_CHUNK * SPEECH_CHUNKS


def test_multipart_model_is_checked(gateway, make_token, fake_upstream):
    import httpx

    token = make_token(allowed_models=["whisper-1"])
    answer = httpx.post(
        f"{gateway.url}/audio/transcriptions",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("a.mp3", b"ID3..."), "model": (None, "gpt-4o-transcribe")},
    )
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "model_not_allowed"
    assert fake_upstream.requests == []


def test_revoked_token_raises_authentication_error(sdk, make_token, member):
    from gateway.models import ApiToken

    token = make_token()
    client = sdk(token)
    client.models.list()
    token_revoke(token=ApiToken.objects.get(), actor=member)

    with pytest.raises(openai.AuthenticationError) as refused:
        client.models.list()
    assert refused.value.code == "invalid_api_key"
    assert "Tablero refused" in refused.value.message


def test_model_not_allowed_raises_permission_denied(sdk, make_token, fake_upstream):
    client = sdk(make_token(allowed_models=["gpt-4o-mini"]))

    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert refused.value.code == "model_not_allowed"
    assert fake_upstream.requests == []


def test_scope_not_granted_raises_permission_denied(sdk, make_token):
    client = sdk(make_token(scopes=[Scope.MODELS]))
    client.models.list()
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.embeddings.create(model="text-embedding-3-small", input="x")
    assert refused.value.code == "scope_not_allowed"


def test_provider_quota_arrives_as_rate_limit_error(sdk, make_token, team, owner, fake_upstream):
    connection = make_connection(
        team, name="Broke", key=KEY_QUOTA, base_url=fake_upstream.base_url, created_by=owner
    )
    client = sdk(make_token(connection=connection))

    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert limited.value.code == "insufficient_quota"
    assert "Tablero" not in limited.value.message  # the provider's own answer, untouched


def test_provider_500_arrives_as_internal_server_error(sdk, make_token, fake_upstream, written):
    fake_upstream.queue(Reply.error(500, "The server had an error.", "server_error", None))

    with pytest.raises(openai.InternalServerError) as failed:
        sdk(make_token()).chat.completions.create(model="gpt-4o", messages=HELLO)
    assert failed.value.body["message"] == "The server had an error."
    assert failed.value.request_id.startswith("req_")
    (call,) = written()
    assert (call.status, call.refused) == (500, False)
    # Never retried by the gateway.
    assert len(fake_upstream.requests_to("/v1/chat/completions")) == 1


def test_provider_headers_come_back(gateway, make_token):
    import httpx

    answer = httpx.get(f"{gateway.url}/models", headers={"Authorization": f"Bearer {make_token()}"})
    assert answer.headers["x-request-id"].startswith("req_")
    assert answer.headers["x-ratelimit-limit-requests"] == "5000"
    assert answer.headers["openai-processing-ms"] == "12"
    assert "server" not in {name for name in answer.headers if "fakeprovider" in name.lower()}
