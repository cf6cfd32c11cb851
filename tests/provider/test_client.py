"""The provider library's sync client: real HTTP to the fake upstream on loopback, and
MockTransport for the fine points of headers, classification and retries."""

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from fakeprovider import (
    ADMIN_KEY_OK,
    KEY_INVALID,
    KEY_NOT_JSON,
    KEY_OK,
    KEY_OVERLOADED,
    KEY_QUOTA,
    KEY_RATE_LIMIT,
    KEY_SLOW,
    Reply,
)
from provider import body as body_module
from provider import jsonread, policy
from provider.answer import RateLimit
from provider.client import ProviderClient
from provider.endpoint import Endpoint, path_segment
from provider.errors import ErrorKind, ProviderError
from provider.policy import MAX_RETRY_WAIT
from provider.pool import shared_http_client
from provider.secrets import mask_secrets
from provider.urlguard import GuardedTransport, URLRefused
from tests.provider.helpers import LOOPBACK

AZURE_KEY = "0123456789abcdef0123456789abcdef"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


def fake_client(fake, key=KEY_OK, sleeps=None, **kwargs):
    endpoint = Endpoint(fake.base_url, key, **kwargs.pop("endpoint", {}))
    sleep = sleeps if sleeps is not None else Sleeps()
    return ProviderClient(endpoint, guard=LOOPBACK, sleep=sleep, **kwargs)


def mock_client(handler, *, key=KEY_OK, sleeps=None, base_url="https://api.openai.com/v1", **kw):
    endpoint = Endpoint(base_url, key, **kw.pop("endpoint", {}))
    return ProviderClient(
        endpoint,
        transport=httpx.MockTransport(handler),
        sleep=sleeps if sleeps is not None else Sleeps(),
        **kw,
    )


