"""The async client keeps the sync client's policy: the same retries, deadline,
classification, body limits and masking, through `httpx.MockTransport` with an async handler,
and real HTTP to the fake provider on loopback through the guarded async pool."""

import asyncio
import json

import httpx
import pytest

from fakeprovider import KEY_OK, KEY_RATE_LIMIT
from provider import body as body_module
from provider.aclient import AsyncProviderClient
from provider.endpoint import Endpoint
from provider.errors import ErrorKind, ProviderError
from provider.urlguard import URLRefused
from tests.provider.helpers import LOOPBACK

CANARY = "sk-canary-ACLIENT-0123456789abcdefXYZW"
MODELS = {"object": "list", "data": [{"id": "gpt-4o", "object": "model", "owned_by": "system"}]}


class Recorder:
    """An async provider: answers from a list, records every request."""

    def __init__(self, *answers: httpx.Response, delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.delay = delay

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def run(coroutine):
    return asyncio.run(coroutine)


def error(status, code, message="Something.", headers=None):
    body = {"error": {"message": message, "type": "x", "param": None, "code": code}}
    return httpx.Response(status, json=body, headers=headers)


async def call(handler, method="GET", path="/models", *, key=CANARY, sleeps=None, **kwargs):
    client = AsyncProviderClient(
        Endpoint("https://api.openai.com/v1", key, organization="org-abc"),
        transport=httpx.MockTransport(handler),
        sleep=sleeps if sleeps is not None else Sleeps(),
        **kwargs,
    )
    async with client:
        try:
            return await client.request(method, path, json={} if method == "POST" else None)
        finally:
            call.attempts = client.attempts


def failure(handler, method="GET", **kwargs) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        run(call(handler, method, **kwargs))
    return caught.value


def test_sends_the_key_and_reads_the_answer():
    provider = Recorder(httpx.Response(200, json=MODELS, headers={"x-request-id": "req_1"}))
    answer = run(call(provider))
    assert answer.data == MODELS and answer.request_id == "req_1"
    (sent,) = provider.requests
    assert sent.url == "https://api.openai.com/v1/models"
    assert sent.headers["authorization"] == f"Bearer {CANARY}"
    assert sent.headers["openai-organization"] == "org-abc"
    assert sent.headers["accept-encoding"] == "gzip, deflate"


def test_list_models_reads_the_same_shape():
    async def models():
        client = AsyncProviderClient(
            Endpoint("https://api.openai.com/v1", CANARY),
            transport=httpx.MockTransport(Recorder(httpx.Response(200, json=MODELS))),
        )
        async with client:
            return await client.list_models()

    assert run(models()) == MODELS["data"]


def test_a_rate_limit_is_retried_after_the_wait_asked_for():
    sleeps = Sleeps()
    provider = Recorder(error(429, "rate_limit_exceeded", headers={"Retry-After": "1"}))
    caught = failure(provider, sleeps=sleeps)
    assert caught.kind == ErrorKind.RATE_LIMITED and caught.retry_after == 1.0
    assert len(provider.requests) == 3 and len(sleeps) == 2
    assert all(1.0 <= seconds <= 1.1 for seconds in sleeps)


def test_billing_is_never_retried():
    provider = Recorder(error(429, "insufficient_quota", headers={"x-should-retry": "true"}))
    assert failure(provider).kind == ErrorKind.QUOTA_EXHAUSTED
    assert len(provider.requests) == 1


def test_a_post_failing_with_a_server_error_reaches_the_provider_once():
    provider = Recorder(error(500, "server_error"))
    assert failure(provider, "POST").kind == ErrorKind.SERVER_ERROR
    assert len(provider.requests) == 1
    provider.requests.clear()
    assert failure(provider, "GET").kind == ErrorKind.SERVER_ERROR
    assert len(provider.requests) == 3


def test_x_should_retry_false_is_obeyed():
    provider = Recorder(error(503, "server_is_overloaded", headers={"x-should-retry": "false"}))
    assert failure(provider).kind == ErrorKind.OVERLOADED
    assert len(provider.requests) == 1


def test_fails_once_then_works():
    sleeps = Sleeps()
    provider = Recorder(error(503, "server_is_overloaded"), httpx.Response(200, json=MODELS))
    assert run(call(provider, sleeps=sleeps)).data == MODELS
    assert len(provider.requests) == 2 and len(sleeps) == 1


def test_the_deadline_ends_the_call():
    provider = Recorder(httpx.Response(200, json=MODELS), delay=5)
    caught = failure(provider, deadline=0.3)
    assert caught.kind == ErrorKind.TIMEOUT
    assert "No complete answer within 0.3 seconds" in caught.message
    assert len(provider.requests) == 1


def test_an_echoed_key_is_masked_everywhere():
    echo = f"Incorrect API key provided: {CANARY}. Bearer {CANARY}"
    provider = Recorder(error(401, CANARY, message=echo, headers={"x-request-id": CANARY}))
    caught = failure(provider)
    assert caught.kind == ErrorKind.INVALID_KEY
    shown = f"{caught} {caught!r} {caught.message} {caught.code} {caught.request_id}"
    assert CANARY not in shown and CANARY[3:19] not in shown
    assert caught.code is None and caught.request_id is None


def test_an_answer_echoing_the_key_keeps_no_copy():
    provider = Recorder(httpx.Response(200, json={"id": "x", "note": CANARY.upper()}))
    answer = run(call(provider))
    assert CANARY.lower() not in json.dumps(answer.data).lower()


def test_an_answer_over_the_limit_is_refused(monkeypatch):
    monkeypatch.setattr(body_module, "MAX_BODY_BYTES", 100)
    provider = Recorder(httpx.Response(200, json={"data": "x" * 200}))
    caught = failure(provider)
    assert caught.kind == ErrorKind.BAD_RESPONSE and "larger than" in caught.message


def test_a_url_the_guard_refuses_is_never_sent():
    provider = Recorder(httpx.Response(200, json=MODELS))

    async def refused():
        client = AsyncProviderClient(
            Endpoint("http://127.0.0.1:9/v1", CANARY), transport=httpx.MockTransport(provider)
        )
        async with client:
            await client.list_models()

    with pytest.raises(URLRefused):
        run(refused())
    assert provider.requests == []


def test_stream_hands_over_a_successful_answer_unread():
    chunks = [b'{"object": "response", ', b'"id": "resp_1"}']

    async def pieces():
        for chunk in chunks:
            yield chunk

    provider = Recorder(httpx.Response(200, content=pieces()))

    async def streamed():
        client = AsyncProviderClient(
            Endpoint("https://api.openai.com/v1", CANARY), transport=httpx.MockTransport(provider)
        )
        async with client, client.stream("POST", "/responses", json={"stream": True}) as answer:
            return [chunk async for chunk in answer.aiter_raw()]

    assert b"".join(run(streamed())) == b"".join(chunks)
    assert json.loads(provider.requests[0].content) == {"stream": True}


def test_stream_raises_a_failed_answer_classified_and_masked():
    provider = Recorder(error(401, "invalid_api_key", message=f"Bad key {CANARY}"))

    async def streamed():
        client = AsyncProviderClient(
            Endpoint("https://api.openai.com/v1", CANARY), transport=httpx.MockTransport(provider)
        )
        async with client, client.stream("POST", "/responses", json={}) as answer:
            return answer

    with pytest.raises(ProviderError) as caught:
        run(streamed())
    assert caught.value.kind == ErrorKind.INVALID_KEY and CANARY not in caught.value.message
    assert len(provider.requests) == 1


def test_real_http_to_the_fake_provider_through_the_guarded_pool(fake_upstream):
    async def models(key):
        async with AsyncProviderClient(
            Endpoint(fake_upstream.base_url, key), guard=LOOPBACK, sleep=Sleeps()
        ) as client:
            return await client.list_models()

    assert [model["id"] for model in run(models(KEY_OK))]
    with pytest.raises(ProviderError) as caught:
        run(models(KEY_RATE_LIMIT))
    assert caught.value.kind == ErrorKind.RATE_LIMITED
    assert len(fake_upstream.requests) == 4  # one, then three attempts
