"""The error catalogue against the exact answers real servers send (status, body, headers):
OpenAI, Anthropic-style compatible servers, S3-style gateways and the LiteLLM proxy, which
rewrites codes and statuses but keeps the upstream's message.

Each is checked where it matters: the kind the client gives it, how often it is sent, and
what the admin reads on the page after "Test connection", in English and in Spanish.
"""

import json

import httpx
import pytest
from django.urls import reverse
from django.utils import translation

from connections.explanations import describe_wait, explain, problem
from fakeprovider import KEY_OK, Reply
from provider.client import ProviderClient
from provider.endpoint import Endpoint
from provider.errors import ErrorKind, ProviderError
from tests.connections.helpers import make_connection
from tests.connections.slowupstream import SlowUpstream, hang_up, reset
from tests.provider.helpers import LOOPBACK


def body(document) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def openai_error(message, error_type=None, code=None, param=None) -> bytes:
    return body({"error": {"message": message, "type": error_type, "param": param, "code": code}})


JSON = {"Content-Type": "application/json"}

# -- the answers, as the servers word them ------------------------------------------------------

OVERLOADED_MODEL = (
    503,
    openai_error(
        "That model is currently overloaded with other requests. You can retry your request, "
        "or contact us through our help center at help.openai.com if the error persists.",
        "server_error",
    ),
    JSON,
)
SLOW_DOWN_JSON = (503, openai_error("Slow Down", "server_error"), JSON)
SLOW_DOWN_TEXT = (503, b"Slow Down", {"Content-Type": "text/plain; charset=utf-8"})
OVERLOADED_529 = (
    529,
    body({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    JSON,
)
ENGINE_OVERLOADED = (
    429,
    openai_error("The engine is currently overloaded, please try again later", "server_error"),
    JSON,
)

# LiteLLM turns the upstream's insufficient_quota into its own 429 "throttling_error".
LITELLM_QUOTA = (
    429,
    openai_error(
        "litellm.RateLimitError: RateLimitError: OpenAIException - Error code: 429 - {'error': "
        "{'message': 'You exceeded your current quota, please check your plan and billing "
        "details. For more information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.', 'type': "
        "'insufficient_quota', 'param': None, 'code': 'insufficient_quota'}}",
        "throttling_error",
        "429",
    ),
    JSON,
)
PROXY_INSUFFICIENT_QUOTA = (429, openai_error("insufficient_quota", None, "429"), JSON)
PROXY_QUOTA_WORDS = (429, openai_error("Quota exceeded for this key.", None, "429"), JSON)
PROXY_BILLING = (429, openai_error("Billing hard limit has been reached", None, "429"), JSON)
# Rate limits that mention billing or quota in passing: still rate limits.
FREE_TIER_RATE_LIMIT = (
    429,
    openai_error(
        "Rate limit reached for gpt-4o-mini in organization org-x on requests per day (RPD): "
        "Limit 200, Used 200, Requested 1. Please try again in 7m12s. Visit "
        "https://platform.openai.com/account/rate-limits to learn more. You can increase your "
        "rate limit by adding a payment method to your account at "
        "https://platform.openai.com/account/billing.",
        "requests",
        "rate_limit_exceeded",
    ),
    JSON,
)
AZURE_RATE_LIMIT = (
    429,
    body(
        {
            "error": {
                "code": "429",
                "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI "
                "API version 2024-02-01 have exceeded token rate limit of your current OpenAI "
                "S0 pricing tier. Please retry after 2 seconds. Please go here: "
                "https://aka.ms/oai/quotaincrease if you would like to further increase the "
                "default rate limit.",
            }
        }
    ),
    JSON,
)

LITELLM_MODEL_404 = (
    404,
    openai_error(
        "litellm.NotFoundError: NotFoundError: OpenAIException - The model `gpt-9` does not "
        "exist or you do not have access to it.",
        None,
        "404",
    ),
    JSON,
)
BARE_MODEL_404 = (404, openai_error("model not found"), JSON)
OLLAMA_MODEL_404 = (
    404,
    openai_error('model "llama9" not found, try pulling it first', "api_error"),
    JSON,
)
LITELLM_INVALID_MODEL = (
    400,
    openai_error(
        "{'error': '/chat/completions: Invalid model name passed in model=gpt-9. Call "
        "`/v1/models` to view available models for your key.'}",
        "None",
        "400",
        "None",
    ),
    JSON,
)
LITELLM_INVALID_MODEL_404 = (
    404,
    openai_error(
        "Invalid model name passed in model=gpt-9. Call `/v1/models` to view available "
        "models for your key.",
        None,
        "404",
    ),
    JSON,
)

NO_ORGANIZATION = (
    401,
    openai_error(
        "You must be a member of an organization to use the API. Please contact us through "
        "our help center at help.openai.com.",
        "invalid_request_error",
        "no_organization",
    ),
    JSON,
)
INVALID_ORGANIZATION = (
    401,
    openai_error(
        "No such organization: org-doesnotexist.", "invalid_request_error", "invalid_organization"
    ),
    JSON,
)
MISMATCHED_ORGANIZATION = (
    401,
    openai_error(
        "OpenAI-Organization header should match organization for API key",
        "invalid_request_error",
        "mismatched_organization",
    ),
    JSON,
)
IP_NOT_AUTHORIZED = (
    401,
    openai_error("IP not authorized", "invalid_request_error", "ip_not_authorized"),
    JSON,
)
IP_NOT_AUTHORIZED_WORDS = (
    401,
    openai_error(
        "Your IP address 203.0.113.7 is not authorized to access this organization.",
        "invalid_request_error",
    ),
    JSON,
)
IP_RESTRICTED_403 = (
    403,
    openai_error(
        "Access denied: your client IP is not allowed to access this model",
        "permission_denied",
        "ip_restricted",
    ),
    JSON,
)
# LiteLLM's own answer when it has no database for its keys (the code is a number there).
LITELLM_NO_DB = (
    401,
    body(
        {
            "error": {
                "message": "Authentication Error, No connected db.",
                "type": "auth_error",
                "param": "None",
                "code": 401,
            }
        }
    ),
    JSON,
)
LITELLM_NO_DB_400 = (
    400,
    openai_error("No connected db.", "no_db_connection", "400"),
    JSON,
)


CLASSIFIED = [
    (OVERLOADED_MODEL, ErrorKind.OVERLOADED),
    (SLOW_DOWN_JSON, ErrorKind.OVERLOADED),
    (SLOW_DOWN_TEXT, ErrorKind.OVERLOADED),
    (OVERLOADED_529, ErrorKind.OVERLOADED),
    (ENGINE_OVERLOADED, ErrorKind.OVERLOADED),
    (LITELLM_QUOTA, ErrorKind.QUOTA_EXHAUSTED),
    (PROXY_INSUFFICIENT_QUOTA, ErrorKind.QUOTA_EXHAUSTED),
    (PROXY_QUOTA_WORDS, ErrorKind.QUOTA_EXHAUSTED),
    (PROXY_BILLING, ErrorKind.QUOTA_EXHAUSTED),
    (FREE_TIER_RATE_LIMIT, ErrorKind.RATE_LIMITED),
    (AZURE_RATE_LIMIT, ErrorKind.RATE_LIMITED),
    (LITELLM_MODEL_404, ErrorKind.MODEL_NOT_FOUND),
    (BARE_MODEL_404, ErrorKind.MODEL_NOT_FOUND),
    (OLLAMA_MODEL_404, ErrorKind.MODEL_NOT_FOUND),
    (LITELLM_INVALID_MODEL, ErrorKind.MODEL_NOT_FOUND),
    (LITELLM_INVALID_MODEL_404, ErrorKind.MODEL_NOT_FOUND),
    (NO_ORGANIZATION, ErrorKind.NO_ORGANIZATION),
    (INVALID_ORGANIZATION, ErrorKind.WRONG_ORGANIZATION),
    (MISMATCHED_ORGANIZATION, ErrorKind.WRONG_ORGANIZATION),
    (IP_NOT_AUTHORIZED, ErrorKind.IP_NOT_ALLOWED),
    (IP_NOT_AUTHORIZED_WORDS, ErrorKind.IP_NOT_ALLOWED),
    (IP_RESTRICTED_403, ErrorKind.IP_NOT_ALLOWED),
    (LITELLM_NO_DB, ErrorKind.PROXY_MISCONFIGURED),
    (LITELLM_NO_DB_400, ErrorKind.PROXY_MISCONFIGURED),
    # Not swallowed by the new rules.
    ((404, openai_error("No assistant found with id 'asst_x'."), JSON), ErrorKind.NOT_FOUND),
    ((503, b"<html><body>Slow Down</body></html>", {}), ErrorKind.SERVER_ERROR),
    (
        (429, openai_error("Slow down.", "requests", "rate_limit_exceeded"), JSON),
        ErrorKind.RATE_LIMITED,
    ),
    (
        (401, openai_error("Incorrect API key provided: sk-…abcd.", None, "invalid_api_key"), JSON),
        ErrorKind.INVALID_KEY,
    ),
]


def replay(answer, calls=None):
    status, content, headers = answer

    def handler(request):
        if calls is not None:
            calls.append(request)
        return httpx.Response(status, content=content, headers=headers)

    return handler


def mock_client(handler, sleeps):
    return ProviderClient(
        Endpoint("https://api.openai.com/v1", KEY_OK),
        guard=LOOPBACK,
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
    )


@pytest.mark.parametrize(("answer", "kind"), CLASSIFIED)
def test_each_answer_is_classified(answer, kind):
    with pytest.raises(ProviderError) as caught:
        mock_client(replay(answer), []).list_models()
    assert caught.value.kind == kind
    assert caught.value.status == answer[0]


def test_slow_down_in_plain_text_is_kept_as_the_message():
    with pytest.raises(ProviderError) as caught:
        mock_client(replay(SLOW_DOWN_TEXT), []).list_models()
    assert caught.value.message == "Slow Down"


@pytest.mark.parametrize(
    "answer", [LITELLM_QUOTA, PROXY_INSUFFICIENT_QUOTA, PROXY_QUOTA_WORDS, PROXY_BILLING]
)
def test_quota_said_in_words_is_never_retried(answer):
    calls, sleeps = [], []
    with pytest.raises(ProviderError) as caught:
        mock_client(replay(answer, calls), sleeps).list_models()
    assert caught.value.kind == ErrorKind.QUOTA_EXHAUSTED and caught.value.permanent
    assert len(calls) == 1 and sleeps == []


@pytest.mark.parametrize(
    "answer", [OVERLOADED_MODEL, SLOW_DOWN_TEXT, OVERLOADED_529, ENGINE_OVERLOADED]
)
def test_overloaded_is_retried(answer):
    calls, sleeps = [], []
    with pytest.raises(ProviderError):
        mock_client(replay(answer, calls), sleeps).list_models()
    assert len(calls) == 3 and len(sleeps) == 2


# -- x-should-retry ----------------------------------------------------------------------------


def with_headers(answer, **headers):
    status, content, base = answer
    return status, content, {**base, **{k.replace("_", "-"): v for k, v in headers.items()}}


@pytest.mark.parametrize("answer", [OVERLOADED_MODEL, FREE_TIER_RATE_LIMIT])
def test_x_should_retry_false_is_never_retried(answer):
    calls, sleeps = [], []
    with pytest.raises(ProviderError) as caught:
        mock_client(replay(with_headers(answer, x_should_retry="false"), calls), sleeps).request(
            "GET", "/models"
        )
    assert caught.value.should_retry is False
    assert len(calls) == 1 and sleeps == []


def test_x_should_retry_true_sends_a_post_again():
    """A 500 on a POST is not sent again (it may have been carried out), unless the provider
    says it should be."""
    calls, sleeps = [], []
    server_error = (500, openai_error("The server had an error.", "server_error"), JSON)

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            return replay(with_headers(server_error, x_should_retry="true"))(request)
        return httpx.Response(200, json={"id": "resp_1"})

    answer = mock_client(handler, sleeps).request("POST", "/responses", json={"input": "hi"})
    assert answer.data == {"id": "resp_1"}
    assert len(calls) == 2 and len(sleeps) == 1


def test_x_should_retry_true_does_not_retry_billing():
    calls = []
    with pytest.raises(ProviderError) as caught:
        mock_client(replay(with_headers(LITELLM_QUOTA, x_should_retry="true"), calls), []).request(
            "GET", "/models"
        )
    assert caught.value.kind == ErrorKind.QUOTA_EXHAUSTED
    assert len(calls) == 1


# -- a dropped connection ----------------------------------------------------------------------


@pytest.mark.parametrize("behaviour", [hang_up, reset], ids=["hang-up", "reset"])
def test_a_dropped_connection_is_its_own_kind(behaviour, settings):
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = ["127.0.0.1"]
    with SlowUpstream(behaviour) as upstream:
        client = ProviderClient(
            Endpoint(upstream.base_url, KEY_OK), guard=LOOPBACK, sleep=lambda _s: None
        )
        with pytest.raises(ProviderError) as caught:
            client.request("POST", "/responses", json={})
        requests = upstream.requests
    assert caught.value.kind == ErrorKind.CONNECTION_DROPPED
    assert not caught.value.permanent
    assert requests == 1  # a POST that reached the provider is not sent again


# -- what the admin reads ----------------------------------------------------------------------


def check_url(connection):
    return reverse(
        "connections:test", kwargs={"team_id": connection.team_id, "connection_id": connection.pk}
    )


def reply(answer) -> Reply:
    status, content, headers = answer
    return Reply(status, content, dict(headers))


PAGES = [
    (
        OVERLOADED_MODEL,
        ("The provider is overloaded", "Try again later"),
        ("El proveedor está sobrecargado", "Vuelve a intentarlo más tarde"),
    ),
    (
        OVERLOADED_529,
        ("The provider is overloaded", "Try again later"),
        ("El proveedor está sobrecargado", "Vuelve a intentarlo más tarde"),
    ),
    (
        SLOW_DOWN_TEXT,
        ("The provider is overloaded", "Try again later"),
        ("El proveedor está sobrecargado", "Vuelve a intentarlo más tarde"),
    ),
    (
        LITELLM_QUOTA,
        ("You exceeded your current quota (429)", "Add credit"),
        ("Has excedido tu cuota actual (429)", "Añade crédito"),
    ),
    (
        LITELLM_MODEL_404,
        ("The model does not exist (404)", "model list"),
        ("El modelo no existe (404)", "lista de modelos"),
    ),
    (
        NO_ORGANIZATION,
        ("The key&#x27;s account belongs to no organization (401)", "invite that account again"),
        ("La cuenta de la clave no pertenece a ninguna organización (401)", "vuelva a invitar"),
    ),
    (
        MISMATCHED_ORGANIZATION,
        ("Wrong organization ID (401)", "correct the organization ID"),
        ("ID de organización incorrecto (401)", "corrige el ID de organización"),
    ),
    (
        IP_NOT_AUTHORIZED,
        ("This server&#x27;s IP address is not allowed", "outgoing IP address"),
        ("La dirección IP de este servidor no está permitida", "dirección IP de salida"),
    ),
    (
        LITELLM_NO_DB,
        ("The proxy in front of the provider is misconfigured", "connect its database"),
        ("El proxy que hay delante del proveedor está mal configurado", "conecte su base de datos"),
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("answer", "english", "spanish"), PAGES)
def test_test_connection_explains_it_in_both_languages(
    answer, english, spanish, admin_client_, team, fake_upstream
):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    fake_upstream.queue(reply(answer), times=6)

    page = admin_client_.post(check_url(connection), follow=True).content.decode()
    assert f"The check failed: {english[0]}" in page
    assert english[1] in page
    assert "mistyped" not in page  # never "the key was mistyped or revoked"

    page = admin_client_.post(
        check_url(connection), follow=True, HTTP_ACCEPT_LANGUAGE="es"
    ).content.decode()
    assert spanish[0] in page and spanish[1] in page


@pytest.mark.django_db
def test_a_quota_error_through_a_proxy_reaches_the_upstream_once(
    admin_client_, team, fake_upstream
):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    fake_upstream.queue(reply(LITELLM_QUOTA), times=3)

    page = admin_client_.post(check_url(connection), follow=True).content.decode()

    assert "The check failed: You exceeded your current quota (429)." in page
    assert len(fake_upstream.requests_to("/v1/models")) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("behaviour", [hang_up, reset], ids=["hang-up", "reset"])
def test_a_dropped_connection_is_not_a_host_that_does_not_resolve(
    behaviour, admin_client_, team, settings
):
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = ["127.0.0.1"]
    with SlowUpstream(behaviour) as upstream:
        connection = make_connection(team, base_url=upstream.base_url, key=KEY_OK)
        page = admin_client_.post(check_url(connection), follow=True).content.decode()
    assert "The check failed: The connection was dropped." in page
    assert "before the whole answer arrived" in page
    assert "does not resolve" not in page


# -- a Retry-After longer than Tablero waits ----------------------------------------------------

LONG_WAIT = (
    429,
    openai_error(
        "Rate limit reached for gpt-4o in organization org-x on tokens per min (TPM): Limit "
        "30000, Used 30000, Requested 900. Please try again in 2m0s.",
        "tokens",
        "rate_limit_exceeded",
    ),
    {**JSON, "Retry-After": "120"},
)


@pytest.mark.django_db
def test_a_long_retry_after_is_shown_not_swallowed(admin_client_, team, fake_upstream):
    """The check runs as a task; the wait the provider asked for is stored with the error, so
    the connection page says it whenever it is read."""
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    fake_upstream.queue(reply(LONG_WAIT), times=2)

    page = admin_client_.post(check_url(connection), follow=True).content.decode()
    assert "The check failed: Rate limit reached (429)" in page
    assert len(fake_upstream.requests_to("/v1/models")) == 1  # it did not wait, nor retry
    detail = reverse("connections:detail", args=[team.pk, connection.pk])
    page = admin_client_.get(detail).content.decode()
    assert "The provider asks to wait 2 minutes before trying again." in page
    page = admin_client_.get(detail, HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "El proveedor pide esperar 2 minutos antes de volver a intentarlo." in page


@pytest.mark.django_db
def test_the_models_page_shows_the_wait_in_its_explanation(member_client, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    fake_upstream.queue(reply(LONG_WAIT), times=2)
    url = reverse(
        "connections:models_refresh",
        kwargs={"team_id": team.pk, "connection_id": connection.pk},
    )
    page = member_client.post(url, follow=True).content.decode()
    assert "Rate limit reached (429)" in page
    assert "The provider asks to wait 2 minutes before trying again." in page
    assert len(fake_upstream.requests_to("/v1/models")) == 1  # it did not wait, nor retry


@pytest.mark.parametrize(
    ("seconds", "english", "spanish"),
    [
        (0.2, "1 second", "1 segundo"),
        (45, "45 seconds", "45 segundos"),
        (90, "2 minutes", "2 minutos"),
        (3600, "1 hour", "1 hora"),
        (86400, "24 hours", "24 horas"),
    ],
)
def test_waits_in_words(seconds, english, spanish):
    with translation.override("en"):
        assert describe_wait(seconds) == english
    with translation.override("es"):
        assert describe_wait(seconds) == spanish


def test_the_wait_is_only_for_failures_that_pass():
    quota = ProviderError(ErrorKind.QUOTA_EXHAUSTED, retry_after=60)
    with translation.override("en"):
        assert "wait" not in str(explain(quota.kind, retry_after=60).next_step)
        assert problem(quota) == "You exceeded your current quota (429)"


def test_the_spanish_rate_limit_title_fits_tokens_too():
    with translation.override("es"):
        title = str(explain(ErrorKind.RATE_LIMITED).title)
    assert "solicitudes" not in title and "(429)" in title
