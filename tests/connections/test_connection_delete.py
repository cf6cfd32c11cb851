import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from connections.models import Connection
from tests.conftest import client_for
from tests.connections.helpers import make_connection

pytestmark = pytest.mark.django_db


def url(connection) -> str:
    return reverse(
        "connections:delete",
        kwargs={"team_id": connection.team_id, "connection_id": connection.pk},
    )


def test_confirmation_page(admin_client_, team):
    connection = make_connection(team)
    page = admin_client_.get(url(connection)).content.decode()
    assert "Remove connection" in page
    assert "sk-…abcd" in page
    assert "revoke it there" in page
    assert Connection.objects.filter(pk=connection.pk).exists()


def test_removes_the_connection_and_its_key(admin_client_, admin_user, team):
    connection = make_connection(team)

    response = admin_client_.post(url(connection), follow=True)

    assert response.redirect_chain[-1][0] == reverse(
        "connections:list", kwargs={"team_id": team.pk}
    )
    assert "Connection removed; its key was deleted." in response.content.decode()
    assert not Connection.objects.filter(pk=connection.pk).exists()
    event = AuditEvent.objects.get(action="connection.delete")
    assert event.actor == admin_user
    assert event.target_id == str(connection.pk)
    assert event.data == {"name": "Production", "provider": "openai", "api_key_last4": "abcd"}


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_lower_roles_are_refused(users, team, role):
    connection = make_connection(team)
    client = client_for(users[role])
    assert client.get(url(connection)).status_code == 403
    assert client.post(url(connection)).status_code == 403
    assert Connection.objects.filter(pk=connection.pk).exists()


def test_connection_of_another_team_is_404(owner_client, other_team):
    connection = make_connection(other_team)
    assert owner_client.post(url(connection)).status_code == 404
    assert Connection.objects.filter(pk=connection.pk).exists()


def test_outsider_gets_404(outsider_client, team):
    assert outsider_client.post(url(make_connection(team))).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, team):
    connection = make_connection(team)
    assert client.post(url(connection)).status_code == 302
    assert Connection.objects.filter(pk=connection.pk).exists()