def error_body(code, error_type="invalid_request_error", message="Something.", param=None):
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def answer(status, body=None, headers=None, content=None):
    def handler(request: httpx.Request) -> httpx.Response:
        if content is not None:
            return httpx.Response(status, content=content, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    return handler


def raise_error(exc):
    def handler(request):
        raise exc

    return handler


# -- against the fake upstream --------------------------------------------------------------


def test_list_models_sends_the_key_and_returns_models(fake_upstream):
    client = fake_client(fake_upstream)
    models = client.list_models()
    assert {model["id"] for model in models} >= {"gpt-4o", "o3", "gpt-3.5-turbo"}
    (sent,) = fake_upstream.requests
    assert (sent.method, sent.path) == ("GET", "/v1/models")
    assert sent.headers["authorization"] == f"Bearer {KEY_OK}"
    assert sent.headers["accept"] == "application/json"
    assert "openai-organization" not in sent.headers
    assert "openai-project" not in sent.headers
    assert "openai-beta" not in sent.headers
    assert client.last_request_id and client.last_request_id.startswith("req_")
    assert client.last_rate_limit.limit_requests == 5000
    assert client.last_rate_limit.remaining_requests == 4999
    assert client.last_rate_limit.reset_tokens == "6m0s"


def test_organization_project_and_beta_headers(fake_upstream):
    client = fake_client(fake_upstream, endpoint={"organization": "org-abc", "project": "proj_1"})
    client.request("GET", "/models", beta="assistants=v2")
    (sent,) = fake_upstream.requests
    assert sent.headers["openai-organization"] == "org-abc"
    assert sent.headers["openai-project"] == "proj_1"
    assert sent.headers["openai-beta"] == "assistants=v2"


def test_extra_headers_cannot_replace_the_key(fake_upstream):
    client = fake_client(fake_upstream)
    client.request(
        "GET", "/models", extra_headers={"Authorization": "Bearer sk-other", "Prefer": "x"}
    )
    (sent,) = fake_upstream.requests
    assert sent.headers["authorization"] == f"Bearer {KEY_OK}"
    assert sent.headers["prefer"] == "x"


def test_post_sends_json(fake_upstream):
    fake_upstream.queue(Reply.json({"id": "asst_1"}))
    answer = fake_client(fake_upstream).request(
        "POST", "/assistants", json={"model": "gpt-4o"}, params={"limit": 3}
    )
    assert answer.status == 200 and answer.data == {"id": "asst_1"}
    (sent,) = fake_upstream.requests
    assert sent.json == {"model": "gpt-4o"}
    assert sent.query == {"limit": ["3"]}
    assert sent.headers["content-type"] == "application/json"


def test_admin_key_is_accepted(fake_upstream):
    assert fake_client(fake_upstream, key=ADMIN_KEY_OK).list_models()


def test_retrieve_model(fake_upstream):
    model = fake_client(fake_upstream).retrieve_model("gpt-4-0613")
    assert model["id"] == "gpt-4-0613" and model["shutdown_date"] == "2099-06-06"


def test_unknown_model(fake_upstream):
    client = fake_client(fake_upstream)
    with pytest.raises(ProviderError) as caught:
        client.retrieve_model("gpt-9")
    error = caught.value
    assert error.kind == ErrorKind.MODEL_NOT_FOUND and error.permanent
    assert (error.status, error.code, error.param) == (404, "model_not_found", "model")
    assert "gpt-9" in error.message
    assert error.request_id == client.last_request_id


def test_invalid_key(fake_upstream, sleeps):
    with pytest.raises(ProviderError) as caught:
        fake_client(fake_upstream, KEY_INVALID, sleeps).list_models()
    error = caught.value
    assert error.kind == ErrorKind.INVALID_KEY
    assert (error.status, error.code, error.error_type) == (
        401,
        "invalid_api_key",
        "invalid_request_error",
    )
    assert error.request_id.startswith("req_")
    assert KEY_INVALID not in error.message and "sk-…0401" in error.message
    assert len(fake_upstream.requests) == 1 and sleeps == []


def test_quota_is_never_retried(fake_upstream, sleeps):
    with pytest.raises(ProviderError) as caught:
        fake_client(fake_upstream, KEY_QUOTA, sleeps).list_models()
    assert caught.value.kind == ErrorKind.QUOTA_EXHAUSTED
    assert caught.value.permanent
    assert len(fake_upstream.requests) == 1 and sleeps == []


def test_rate_limited_retries_twice_honouring_retry_after(fake_upstream, sleeps):
    client = fake_client(fake_upstream, KEY_RATE_LIMIT, sleeps)
    with pytest.raises(ProviderError) as caught:
        client.list_models()
    error = caught.value
    assert error.kind == ErrorKind.RATE_LIMITED and not error.permanent
    assert error.retry_after == 1.0
    assert error.request_id == client.last_request_id
    assert len(fake_upstream.requests) == 3 and client.attempts == 3
    assert len(sleeps) == 2 and all(1.0 <= seconds <= 1.1 for seconds in sleeps)
    assert client.last_rate_limit.remaining_requests == 0
    assert client.last_rate_limit.reset_requests == "1s"


def test_overloaded_retries_with_backoff(fake_upstream, sleeps):
    with pytest.raises(ProviderError) as caught:
        fake_client(fake_upstream, KEY_OVERLOADED, sleeps).list_models()
    assert caught.value.kind == ErrorKind.OVERLOADED
    assert caught.value.code == "server_is_overloaded"
    assert len(fake_upstream.requests) == 3
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


def test_max_retries_zero(fake_upstream, sleeps):
    with pytest.raises(ProviderError):
        fake_client(fake_upstream, KEY_OVERLOADED, sleeps, max_retries=0).list_models()
    assert len(fake_upstream.requests) == 1 and sleeps == []


def test_fails_once_then_works(fake_upstream, sleeps):
    fake_upstream.queue(
        Reply.error(500, "The server had an error.", "server_error", "server_error")
    )
    assert fake_client(fake_upstream, sleeps=sleeps).list_models()
    assert len(fake_upstream.requests) == 2 and len(sleeps) == 1


def test_retry_after_above_the_cap_gives_up_at_once(fake_upstream, sleeps):
    fake_upstream.queue(
        Reply.error(
            429, "Slow down.", "requests", "rate_limit_exceeded", headers={"Retry-After": "60"}
        )
    )
    with pytest.raises(ProviderError) as caught:
        fake_client(fake_upstream, sleeps=sleeps).list_models()
    assert caught.value.kind == ErrorKind.RATE_LIMITED
    assert caught.value.retry_after == 60.0
    assert len(fake_upstream.requests) == 1 and sleeps == []


def test_not_json_is_a_bad_response(fake_upstream, sleeps):
    with pytest.raises(ProviderError) as caught:
        fake_client(fake_upstream, KEY_NOT_JSON, sleeps).list_models()
    assert caught.value.kind == ErrorKind.BAD_RESPONSE
    assert caught.value.status == 200
    assert "text/html" in caught.value.message
    assert len(fake_upstream.requests) == 1


def test_slow_get_times_out_and_is_retried(fake_upstream, sleeps):
    fake_upstream.slow_seconds = 1.0
    client = fake_client(fake_upstream, KEY_SLOW, sleeps, timeout=httpx.Timeout(2.0, read=0.2))
    with pytest.raises(ProviderError) as caught:
        client.list_models()
    assert caught.value.kind == ErrorKind.TIMEOUT and not caught.value.permanent
    assert len(fake_upstream.requests) == 3 and len(sleeps) == 2


def test_slow_post_times_out_and_is_not_sent_twice(fake_upstream, sleeps):
    fake_upstream.slow_seconds = 1.0
    client = fake_client(fake_upstream, KEY_SLOW, sleeps, timeout=httpx.Timeout(2.0, read=0.2))
    with pytest.raises(ProviderError) as caught:
        client.request("POST", "/threads/runs", json={"assistant_id": "asst_1"})
    assert caught.value.kind == ErrorKind.TIMEOUT
    assert len(fake_upstream.requests) == 1 and sleeps == []


def test_slow_but_within_the_timeout(fake_upstream):
    fake_upstream.slow_seconds = 0.05
    assert fake_client(fake_upstream, KEY_SLOW).list_models()


def test_redirect_is_not_followed(fake_upstream, sleeps):
    fake_upstream.queue(Reply(302, b"", {"Location": "http://169.254.169.254/latest/"}))
    with pytest.raises(ProviderError) as caught:
        fake_client(fake_upstream, sleeps=sleeps).list_models()
    assert caught.value.kind == ErrorKind.BAD_RESPONSE
    assert caught.value.status == 302
    assert "169.254" not in caught.value.message
    assert len(fake_upstream.requests) == 1


def test_refused_connection_is_unreachable_and_retried(sleeps):
    client = ProviderClient(Endpoint("http://127.0.0.1:9/v1", KEY_OK), guard=LOOPBACK, sleep=sleeps)
    with pytest.raises(ProviderError) as caught:
        client.request("POST", "/threads/runs", json={})
    assert caught.value.kind == ErrorKind.UNREACHABLE
    assert client.attempts == 3  # never connected, so even a POST may try again


def test_key_never_logged(fake_upstream, caplog, sleeps):
    """Every logger at DEBUG, httpx and httpcore included: the key appears nowhere."""
    fake_upstream.slow_seconds = 0.5
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "provider", "provider.client"):
        caplog.set_level(logging.DEBUG, logger=name)
    keys = [KEY_OK, KEY_INVALID, KEY_QUOTA, KEY_RATE_LIMIT, KEY_SLOW]
    for key in keys:
        client = fake_client(
            fake_upstream,
            key,
            sleeps,
            endpoint={"organization": "org-x"},
            timeout=httpx.Timeout(2.0, read=0.1),
        )
        try:
            client.list_models()
        except ProviderError as error:
            assert key not in str(error) and key not in repr(error) and key not in error.message
        assert key not in repr(client)
    logged = "\n".join(
        f"{record.name} {record.getMessage()} {record.args!r} {record.__dict__!r}"
        for record in caplog.records
    )
    assert any(record.name.startswith("httpcore") for record in caplog.records)
    for key in keys:
        assert key not in logged
        assert key[-8:] not in logged
    assert "Bearer" not in logged and "authorization" not in logged.lower()
    summaries = [r.getMessage() for r in caplog.records if r.name == "provider.client"]
    assert any(
        line.startswith("provider GET /v1/models -> 200 request_id=req_") for line in summaries
    )
    assert any("-> 401 invalid_key" in line and "attempt=1" in line for line in summaries)
    assert any("-> 429 rate_limited" in line and "attempt=3" in line for line in summaries)
    assert any("-> timeout request_id=- attempt=1" in line for line in summaries)


