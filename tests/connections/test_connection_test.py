import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from connections.models import ConnectionErrorEvent, Health
from fakeprovider import KEY_INVALID, KEY_OK, KEY_OVERLOADED, KEY_RATE_LIMIT, Reply
from tests.conftest import client_for
from tests.connections.helpers import make_connection, make_unreadable

pytestmark = pytest.mark.django_db


def url(connection) -> str:
    return reverse(
        "connections:test",
        kwargs={"team_id": connection.team_id, "connection_id": connection.pk},
    )


def test_a_working_key(admin_client_, admin_user, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)

    response = admin_client_.post(url(connection), follow=True)

    assert "The connection works." in response.content.decode()
    connection.refresh_from_db()
    assert connection.health == Health.OK
    assert connection.last_checked_at is not None
    assert connection.last_error == ""
    assert connection.rate_limit["remaining_requests"] == 4999
    assert len(connection.models_cache) == 12
    (sent,) = fake_upstream.requests_to("/v1/models")
    assert (sent.method, sent.path) == ("GET", "/v1/models")
    assert sent.headers["authorization"] == f"Bearer {KEY_OK}"
    event = AuditEvent.objects.get(action="connection.test")
    assert event.actor == admin_user
    assert event.data["health"] == "ok"


def test_an_invalid_key_is_recorded_and_explained(admin_client_, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_INVALID)

    response = admin_client_.post(url(connection), follow=True)

    page = response.content.decode()
    assert "The check failed: Invalid authentication (401)." in page
    assert "Create a new secret key" in page
    connection.refresh_from_db()
    assert connection.health == Health.INVALID_KEY
    assert connection.last_error == "Invalid authentication (401) (invalid_api_key)"
    event = ConnectionErrorEvent.objects.get(connection=connection)
    assert (event.kind, event.status, event.code) == ("invalid_key", 401, "invalid_api_key")
    assert event.request_id.startswith("req_")
    assert KEY_INVALID not in event.message


def test_overloaded_provider_is_retried_then_reported(admin_client_, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OVERLOADED)

    admin_client_.post(url(connection))

    connection.refresh_from_db()
    assert connection.health == Health.OVERLOADED
    assert len(fake_upstream.requests) == 3  # one call and two retries


def test_rate_limited_keeps_the_headers(admin_client_, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_RATE_LIMIT)

    admin_client_.post(url(connection))

    connection.refresh_from_db()
    assert connection.health == Health.RATE_LIMITED
    assert connection.rate_limit["remaining_requests"] == 0
    assert connection.rate_limit["limit_requests"] == 3


def test_a_message_with_nul_and_lone_surrogates_is_stored_and_shown(
    admin_client_, team, fake_upstream
):
    """JSON may carry \\u0000 (PostgreSQL stores no NUL) and a lone \\ud800 (nothing
    encodes it): both used to crash the test button, and then the page."""
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    body = (
        b'{"error": {"message": "Bad\\u0000 key \\ud800here", "type": "x",'
        b' "code": "invalid_api_key\\u0000"}}'
    )
    fake_upstream.queue(Reply(401, body, {"Content-Type": "application/json"}))

    response = admin_client_.post(url(connection), follow=True)

    assert response.status_code == 200
    assert "Bad key ?here" in response.content.decode()
    event = ConnectionErrorEvent.objects.get(connection=connection)
    assert (event.message, event.code) == ("Bad key ?here", "invalid_api_key")
    connection.refresh_from_db()
    assert connection.health == Health.INVALID_KEY


def test_an_unreadable_key_makes_no_call(admin_client_, team, fake_upstream):
    good = make_connection(team, name="Good", base_url=fake_upstream.base_url)
    broken = make_unreadable(
        make_connection(team, name="Broken", base_url=fake_upstream.base_url), other=good
    )

    response = admin_client_.post(url(broken), follow=True)

    assert "The stored key can&#x27;t be read" in response.content.decode()
    broken.refresh_from_db()
    assert broken.health == Health.KEY_UNREADABLE
    assert fake_upstream.requests == []


def test_unreachable_server(admin_client_, team, settings):
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = ["127.0.0.1"]
    connection = make_connection(team)  # port 9: refused

    admin_client_.post(url(connection))

    connection.refresh_from_db()
    assert connection.health == Health.UNREACHABLE


def test_get_is_not_allowed(admin_client_, team):
    connection = make_connection(team)
    assert admin_client_.get(url(connection)).status_code == 405


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_lower_roles_are_refused(users, team, role, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url)
    assert client_for(users[role]).post(url(connection)).status_code == 403
    assert fake_upstream.requests == []


def test_outsider_gets_404(outsider_client, team):
    assert outsider_client.post(url(make_connection(team))).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, team):
    response = client.post(url(make_connection(team)))
    assert response.status_code == 302
