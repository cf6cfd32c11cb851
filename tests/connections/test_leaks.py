"""A canary key goes in through the create form; it must never come out again.

Not in any page (including the admin and the audit log), not in any log record at DEBUG for
every logger, not in an error report, and not in plaintext anywhere in the database. Only the
fake provider may see it, in the Authorization header. Nor when the provider echoes it back,
in any error field or header, in any form (see the second half).
"""

import logging
import sys

import httpx
import pytest
from django.db import connection as db
from django.test import Client
from django.urls import reverse
from django.views.debug import ExceptionReporter

from accounts.models import Membership, Role
from connections import services
from connections.models import Connection
from fakeprovider import Reply
from provider.client import ProviderClient
from provider.endpoint import Endpoint
from provider.errors import ProviderError
from tests.conftest import client_for, make_user
from tests.connections.helpers import CANARY_KEY
from tests.provider.helpers import LOOPBACK

pytestmark = pytest.mark.django_db

# The canary's secret middle: no prefix, no last four. Catches partial leaks too.
CANARY_BODY = CANARY_KEY[3:-4]


def assert_clean(text: str, where: str) -> None:
    assert CANARY_KEY not in text, f"the key leaked into {where}"
    assert CANARY_BODY not in text, f"part of the key leaked into {where}"


@pytest.fixture
def all_logs_at_debug(caplog):
    for name in [None, *logging.root.manager.loggerDict]:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def superuser(team):
    user = make_user("root@example.com", is_staff=True, is_superuser=True)
    Membership.objects.create(team=team, user=user, role=Role.OWNER)
    return user


def create_form(fake_upstream, **overrides) -> dict:
    return {
        "name": "Canary",
        "provider": "openai",
        "base_url": fake_upstream.base_url,
        "organization_id": "org-canary",
        "api_key": CANARY_KEY,
        **overrides,
    }


@pytest.fixture
def canary(admin_client_, team, fake_upstream, all_logs_at_debug) -> Connection:
    response = admin_client_.post(
        reverse("connections:create", kwargs={"team_id": team.pk}), create_form(fake_upstream)
    )
    assert response.status_code == 302
    # The key did reach the provider, and only there.
    assert fake_upstream.requests[0].headers["authorization"] == f"Bearer {CANARY_KEY}"
    return Connection.objects.get(name="Canary")


def _pages(team, connection) -> list[tuple[str, str, dict]]:
    one = {"team_id": team.pk, "connection_id": connection.pk}
    return [
        ("get", reverse("connections:list", kwargs={"team_id": team.pk}), {}),
        ("get", reverse("connections:detail", kwargs=one), {}),
        ("get", reverse("connections:edit", kwargs=one), {}),
        ("get", reverse("connections:replace_key", kwargs=one), {}),
        ("get", reverse("connections:delete", kwargs=one), {}),
        ("get", reverse("connections:models", kwargs=one), {}),
        ("get", reverse("connections:models", kwargs=one), {"q": "gpt"}),
        ("get", reverse("connections:model_detail", kwargs={**one, "model_id": "gpt-4o"}), {}),
        ("get", reverse("connections:model_detail", kwargs={**one, "model_id": "nope"}), {}),
        ("post", reverse("connections:test", kwargs=one), {}),
        ("post", reverse("connections:models_refresh", kwargs=one), {}),
        ("get", reverse("accounts:audit", kwargs={"team_id": team.pk}), {}),
        ("get", reverse("accounts:audit_export", kwargs={"team_id": team.pk}), {}),
        ("get", reverse("admin:connections_connection_changelist"), {}),
        ("get", reverse("admin:connections_connection_change", args=[connection.pk]), {}),
        ("get", reverse("admin:connections_connectionerrorevent_changelist"), {}),
        ("get", reverse("admin:accounts_auditevent_changelist"), {}),
    ]


