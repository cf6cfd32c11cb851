"""The team's assistants: listed, filtered, searched; members can create and import."""

import uuid

import pytest
from django.urls import reverse

from tests.assistants.helpers import check_refusals, fake_connection, make_assistant

pytestmark = pytest.mark.django_db


def url(team) -> str:
    return reverse("assistants:list", kwargs={"team_id": team.pk})


def test_lists_the_teams_assistants_only(team, other_team, connection, fake, viewer_client):
    make_assistant(team, connection, name="Math Tutor", remote_id="asst_abc123")
    make_assistant(other_team, fake_connection(other_team, fake), name="Secret Other")

    response = viewer_client.get(url(team))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Math Tutor" in content
    assert "asst_abc123" in content
    assert "Secret Other" not in content


def test_filter_by_connection_and_search(team, connection, fake, member_client):
    second = fake_connection(team, fake, name="Second")
    make_assistant(team, connection, name="Math Tutor")
    make_assistant(team, second, name="Poet", description="Writes verse")

    by_connection = member_client.get(url(team), {"connection": second.pk}).content.decode()
    by_search = member_client.get(url(team), {"q": "verse"}).content.decode()
    nothing = member_client.get(url(team), {"q": "zzz"}).content.decode()

    assert "Poet" in by_connection and "Math Tutor" not in by_connection
    assert "Poet" in by_search and "Math Tutor" not in by_search
    assert "No assistant matches this filter." in nothing


def test_filter_offers_only_the_teams_connections(
    team, other_team, connection, fake, member_client
):
    foreign = fake_connection(other_team, fake, name="Foreign")
    make_assistant(team, connection, name="Math Tutor")

    response = member_client.get(url(team), {"connection": foreign.pk})

    content = response.content.decode()
    assert response.status_code == 200
    assert "Foreign" not in content
    assert "Select a valid choice" in content


def test_member_sees_create_and_import(team, connection, member_client):
    content = member_client.get(url(team)).content.decode()
    assert reverse("assistants:create", kwargs={"team_id": team.pk}) in content
    assert (
        reverse("assistants:import", kwargs={"team_id": team.pk, "connection_id": connection.pk})
        in content
    )


def test_viewer_sees_no_create_or_import(team, connection, viewer_client):
    content = viewer_client.get(url(team)).content.decode()
    assert reverse("assistants:create", kwargs={"team_id": team.pk}) not in content
    assert "Import from" not in content


def test_without_connections_says_what_to_do(team, owner_client, viewer_client):
    assert "Add a connection" in owner_client.get(url(team)).content.decode()
    assert "Ask an admin" in viewer_client.get(url(team)).content.decode()


def test_refusals(team, users):
    check_refusals(users, url(team), min_role="viewer")


def test_unknown_team_is_404(owner_client):
    response = owner_client.get(reverse("assistants:list", kwargs={"team_id": uuid.uuid4()}))
    assert response.status_code == 404
