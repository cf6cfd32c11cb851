import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from connections.models import Health
from fakeprovider import ADMIN_KEY_OK, KEY_INVALID, KEY_OK
from tests.conftest import client_for
from tests.connections.helpers import make_connection, make_unreadable

pytestmark = pytest.mark.django_db

NEW_KEY = "sk-test-ok-replacement00000wxyz"


def url(connection) -> str:
    return reverse(
        "connections:replace_key",
        kwargs={"team_id": connection.team_id, "connection_id": connection.pk},
    )


def test_form_shows_the_masked_key_only(admin_client_, team):
    connection = make_connection(team, key=KEY_OK)
    page = admin_client_.get(url(connection)).content.decode()
    assert "sk-…abcd" in page
    assert KEY_OK not in page
    assert 'type="password"' in page


def test_a_working_key_replaces_the_old_one(admin_client_, admin_user, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_INVALID)

    response = admin_client_.post(url(connection), {"api_key": NEW_KEY}, follow=True)

    assert "Key replaced. The new key works." in response.content.decode()
    connection.refresh_from_db()
    assert connection.api_key() == NEW_KEY
    assert connection.masked_key == "sk-…wxyz"
    assert connection.health == Health.OK
    (sent,) = fake_upstream.requests
    assert sent.headers["authorization"] == f"Bearer {NEW_KEY}"
    event = AuditEvent.objects.get(action="connection.replace_key")
    assert event.actor == admin_user
    assert event.data["api_key_last4"] == "wxyz"
    assert event.data["base_url_changed"] is False


def test_a_failing_key_changes_nothing(admin_client_, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)

    response = admin_client_.post(url(connection), {"api_key": KEY_INVALID})

    page = response.content.decode()
    assert response.status_code == 200
    assert "The check failed, nothing was changed" in page
    assert "Invalid authentication (401)" in page
    assert KEY_INVALID not in page
    connection.refresh_from_db()
    assert connection.api_key() == KEY_OK


def test_save_anyway(admin_client_, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    admin_client_.post(url(connection), {"api_key": KEY_INVALID, "save_anyway": "on"})
    connection.refresh_from_db()
    assert connection.api_key() == KEY_INVALID
    assert connection.health == Health.INVALID_KEY


def test_new_base_url_goes_with_the_key(admin_client_, team, fake_upstream):
    connection = make_connection(team, base_url="http://127.0.0.1:9/v1", key=KEY_OK)
    admin_client_.post(url(connection), {"api_key": NEW_KEY, "base_url": fake_upstream.base_url})
    connection.refresh_from_db()
    assert connection.base_url == fake_upstream.base_url
    assert AuditEvent.objects.get(action="connection.replace_key").data["base_url_changed"]


def test_a_new_base_url_removes_the_admin_key(admin_client_, team, fake_upstream):
    """Otherwise the organization's admin key would be sent to a server chosen by whoever
    replaced the API key, on the next visit of the costs page."""
    connection = make_connection(team, base_url="http://127.0.0.1:9/v1", key=KEY_OK)
    connection.set_admin_key(ADMIN_KEY_OK)
    connection.save()

    response = admin_client_.post(
        url(connection), {"api_key": NEW_KEY, "base_url": fake_upstream.base_url}, follow=True
    )

    assert "The admin key was entered for the old base URL" in response.content.decode()
    connection.refresh_from_db()
    assert connection.base_url == fake_upstream.base_url
    assert not connection.has_admin_key and connection.masked_admin_key == ""
    assert AuditEvent.objects.get(action="connection.replace_key").data["costs_access_removed"]
    admin_client_.get(reverse("connections:costs", args=[team.pk, connection.pk]))
    assert fake_upstream.requests_to("/v1/organization/costs") == []


def test_the_same_base_url_keeps_the_admin_key(admin_client_, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    connection.set_admin_key(ADMIN_KEY_OK)
    connection.save()
    admin_client_.post(url(connection), {"api_key": NEW_KEY, "base_url": fake_upstream.base_url})
    connection.refresh_from_db()
    assert connection.api_key() == NEW_KEY
    assert connection.admin_key() == ADMIN_KEY_OK


def test_the_key_is_required(admin_client_, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url)
    response = admin_client_.post(url(connection), {"base_url": "https://example.com/v1"})
    assert response.context["form"].errors["api_key"]
    connection.refresh_from_db()
    assert connection.base_url == fake_upstream.base_url
    assert fake_upstream.requests == []


def test_refused_base_url(admin_client_, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url)
    response = admin_client_.post(
        url(connection), {"api_key": NEW_KEY, "base_url": "http://10.1.2.3/v1"}
    )
    assert response.context["form"].errors["base_url"]
    assert fake_upstream.requests == []


def test_an_unreadable_key_can_be_entered_again(admin_client_, team, fake_upstream):
    good = make_connection(team, name="Good", base_url=fake_upstream.base_url)
    broken = make_unreadable(
        make_connection(team, name="Broken", base_url=fake_upstream.base_url), other=good
    )
    admin_client_.post(url(broken), {"api_key": NEW_KEY})
    broken.refresh_from_db()
    assert broken.api_key() == NEW_KEY
    assert broken.health == Health.OK


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_lower_roles_are_refused(users, team, role, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    client = client_for(users[role])
    assert client.get(url(connection)).status_code == 403
    assert client.post(url(connection), {"api_key": NEW_KEY}).status_code == 403
    connection.refresh_from_db()
    assert connection.api_key() == KEY_OK


def test_outsider_gets_404(outsider_client, team):
    assert outsider_client.get(url(make_connection(team))).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, team):
    assert client.get(url(make_connection(team))).status_code == 302