def _read(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def test_no_page_shows_the_key(canary, team, superuser, all_logs_at_debug):
    client = client_for(superuser)
    for method, url, data in _pages(team, canary):
        response = getattr(client, method)(url, data, follow=True)
        assert response.status_code == 200, url
        assert_clean(_read(response), url)
    assert_clean(all_logs_at_debug.text, "the logs")
    for record in all_logs_at_debug.records:
        assert_clean(record.getMessage(), f"log record {record.name}")


def test_failure_pages_do_not_show_the_key(canary, team, superuser, fake_upstream):
    """The provider echoes the key in its error message: it is masked before it is shown."""
    one = {"team_id": team.pk, "connection_id": canary.pk}
    client = client_for(superuser)
    echo = Reply.error(401, f"Incorrect API key provided: {CANARY_KEY}.", "x", "invalid_api_key")
    fake_upstream.queue(echo, times=3)

    test_page = client.post(reverse("connections:test", kwargs=one), follow=True)
    detail = client.get(reverse("connections:detail", kwargs=one))
    refresh = client.post(reverse("connections:models_refresh", kwargs=one))

    assert "Incorrect API key provided" in _read(detail)  # the admin sees the message...
    for response in (test_page, detail, refresh):
        assert_clean(_read(response), response.request["PATH_INFO"])  # ...masked
    assert_clean(str(list(canary.error_events.values())), "the error history")


def test_a_failed_create_does_not_echo_the_key(admin_client_, team, fake_upstream):
    fake_upstream.queue(Reply.error(500, f"boom {CANARY_KEY}", "server_error", None), times=3)
    response = admin_client_.post(
        reverse("connections:create", kwargs={"team_id": team.pk}), create_form(fake_upstream)
    )
    assert response.status_code == 200
    assert "The provider had an error (5xx)" in _read(response)
    assert_clean(_read(response), "the create form after a failure")


def test_error_report_of_a_crash_hides_the_key(
    admin_user, team, fake_upstream, settings, monkeypatch, all_logs_at_debug
):
    """A bug deep below the create view: the report a mail handler would send hides the key
    in the POST data and in every frame's variables."""
    settings.DEBUG = False

    def crash(self):
        raise RuntimeError("unexpected bug while listing models")

    monkeypatch.setattr(ProviderClient, "list_models", crash)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)

    response = client.post(
        reverse("connections:create", kwargs={"team_id": team.pk}), create_form(fake_upstream)
    )

    assert response.status_code == 500
    assert_clean(_read(response), "the 500 page")
    (record,) = [r for r in all_logs_at_debug.records if r.name == "django.request"]
    request = record.request
    reporter = ExceptionReporter(request, *record.exc_info, is_email=True)
    html, text = reporter.get_traceback_html(), reporter.get_traceback_text()
    assert "unexpected bug while listing models" in text
    assert "api_key = '********************'" in text  # the parameter is listed...
    assert_clean(html, "the HTML error report")  # ...but its value is not
    assert_clean(text, "the text error report")
    assert_clean(all_logs_at_debug.text, "the logs")


def test_service_frames_hide_the_key(team, admin_user, fake_upstream, monkeypatch):
    """Called outside a view (a command, the admin), the services hide their variables too."""

    def crash(self):
        raise RuntimeError("bug")

    monkeypatch.setattr(ProviderClient, "list_models", crash)
    try:
        services.connection_create(
            team=team,
            user=admin_user,
            name="Canary",
            provider="openai",
            base_url=fake_upstream.base_url,
            api_key=CANARY_KEY,
        )
    except RuntimeError:
        exc_info = sys.exc_info()
    reporter = ExceptionReporter(None, *exc_info, is_email=True)
    assert_clean(reporter.get_traceback_text(), "the error report")
    assert_clean(reporter.get_traceback_html(), "the HTML error report")


