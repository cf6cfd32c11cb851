"""In the Django admin a connection's team is chosen when it is added and fixed after: its key
is encrypted for its row and its assistants belong to the team, so it never moves."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from connections.models import Connection
from fakeprovider import KEY_OK
from tests.conftest import client_for, make_user
from tests.connections.helpers import make_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def su_client(db):
    return client_for(make_user("root@example.com", is_staff=True, is_superuser=True))


def change_data(connection, **overrides) -> dict:
    return {
        "team": connection.team_id,
        "name": connection.name,
        "provider": connection.provider,
        "base_url": connection.base_url,
        "organization_id": "",
        "project_id": "",
        "api_version": "",
        "run_api": "auto",
        "new_api_key": "",
        "new_admin_key": "",
        **overrides,
    }


def test_the_change_form_does_not_move_a_connection_to_another_team(su_client, team, other_team):
    connection = make_connection(team, key=KEY_OK)
    url = reverse("admin:connections_connection_change", args=[connection.pk])

    response = su_client.post(url, change_data(connection, team=other_team.pk, name="Renamed"))

    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.team == team
    assert connection.name == "Renamed"
    assert connection.api_key() == KEY_OK  # still readable: it stayed on its row and team
    event = AuditEvent.objects.get(action="connection.update")
    assert event.team == team
    assert "team" not in event.data["changed"]


def test_the_change_form_shows_the_team_without_a_choice(su_client, team, other_team):
    connection = make_connection(team, key=KEY_OK)

    page = su_client.get(
        reverse("admin:connections_connection_change", args=[connection.pk])
    ).content.decode()

    assert "Acme" in page
    assert 'name="team"' not in page  # no field to change it
    assert "Other Co" not in page


def test_the_change_form_still_refuses_a_name_taken_in_another_case(su_client, team):
    make_connection(team, name="Production")
    research = make_connection(team, name="Research")

    response = su_client.post(
        reverse("admin:connections_connection_change", args=[research.pk]),
        change_data(research, name="PRODUCTION"),
    )

    assert response.status_code == 200
    assert "This team already has a connection with this name." in response.content.decode()
    research.refresh_from_db()
    assert research.name == "Research"


def test_the_add_form_lets_the_team_be_chosen(su_client, team, other_team, fake_upstream):
    response = su_client.post(
        reverse("admin:connections_connection_add"),
        {
            "team": other_team.pk,
            "name": "Added in the admin",
            "provider": "openai",
            "base_url": fake_upstream.base_url,
            "organization_id": "",
            "project_id": "",
            "api_version": "",
            "run_api": "auto",
            "new_api_key": KEY_OK,
            "new_admin_key": "",
        },
    )

    assert response.status_code == 302
    connection = Connection.objects.get(name="Added in the admin")
    assert connection.team == other_team
    assert connection.api_key() == KEY_OK