def test_shared_client_is_one_per_guard_and_guarded():
    seen = []
    threads = [
        threading.Thread(target=lambda: seen.append(shared_http_client(LOOPBACK))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in seen}) == 1
    http = seen[0]
    assert http.follow_redirects is False and http.trust_env is False
    assert isinstance(http._transport, GuardedTransport)
    assert http._transport.network_backend.guard == LOOPBACK
    assert shared_http_client() is not http


# -- with MockTransport: the fine points ------------------------------------------------------


def test_url_refused_before_sending():
    sent = []

    def handler(request):
        sent.append(request)
        return httpx.Response(200, json={"data": []})

    client = mock_client(handler, base_url="http://api.openai.com/v1")
    with pytest.raises(URLRefused):
        client.list_models()
    assert sent == []


@pytest.mark.parametrize("key", ["", "sk-with space", "sk-line\nbreak", "sk-ünï"])
def test_unsendable_key(key):
    client = mock_client(answer(200, {"data": []}), key=key)
    with pytest.raises(ProviderError) as caught:
        client.list_models()
    assert caught.value.kind == ErrorKind.INVALID_KEY
    assert client.attempts == 0


def test_azure_sends_api_key_and_api_version():
    sent = []

    def handler(request):
        sent.append(request)
        return httpx.Response(200, json={"object": "list", "data": [{"id": "gpt-4o"}]})

    client = mock_client(
        handler,
        key=AZURE_KEY,
        base_url="https://acme.openai.azure.com/openai",
        endpoint={"provider": "azure", "api_version": "2024-10-21", "organization": "org-x"},
    )
    assert client.list_models() == [{"id": "gpt-4o"}]
    (request,) = sent
    assert request.url.path == "/openai/models"
    assert request.url.params["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == AZURE_KEY
    assert "authorization" not in request.headers
    assert "openai-organization" not in request.headers


def test_compatible_sends_bearer():
    sent = []

    def handler(request):
        sent.append(request)
        return httpx.Response(200, json={"data": []})

    mock_client(handler, endpoint={"provider": "compatible"}).list_models()
    assert sent[0].headers["authorization"] == f"Bearer {KEY_OK}"
    assert "api-version" not in sent[0].url.params


def test_retry_after_as_http_date(sleeps):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    handler = answer(429, error_body("rate_limit_exceeded", "requests"), {"Retry-After": when})
    client = mock_client(handler, sleeps=sleeps)
    with pytest.raises(ProviderError) as caught:
        client.list_models()
    assert caught.value.kind == ErrorKind.RATE_LIMITED
    assert 3.0 <= caught.value.retry_after <= 5.0
    assert len(sleeps) == 2 and all(3.0 <= seconds <= 5.5 for seconds in sleeps)


def test_retry_after_in_the_past_is_zero():
    when = format_datetime(datetime.now(UTC) - timedelta(minutes=5), usegmt=True)
    handler = answer(429, error_body("rate_limit_exceeded", "tokens"), {"Retry-After": when})
    with pytest.raises(ProviderError) as caught:
        mock_client(handler, max_retries=0).list_models()
    assert caught.value.retry_after == 0.0


def test_retry_after_ms_wins(sleeps):
    headers = {"retry-after-ms": "1500", "Retry-After": "2"}
    handler = answer(429, error_body("rate_limit_exceeded", "tokens"), headers)
    with pytest.raises(ProviderError) as caught:
        mock_client(handler, sleeps=sleeps).list_models()
    assert caught.value.retry_after == 1.5
    assert all(1.5 <= seconds <= 1.65 for seconds in sleeps)


@pytest.mark.parametrize("value", ["soon", "", "-5"])
def test_unreadable_retry_after(value):
    handler = answer(503, error_body("server_is_overloaded"), {"Retry-After": value})
    with pytest.raises(ProviderError) as caught:
        mock_client(handler, max_retries=0).list_models()
    assert caught.value.retry_after in (None, 0.0)


def test_backoff_is_capped(monkeypatch):
    monkeypatch.setattr(policy.random, "uniform", lambda low, high: high)
    error = ProviderError(ErrorKind.SERVER_ERROR)
    delays = [policy.delay(attempt, error) for attempt in range(1, 10)]
    assert delays[:3] == [0.5, 1.0, 2.0]
    assert max(delays) == MAX_RETRY_WAIT


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, error_body(None), ErrorKind.INVALID_KEY),
        (401, error_body("invalid_organization"), ErrorKind.WRONG_ORGANIZATION),
        (
            401,
            {"error": {"code": "401", "message": "Access denied due to invalid subscription key."}},
            ErrorKind.INVALID_KEY,
        ),
        (
            403,
            error_body(
                "unsupported_country_region_territory",
                "request_forbidden",
                "Country, region, or territory not supported",
            ),
            ErrorKind.PERMISSION_DENIED,
        ),
        (
            403,
            error_body(
                None, "invalid_request_error", "Project `proj_x` does not have access to model `o3`"
            ),
            ErrorKind.PERMISSION_DENIED,
        ),
        (404, error_body("model_not_found"), ErrorKind.MODEL_NOT_FOUND),
        (400, error_body("model_not_found"), ErrorKind.MODEL_NOT_FOUND),
        (
            404,
            error_body(None, message="No assistant found with id 'asst_x'."),
            ErrorKind.NOT_FOUND,
        ),
        (410, None, ErrorKind.NOT_FOUND),
        (400, error_body("invalid_value", param="model"), ErrorKind.BAD_REQUEST),
        (409, error_body(None), ErrorKind.BAD_REQUEST),
        (413, None, ErrorKind.BAD_REQUEST),
        (422, {"detail": [{"msg": "field required"}]}, ErrorKind.BAD_REQUEST),
        (429, error_body("rate_limit_exceeded", "tokens"), ErrorKind.RATE_LIMITED),
        (429, error_body(None, "requests"), ErrorKind.RATE_LIMITED),
        (429, error_body("insufficient_quota", "insufficient_quota"), ErrorKind.QUOTA_EXHAUSTED),
        (429, error_body(None, "insufficient_quota"), ErrorKind.QUOTA_EXHAUSTED),
        (429, error_body("credit_balance_exhausted"), ErrorKind.QUOTA_EXHAUSTED),
        (429, error_body("monthly_spend_limit_exceeded"), ErrorKind.QUOTA_EXHAUSTED),
        (429, error_body("project_spend_limit_exceeded"), ErrorKind.QUOTA_EXHAUSTED),
        (400, error_body("billing_hard_limit_reached"), ErrorKind.QUOTA_EXHAUSTED),
        (
            429,
            error_body(
                None,
                "server_error",
                "That model is currently overloaded with other requests. "
                "The engine is currently overloaded, please try again later.",
            ),
            ErrorKind.OVERLOADED,
        ),
        (503, error_body("server_is_overloaded", "server_error"), ErrorKind.OVERLOADED),
        (503, None, ErrorKind.SERVER_ERROR),
        (500, error_body("server_error", "server_error"), ErrorKind.SERVER_ERROR),
        (502, None, ErrorKind.SERVER_ERROR),
        (504, None, ErrorKind.SERVER_ERROR),
        (400, {"error": "plain string error"}, ErrorKind.BAD_REQUEST),
        (400, ["not", "an", "object"], ErrorKind.BAD_REQUEST),
    ],
)
def test_classification(status, body, kind):
    client = mock_client(answer(status, body), max_retries=0)
    with pytest.raises(ProviderError) as caught:
        client.list_models()
    assert caught.value.kind == kind
    assert caught.value.status == status


