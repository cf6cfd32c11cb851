"""A canary key goes in through the create form; it must never come out again.

Not in any page (including the admin and the audit log), not in any log record at DEBUG for
every logger, not in an error report, and not in plaintext anywhere in the database. Only the
fake provider may see it, in the Authorization header.
"""

import logging
import sys

import pytest
from django.db import connection as db
from django.test import Client
from django.urls import reverse
from django.views.debug import ExceptionReporter

from accounts.models import Membership, Role
from connections import services
from connections.client import ProviderClient
from connections.models import Connection
from tests.conftest import client_for, make_user
from tests.connections.helpers import CANARY_KEY
from tests.fakeupstream import Reply

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
