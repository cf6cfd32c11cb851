import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from connections.models import ConnectionErrorEvent, Health
from tests.conftest import client_for
from tests.connections.helpers import make_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection(team, owner):
    return make_connection(
        team,
        created_by=owner,
        organization_id="org-acme123",
        health=Health.RATE_LIMITED,
        last_checked_at=timezone.now(),
        last_error_kind="rate_limited",
        last_error="Rate limit reached (429) (rate_limit_exceeded)",
        rate_limit={
            "limit_requests": 3,
            "remaining_requests": 0,
            "reset_requests": "1s",
            "limit_tokens": 800000,
            "remaining_tokens": 799975,
            "reset_tokens": "6m0s",
            "captured_at": "2026-08-01T10:00:00+00:00",
        },
    )


@pytest.fixture
def error_event(connection, admin_user):
    return ConnectionErrorEvent.objects.create(
        connection=connection,
        kind="rate_limited",
        code="rate_limit_exceeded",
        status=429,
        request_id="req_0123456789",
        message="Rate limit reached for gpt-4o in organization org-fake",
        operation="connection.test",
        user=admin_user,
    )


def url(connection) -> str:
    return reverse(
        "connections:detail",
        kwargs={"team_id": connection.team_id, "connection_id": connection.pk},
    )


def test_shows_settings_health_and_rate_limits(viewer_client, connection):
    response = viewer_client.get(url(connection))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Production" in page
    assert "org-acme123" in page
    assert "sk-…abcd" in page
    assert "Rate limited" in page
    assert "Rate limit reached (429)" in page
    assert "6891829" in page  # the help article
    # Grouped figures; the reset time in words (figures this old: the limit is full again).
    assert "799,975" in page and "800,000" in page and "already" in page
    assert "6m0s" not in page


def test_admins_see_recent_errors_with_provider_details(admin_client_, connection, error_event):
    page = admin_client_.get(url(connection)).content.decode()
    assert "Recent errors" in page
    assert "req_0123456789" in page
    assert "rate_limit_exceeded" in page
    # What Tablero was doing, in words; the stored operation name stays out of the page.
    assert "Testing the connection" in page
    assert "connection.test" not in page


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_others_see_no_error_history_and_no_admin_buttons(users, connection, error_event, role):
    page = client_for(users[role]).get(url(connection)).content.decode()
    assert "Recent errors" not in page
    assert "req_0123456789" not in page
    assert "Test now" not in page
    assert "Replace key" not in page
    assert "Remove connection" not in page


def test_admin_buttons(admin_client_, connection):
    page = admin_client_.get(url(connection)).content.decode()
    for name in ("test", "edit", "replace_key", "delete", "models"):
        assert (
            reverse(
                f"connections:{name}",
                kwargs={"team_id": connection.team_id, "connection_id": connection.pk},
            )
            in page
        )


def test_unchecked_connection(viewer_client, team):
    connection = make_connection(team, name="New")
    page = viewer_client.get(url(connection)).content.decode()
    assert "Not checked yet" in page
    assert "has not reported rate limits" in page


def test_connection_of_another_team_is_404(owner_client, other_team):
    connection = make_connection(other_team)
    assert owner_client.get(url(connection)).status_code == 404


def test_unknown_uuid_is_404(owner_client, team):
    response = owner_client.get(
        reverse("connections:detail", kwargs={"team_id": team.pk, "connection_id": uuid.uuid4()})
    )
    assert response.status_code == 404


def test_outsider_gets_404(outsider_client, connection):
    assert outsider_client.get(url(connection)).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, connection):
    response = client.get(url(connection))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("reader", ["viewer", "member"])
def test_a_reader_is_told_whom_to_ask_not_to_replace_the_key(request, team, users, reader):
    broken = make_connection(
        team, name="Broken", health=Health.INVALID_KEY, last_error_kind="invalid_key"
    )
    page = (
        client_for(users[reader])
        .get(reverse("connections:detail", args=[team.pk, broken.pk]))
        .content.decode()
    )
    assert (
        "only an admin of the team can fix this. "
        "Ask an admin: admin@example.com, owner@example.com." in page
    )
    assert "Create a new secret key" in page.split("What an admin will do:")[1]
    assert "What an admin will do:" in page


def test_an_admin_is_told_what_to_do(team, users):
    broken = make_connection(
        team, name="Broken", health=Health.INVALID_KEY, last_error_kind="invalid_key"
    )
    page = (
        client_for(users["admin"])
        .get(reverse("connections:detail", args=[team.pk, broken.pk]))
        .content.decode()
    )
    assert "only an admin of the team can fix this" not in page
    assert "replace the key of this connection" in page


def test_a_passing_problem_needs_no_admin(team, users, connection):
    page = (
        client_for(users["viewer"])
        .get(reverse("connections:detail", args=[team.pk, connection.pk]))
        .content.decode()
    )
    assert "only an admin of the team can fix this" not in page


def test_repeated_errors_are_grouped_with_first_and_last_seen(admin_client_, connection):
    now = timezone.now()
    for minutes in (30, 20, 10):
        ConnectionErrorEvent.objects.create(
            connection=connection,
            kind="quota_exhausted",
            code="insufficient_quota",
            status=429,
            operation="models.list",
            request_id=f"req_{minutes}",
            created_at=now - timedelta(minutes=minutes),
        )
    ConnectionErrorEvent.objects.create(
        connection=connection, kind="invalid_key", status=401, operation="connection.test"
    )
    page = admin_client_.get(url(connection)).content.decode()
    assert page.count('<details class="error-group">') == 2
    assert "3 times" in page and "Failed 3 times while listing models" in page
    assert "models.list" not in page
    assert "req_10" in page and "req_30" not in page  # the newest of the group, in full


def test_grouped_errors_in_spanish(admin_client_, connection):
    for _n in range(2):
        ConnectionErrorEvent.objects.create(
            connection=connection, kind="quota_exhausted", status=429, operation="models.list"
        )
    admin_client_.cookies["django_language"] = "es"
    page = admin_client_.get(url(connection)).content.decode()
    assert "Falló 2 veces al listar los modelos" in page