def test_html_error_page_is_classified_by_status():
    handler = answer(502, content=b"<html><body>Bad Gateway</body></html>")
    with pytest.raises(ProviderError) as caught:
        mock_client(handler, max_retries=0).list_models()
    assert caught.value.kind == ErrorKind.SERVER_ERROR and caught.value.message == ""


@pytest.mark.parametrize(
    "code", ["insufficient_quota", "credit_balance_exhausted", "monthly_spend_limit_exceeded"]
)
def test_billing_errors_are_never_retried(code, sleeps):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(429, json=error_body(code, "insufficient_quota"))

    with pytest.raises(ProviderError) as caught:
        mock_client(handler, sleeps=sleeps).list_models()
    assert caught.value.kind == ErrorKind.QUOTA_EXHAUSTED and caught.value.permanent
    assert len(calls) == 1 and sleeps == []


@pytest.mark.parametrize(
    "body",
    [
        {"data": "gpt-4o"},
        {"data": [{"id": 5}]},
        {"data": [{"name": "gpt-4o"}]},
        {"data": [{"id": ""}]},
        {"data": ["gpt-4o"]},
        {"object": "list"},
        [],
        "models",
        None,
    ],
)
def test_bad_shapes_of_models(body):
    client = mock_client(answer(200, body, {"x-request-id": "req_shape"}))
    with pytest.raises(ProviderError) as caught:
        client.list_models()
    assert caught.value.kind == ErrorKind.BAD_RESPONSE
    assert caught.value.request_id == "req_shape"