def test_database_has_no_plaintext_key(canary, admin_client_, team, fake_upstream):
    # Exercise every write path once more: test, replace (with the canary again), refresh.
    one = {"team_id": team.pk, "connection_id": canary.pk}
    admin_client_.post(reverse("connections:test", kwargs=one))
    admin_client_.post(reverse("connections:replace_key", kwargs=one), {"api_key": CANARY_KEY})
    admin_client_.post(reverse("connections:models_refresh", kwargs=one))

    with db.cursor() as cursor:
        for table in db.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {db.ops.quote_name(table)}")
            assert_clean(repr(cursor.fetchall()), f"table {table}")
    assert Connection.objects.get(pk=canary.pk).api_key() == CANARY_KEY


# --- a provider (or a proxy in front of it) that echoes the key back ------------------------

CANARY_ADMIN_KEY = "sk-admin-CANARYADMIN9876543210abcd"
ADMIN_BODY = CANARY_ADMIN_KEY[9:-4]


def _percent_encoded(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


def assert_no_canary(text: str, where: str) -> None:
    """Neither key's secret middle, in any letter case, plain or percent-encoded."""
    lowered = text.lower()
    for secret in (CANARY_BODY, ADMIN_BODY):
        for form in (secret, _percent_encoded(secret)):
            assert form.lower() not in lowered, f"a key leaked into {where}"


# The forms in which the key comes back.
FORMS = {
    "whole": CANARY_KEY,
    "without sk-": CANARY_KEY[3:],
    "upper case": CANARY_KEY.upper(),
    "percent-encoded": _percent_encoded(CANARY_KEY),
    "inside a token": f"key_{CANARY_KEY}_echo",
    "admin key": CANARY_ADMIN_KEY,
}

MODEL = {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"}
RATE_LIMIT_HEADERS = [
    f"x-ratelimit-{what}-{unit}"
    for what in ("limit", "remaining", "reset")
    for unit in ("requests", "tokens")
]


def _models(headers: dict[str, str] | None = None, **model: str) -> Reply:
    return Reply.json({"object": "list", "data": [{**MODEL, **model}]}, headers=headers)


def _rate_limited(header: str, echo: str) -> Reply:
    return Reply.error(
        429,
        "Rate limit reached for requests.",
        "requests",
        "rate_limit_exceeded",
        headers={header: echo, "Retry-After": "0"},
    )


# Each place of an answer to GET /models where the echo is put, one at a time.
CHANNELS = {
    "error message": lambda echo: Reply.error(
        401, f"Incorrect API key provided: {echo}.", "invalid_request_error", "invalid_api_key"
    ),
    "error code": lambda echo: Reply.error(400, "Bad request.", "invalid_request_error", echo),
    "error type": lambda echo: Reply.error(400, "Bad request.", echo, None),
    "error param": lambda echo: Reply.error(
        400, "Bad request.", "invalid_request_error", None, param=echo
    ),
    "error detail": lambda echo: Reply.json({"detail": [{"loc": ["header"], "msg": echo}]}, 422),
    "error as a string": lambda echo: Reply.json({"error": f"Bad key {echo}"}, 401),
    "request id of an error": lambda echo: Reply.error(
        401, "No.", "invalid_request_error", "invalid_api_key", headers={"x-request-id": echo}
    ),
    "request id of an answer": lambda echo: _models({"x-request-id": echo}),
    **{
        f"{header} of an answer": (lambda echo, header=header: _models({header: echo}))
        for header in RATE_LIMIT_HEADERS
    },
    **{
        f"{header} of a 429": (lambda echo, header=header: _rate_limited(header, echo))
        for header in RATE_LIMIT_HEADERS
    },
    "content type": lambda echo: Reply(200, b"<html></html>", {"Content-Type": f"text/{echo}"}),
    "model id": lambda echo: _models(id=echo),
    "model owner": lambda echo: _models(owned_by=echo),
}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("channel", CHANNELS)
def test_the_client_keeps_no_echo_of_the_key(fake_upstream, all_logs_at_debug, channel, form):
    """What the client hands on (the error's fields, the request id, the rate limits, the
    answer) and what it logs hold no form of the key, whatever the provider put where."""
    fake_upstream.queue(CHANNELS[channel](FORMS[form]), times=3)
    endpoint = Endpoint(fake_upstream.base_url, CANARY_KEY, other_secrets=(CANARY_ADMIN_KEY,))
    client = ProviderClient(endpoint, guard=LOOPBACK, sleep=lambda _seconds: None)
    kept: list[object] = []
    try:
        kept.append(client.list_models())
    except ProviderError as error:
        kept += [error, error.message, error.code, error.error_type, error.param, str(error)]
        kept.append(error.request_id)
    kept += [client.last_request_id, client.last_rate_limit]
    assert fake_upstream.requests  # the echo was sent
    assert_no_canary(repr(kept), f"what the client keeps ({channel}, {form})")
    assert_no_canary(all_logs_at_debug.text, f"the logs ({channel}, {form})")


def test_plain_values_are_still_kept(fake_upstream):
    """Masking keeps what has the expected shape."""
    fake_upstream.queue(
        Reply.error(
            400,
            "Bad request.",
            "invalid_request_error",
            "context_length_exceeded",
            param="messages[0].content",
            headers={"x-request-id": "req_0123abcd", "x-ratelimit-reset-tokens": "20.5s"},
        )
    )
    client = ProviderClient(Endpoint(fake_upstream.base_url, CANARY_KEY), guard=LOOPBACK)
    with pytest.raises(ProviderError) as caught:
        client.list_models()
    error = caught.value
    assert (error.code, error.error_type, error.param, error.request_id) == (
        "context_length_exceeded",
        "invalid_request_error",
        "messages[0].content",
        "req_0123abcd",
    )
    assert client.last_rate_limit.reset_tokens == "20.5s"
    assert client.last_rate_limit.limit_requests == 5000


@pytest.mark.parametrize(
    ("error_type", "kept"),
    [
        ("https://stoplight.io/prism/errors#UNKNOWN", True),  # RFC 9457 problem type
        (f"https://example.com/errors#{CANARY_KEY[3:]}", False),
        ("invalid request error", False),
    ],
)
def test_an_error_type_is_an_identifier_or_a_plain_uri(fake_upstream, error_type, kept):
    fake_upstream.queue(Reply.json({"type": error_type, "title": "Failed", "status": 500}, 500))
    client = ProviderClient(
        Endpoint(fake_upstream.base_url, CANARY_KEY), guard=LOOPBACK, max_retries=0
    )
    with pytest.raises(ProviderError) as caught:
        client.list_models()
    assert caught.value.error_type == (error_type if kept else None)


def _pages_of_every_role(team, connection) -> list[str]:
    one = {"team_id": team.pk, "connection_id": connection.pk}
    return [
        reverse("dashboard:team_home", kwargs={"team_id": team.pk}),
        reverse("connections:list", kwargs={"team_id": team.pk}),
        reverse("connections:detail", kwargs=one),
        reverse("connections:models", kwargs=one),
        reverse("connections:model_detail", kwargs={**one, "model_id": "gpt-4o"}),
    ]


def _pages_of_admins(team, connection) -> list[str]:
    return [
        reverse("connections:costs", kwargs={"team_id": team.pk, "connection_id": connection.pk}),
        reverse("accounts:audit", kwargs={"team_id": team.pk}),
        reverse("accounts:audit_export", kwargs={"team_id": team.pk}),
        reverse("admin:connections_connection_changelist"),
        reverse("admin:connections_connection_change", args=[connection.pk]),
        reverse("admin:connections_connectionerrorevent_changelist"),
        *(
            reverse("admin:connections_connectionerrorevent_change", args=[event.pk])
            for event in connection.error_events.all()
        ),
        reverse("admin:accounts_auditevent_changelist"),
        reverse("admin:connections_taskfailure_changelist"),
    ]


def _assert_nowhere(team, connection, users, superuser, caplog, what: str) -> None:
    """Not on any page of any role, not in the admin, the audit CSV, the log or the database."""
    for role in ("owner", "admin", "member", "viewer"):
        client = client_for(users[role])
        for url in _pages_of_every_role(team, connection):
            response = client.get(url)
            assert response.status_code == 200, (role, url)
            assert_no_canary(_read(response), f"{url} seen by the {role} ({what})")
    client = client_for(superuser)
    for url in _pages_of_admins(team, connection):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_canary(_read(response), f"{url} ({what})")
    assert_no_canary(caplog.text, f"the logs ({what})")
    with db.cursor() as cursor:
        for table in db.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {db.ops.quote_name(table)}")
            assert_no_canary(repr(cursor.fetchall()), f"table {table} ({what})")


def _provoke(client, connection, fake_upstream, reply: Reply) -> list[str]:
    """Test the connection and refresh its models, the provider answering `reply`."""
    one = {"team_id": connection.team_id, "connection_id": connection.pk}
    pages = []
    for name in ("connections:test", "connections:models_refresh"):
        fake_upstream.reset()
        fake_upstream.queue(reply, times=3)
        response = client.post(reverse(name, kwargs=one), follow=True)
        assert response.status_code == 200
        pages.append(_read(response))
    return pages


# Every channel with the whole key (the rate-limit headers all at once: the client's test above
# takes them one by one), and every form of the key in an error's message and code.
SWEEP_CHANNELS = {
    **{name: reply for name, reply in CHANNELS.items() if "x-ratelimit" not in name},
    "x-ratelimit-* of an answer": lambda echo: _models(dict.fromkeys(RATE_LIMIT_HEADERS, echo)),
    "x-ratelimit-* of a 429": lambda echo: Reply.error(
        429,
        "Rate limit reached for requests.",
        "requests",
        "rate_limit_exceeded",
        headers={**dict.fromkeys(RATE_LIMIT_HEADERS, echo), "Retry-After": "0"},
    ),
}
SWEEP = [(channel, "whole") for channel in SWEEP_CHANNELS] + [
    (channel, form)
    for channel in ("error message", "error code")
    for form in FORMS
    if form != "whole"
]


@pytest.mark.parametrize(("channel", "form"), SWEEP)
def test_an_echoed_key_appears_nowhere(
    canary, team, users, superuser, fake_upstream, all_logs_at_debug, channel, form
):
    services.connection_set_admin_key(
        connection=canary, user=users["admin"], admin_key=CANARY_ADMIN_KEY
    )
    reply = SWEEP_CHANNELS[channel](FORMS[form])
    for page in _provoke(client_for(users["admin"]), canary, fake_upstream, reply):
        assert_no_canary(page, f"the page after the call ({channel}, {form})")
    canary.refresh_from_db()
    _assert_nowhere(team, canary, users, superuser, all_logs_at_debug, f"{channel}, {form}")


def test_a_reason_phrase_that_echoes_the_key_is_not_logged(all_logs_at_debug):
    """httpx logs each answer's status line, whose reason phrase the server writes."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            json={"error": {"message": "No.", "type": "x", "code": "invalid_api_key"}},
            extensions={"reason_phrase": f"Bad key {CANARY_KEY[3:]}".encode()},
        )

    endpoint = Endpoint("https://api.openai.com/v1", CANARY_KEY)
    client = ProviderClient(endpoint, guard=LOOPBACK, transport=httpx.MockTransport(handler))
    with pytest.raises(ProviderError):
        client.list_models()
    assert '/v1/models "HTTP/1.1 401 Unauthorized"' in all_logs_at_debug.text
    assert_no_canary(all_logs_at_debug.text, "the logs")