@pytest.mark.parametrize("body", [{"object": "model"}, [], {"id": None}, None])
def test_bad_shapes_of_a_model(body):
    with pytest.raises(ProviderError) as caught:
        mock_client(answer(200, body)).retrieve_model("gpt-4o")
    assert caught.value.kind == ErrorKind.BAD_RESPONSE


def test_models_with_extra_fields_pass():
    body = {"object": "list", "data": [{"id": "x", "created": 1, "surprise": {"a": [1]}}]}
    assert mock_client(answer(200, body)).list_models() == body["data"]


def test_empty_success_body_is_none():
    assert mock_client(answer(204, content=b"")).request("DELETE", "/models/x").data is None


def test_model_ids_are_quoted():
    sent = []

    def handler(request):
        sent.append(request.url.raw_path.decode())
        return httpx.Response(200, json={"id": "ok"})

    client = mock_client(handler)
    client.retrieve_model("ft:gpt-4o-mini:acme:suffix:abc123")
    client.retrieve_model("a/../b?c")
    assert sent == [
        "/v1/models/ft:gpt-4o-mini:acme:suffix:abc123",
        "/v1/models/a%2F..%2Fb%3Fc",
    ]
    for model_id in ("", ".", ".."):
        with pytest.raises(ProviderError) as caught:
            client.retrieve_model(model_id)
        assert caught.value.kind == ErrorKind.MODEL_NOT_FOUND
    assert len(sent) == 2


@pytest.mark.parametrize("path", ["models", "/models?x=1", "/a/../b", "/a#b", "/a\\b"])
def test_paths_are_checked(path):
    with pytest.raises(ValueError):
        mock_client(answer(200, {})).request("GET", path)


def test_path_segment():
    assert path_segment("thread_abc") == "thread_abc"
    assert path_segment("a b/c") == "a%20b%2Fc"
    with pytest.raises(ValueError):
        path_segment("..")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectError("refused"), ErrorKind.UNREACHABLE),
        (httpx.ConnectTimeout("slow connect"), ErrorKind.TIMEOUT),
        (httpx.PoolTimeout("no free connection"), ErrorKind.TIMEOUT),
    ],
)
def test_failure_before_sending_is_retried_even_for_post(exc, kind, sleeps):
    client = mock_client(raise_error(exc), sleeps=sleeps)
    with pytest.raises(ProviderError) as caught:
        client.request("POST", "/responses", json={})
    assert caught.value.kind == kind
    assert client.attempts == 3 and len(sleeps) == 2


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadError("connection reset"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.WriteTimeout("write timed out"),
        httpx.ReadTimeout("read timed out"),
    ],
)
def test_failure_after_sending_is_not_retried_for_post(exc, sleeps):
    client = mock_client(raise_error(exc), sleeps=sleeps)
    with pytest.raises(ProviderError):
        client.request("POST", "/responses", json={})
    assert client.attempts == 1 and sleeps == []
    for method, path in (("GET", "/responses/resp_1"), ("DELETE", "/assistants/asst_1")):
        client = mock_client(raise_error(exc), sleeps=sleeps)
        with pytest.raises(ProviderError):
            client.request(method, path)
        assert client.attempts == 3, method


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectTimeout("slow connect"), ErrorKind.TIMEOUT),
        (httpx.PoolTimeout("pool"), ErrorKind.TIMEOUT),
        (httpx.ReadTimeout("slow"), ErrorKind.TIMEOUT),
        (httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]"), ErrorKind.UNREACHABLE),
        (httpx.DecodingError("bad gzip"), ErrorKind.BAD_RESPONSE),
    ],
)
def test_transport_errors(exc, kind):
    with pytest.raises(ProviderError) as caught:
        mock_client(raise_error(exc), max_retries=0).list_models()
    assert caught.value.kind == kind
    assert type(exc).__name__ in caught.value.message


def fails_once(status, body):
    """A handler answering `status` with `body` the first time, then 200; records each call."""
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(status, json=body)
        return httpx.Response(200, json={"id": "resp_1"})

    return handler, calls


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_error_on_post_is_not_sent_again(status, sleeps):
    # The provider may have created the run (or the assistant) before failing: a second POST
    # could run it twice and bill it twice.
    handler, calls = fails_once(status, error_body("server_error", "server_error"))
    with pytest.raises(ProviderError) as caught:
        mock_client(handler, sleeps=sleeps).request("POST", "/responses", json={"input": "hi"})
    assert caught.value.kind == ErrorKind.SERVER_ERROR and caught.value.status == status
    assert [(call.method, call.url.path) for call in calls] == [("POST", "/v1/responses")]
    assert sleeps == []


@pytest.mark.parametrize(("method", "path"), [("GET", "/models"), ("DELETE", "/assistants/a")])
@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_error_on_get_and_delete_is_retried(method, path, status, sleeps):
    handler, calls = fails_once(status, error_body("server_error", "server_error"))
    assert mock_client(handler, sleeps=sleeps).request(method, path).data == {"id": "resp_1"}
    assert [call.method for call in calls] == [method, method]
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (429, error_body("rate_limit_exceeded", "requests"), ErrorKind.RATE_LIMITED),
        (503, error_body("server_is_overloaded", "server_error"), ErrorKind.OVERLOADED),
    ],
    ids=["rate-limited", "overloaded"],
)
def test_refused_post_is_sent_again(status, body, kind, sleeps):
    # The provider turned the request away before doing anything: another attempt is safe.
    handler, calls = fails_once(status, body)
    client = mock_client(handler, sleeps=sleeps)
    assert client.request("POST", "/responses", json={}).data == {"id": "resp_1"}
    assert len(calls) == 2 and len(sleeps) == 1


def test_post_failing_with_a_server_error_reaches_the_provider_once(fake_upstream, sleeps):
    fake_upstream.queue(
        Reply.error(500, "The server had an error.", "server_error", "server_error"), times=3
    )
    client = fake_client(fake_upstream, sleeps=sleeps)
    with pytest.raises(ProviderError) as caught:
        client.request("POST", "/threads/runs", json={"assistant_id": "asst_1"})
    assert caught.value.kind == ErrorKind.SERVER_ERROR
    assert [(sent.method, sent.path) for sent in fake_upstream.requests] == [
        ("POST", "/v1/threads/runs")
    ]
    assert client.attempts == 1 and sleeps == []
    fake_upstream.requests.clear()
    assert client.list_models()  # a GET takes the next two answers in its stride
    assert [sent.method for sent in fake_upstream.requests] == ["GET", "GET", "GET"]
    assert len(sleeps) == 2


def test_a_url_too_long_is_a_bad_request_that_is_never_sent(sleeps, caplog):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(200, json={"id": "x"})

    caplog.set_level(logging.INFO, logger="provider.client")
    client = mock_client(handler, sleeps=sleeps)
    with pytest.raises(ProviderError) as caught:
        client.retrieve_model("m" * 70_000)
    assert caught.value.kind == ErrorKind.BAD_REQUEST
    assert "InvalidURL" in caught.value.message and "too long" in caught.value.message
    assert calls == [] and client.attempts == 1 and sleeps == []
    (line,) = [r.getMessage() for r in caplog.records if r.name == "provider.client"]
    assert line.startswith("provider GET /v1/models/mmm") and len(line) < 400


@pytest.mark.parametrize(
    "exc",
    [
        httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'."),
        httpx.LocalProtocolError("Illegal header value b'x\\n'"),
    ],
)
def test_requests_httpx_cannot_send_are_bad_requests(exc, sleeps):
    for method in ("GET", "POST"):
        client = mock_client(raise_error(exc), sleeps=sleeps)
        with pytest.raises(ProviderError) as caught:
            client.request(method, "/responses", json={} if method == "POST" else None)
        assert caught.value.kind == ErrorKind.BAD_REQUEST
        assert type(exc).__name__ in caught.value.message
        assert client.attempts == 1 and sleeps == []


@pytest.mark.parametrize("value", [float("nan"), "\ud800"], ids=["nan", "lone-surrogate"])
def test_a_body_json_cannot_carry_is_a_bad_request(value, sleeps):
    calls = []
    client = mock_client(lambda request: calls.append(request), sleeps=sleeps)
    with pytest.raises(ProviderError) as caught:
        client.request("POST", "/assistants", json={"metadata": {"k": value}})
    assert caught.value.kind == ErrorKind.BAD_REQUEST
    assert calls == [] and client.attempts == 1
    caught.value.message.encode("utf-8")  # storable and showable


def test_body_too_large(monkeypatch):
    monkeypatch.setattr(body_module, "MAX_BODY_BYTES", 100)
    with pytest.raises(ProviderError) as caught:
        mock_client(answer(200, {"data": [{"id": "x" * 200}]})).list_models()
    assert caught.value.kind == ErrorKind.BAD_RESPONSE


def test_provider_messages_are_masked():
    message = (
        "Incorrect API key provided: sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234. Also "
        "Authorization: Bearer sk-admin-SECRETSECRETSECRETzz99 and "
        f"{AZURE_KEY} and sk-svcacct-Zz00Zz00Zz00Zz0077."
    )
    handler = answer(401, error_body("invalid_api_key", message=message))
    with pytest.raises(ProviderError) as caught:
        mock_client(handler, key=AZURE_KEY, endpoint={"provider": "azure"}).list_models()
    masked = caught.value.message
    for secret in ("AbCdEfGhIjKlMnOpQrStUvWx", "SECRETSECRET", AZURE_KEY, "Zz00Zz00Zz00"):
        assert secret not in masked
    assert "sk-…1234" in masked and "Bearer …" in masked and "…cdef" in masked


def test_mask_secrets_leaves_plain_text():
    assert mask_secrets("Rate limit reached for gpt-4o in org-123.") == (
        "Rate limit reached for gpt-4o in org-123."
    )
    assert mask_secrets("") == ""
    assert mask_secrets("key sk-abc", "") == "key sk-abc"  # too short to be a key


def test_rate_limit_headers():
    headers = httpx.Headers(
        {
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "59",
            "x-ratelimit-reset-requests": "1s",
            "x-ratelimit-limit-tokens": "150000",
            "x-ratelimit-remaining-tokens": "149984",
            "x-ratelimit-reset-tokens": "6ms",
        }
    )
    rate_limit = RateLimit.from_headers(headers)
    assert rate_limit.as_dict() == {
        "limit_requests": 60,
        "remaining_requests": 59,
        "reset_requests": "1s",
        "limit_tokens": 150000,
        "remaining_tokens": 149984,
        "reset_tokens": "6ms",
    }
    assert json.dumps(rate_limit.as_dict())
    assert RateLimit.from_headers({"content-type": "application/json"}) is None
    # A value of any other shape could carry anything (a key): it is not kept.
    assert RateLimit.from_headers({"X-RateLimit-Limit-Requests": "n/a"}) is None


def test_rate_limit_kept_from_a_failed_answer():
    headers = {"x-request-id": "req_9", "x-ratelimit-remaining-tokens": "0"}
    client = mock_client(answer(429, error_body("rate_limit_exceeded"), headers), max_retries=0)
    with pytest.raises(ProviderError):
        client.list_models()
    assert client.last_request_id == "req_9"
    assert client.last_rate_limit.remaining_tokens == 0


def test_endpoint_repr_hides_the_key():
    endpoint = Endpoint("https://api.openai.com/v1", KEY_OK, organization="org-1")
    assert KEY_OK not in repr(endpoint) and "org-1" in repr(endpoint)


def test_odd_rate_limit_values_are_left_out():
    """A superscript digit passes str.isdigit() but not int(); 5,000 digits pass neither
    int() nor a page. Neither may crash the call, and neither is kept."""
    headers = [
        (b"x-ratelimit-limit-requests", b"\xb2"),
        (b"x-ratelimit-remaining-requests", b"9" * 5000),
        (b"x-ratelimit-limit-tokens", b"1000"),
        (b"x-ratelimit-reset-tokens", b"1s" * 500),
    ]
    client = mock_client(answer(200, {"object": "list", "data": []}, headers=headers))
    assert client.list_models() == []
    rate_limit = client.last_rate_limit
    assert rate_limit.limit_requests is None
    assert rate_limit.remaining_requests is None
    assert rate_limit.limit_tokens == 1000
    assert rate_limit.reset_tokens is None
    assert json.dumps(rate_limit.as_dict())


@pytest.mark.parametrize(
    "endpoint",
    [{"organization": "org-acmé"}, {"project": "proj abc"}, {"organization": "org-1\r\nX-A: b"}],
)
def test_an_id_no_header_can_carry_is_an_error_not_a_crash(endpoint):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(200, json={"object": "list", "data": []})

    with pytest.raises(ProviderError) as caught:
        mock_client(handler, endpoint=endpoint).list_models()
    assert caught.value.kind == ErrorKind.BAD_REQUEST
    assert "organization or project ID" in caught.value.message
    assert calls == []


def test_content_type_of_a_non_json_answer_is_masked():
    handler = answer(200, content=b"<html>", headers={"content-type": f"text/html; k={KEY_OK}"})
    with pytest.raises(ProviderError) as caught:
        mock_client(handler).list_models()
    assert caught.value.kind == ErrorKind.BAD_RESPONSE
    assert "text/html" in caught.value.message
    assert KEY_OK not in caught.value.message


def test_an_answer_that_trickles_in_is_cut_off(monkeypatch, sleeps):
    """Each chunk comes within the read timeout, but the whole answer takes too long."""
    monkeypatch.setattr(body_module, "MAX_ANSWER_SECONDS", 0.05)
    calls = []

    def trickle():
        for _ in range(20):
            time.sleep(0.01)
            yield b" "

    def handler(request):
        calls.append(request)
        return httpx.Response(200, content=trickle())

    with pytest.raises(ProviderError) as caught:
        mock_client(handler, sleeps=sleeps).request("POST", "/responses", json={})
    assert caught.value.kind == ErrorKind.TIMEOUT
    assert len(calls) == 1  # a POST that reached the provider is not sent again


def test_nul_and_lone_surrogates_are_cleaned_from_every_string():
    body = b'{"data": [{"id": "a\\u0000b", "k\\u0000": {"x": ["\\ud800", "\\ud83d\\ude00"]}}]}'
    data = mock_client(answer(200, content=body)).request("GET", "/models").data
    assert data == {"data": [{"id": "ab", "k": {"x": ["?", "\U0001f600"]}}]}


def test_numbers_json_cannot_store_become_null():
    body = b'{"data": [{"id": "a", "x": [NaN, Infinity, -Infinity, 1e999, -1e999, 1.5, 2]}]}'
    data = mock_client(answer(200, content=body)).request("GET", "/models").data
    assert data == {"data": [{"id": "a", "x": [None, None, None, None, None, 1.5, 2]}]}
    assert json.dumps(data, allow_nan=False)


def test_a_body_nested_deeper_than_the_bound_is_a_bad_response():
    depth = jsonread.MAX_JSON_DEPTH
    fits = b"[" * depth + b"]" * depth
    assert mock_client(answer(200, content=fits)).request("GET", "/models").data is not None
    for deeper in (depth + 1, 900):
        body = b'{"data": [{"id": "a", "x": ' + b"[" * deeper + b"]" * deeper + b"}]}"
        with pytest.raises(ProviderError) as caught:
            mock_client(answer(200, content=body)).list_models()
        assert caught.value.kind == ErrorKind.BAD_RESPONSE
        assert f"nested more than {depth} levels" in caught.value.message


def test_a_body_nested_too_deep_is_a_bad_response():
    with pytest.raises(ProviderError) as caught:
        mock_client(answer(200, content=b"[" * 100_000)).list_models()
    assert caught.value.kind == ErrorKind.BAD_RESPONSE
    with pytest.raises(ProviderError) as caught:
        mock_client(answer(400, content=b"[" * 100_000), max_retries=0).list_models()
    assert caught.value.kind == ErrorKind.BAD_REQUEST
