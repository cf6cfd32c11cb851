"""Importing the assistants that already exist on a connection's provider account."""

import uuid

import pytest
from django.urls import reverse

from assistants import services
from assistants.models import Assistant, SyncState
from assistants.services import importing
from fakeprovider import KEY_QUOTA
from tests.assistants.helpers import check_refusals, fake_connection

pytestmark = pytest.mark.django_db


def url(connection) -> str:
    return reverse(
        "assistants:import", kwargs={"team_id": connection.team_id, "connection_id": connection.pk}
    )


def seed(fake, count: int) -> None:
    for number in range(count):
        fake.state["assistants"][f"asst_{number:03d}"] = {
            "id": f"asst_{number:03d}",
            "object": "assistant",
            "created_at": 1700000000 + number,
            "name": f"Remote {number}",
            "description": None,
            "model": "gpt-4o",
            "instructions": "Old instructions",
            "tools": [{"type": "retrieval"}],
            "metadata": {},
            "_seq": number,
        }


def test_import_adds_the_remote_assistants(team, connection, fake, member_client):
    seed(fake, 3)

    response = member_client.post(url(connection), follow=True)

    assert "3 new, 0 already here, 0 skipped" in response.content.decode()
    assistants = Assistant.objects.filter(team=team, connection=connection)
    assert assistants.count() == 3
    assert {a.sync_state for a in assistants} == {SyncState.SYNCED}
    assert assistants.first().tools == [{"type": "file_search"}]
    assert "Remote 2" in response.content.decode()


def test_import_failure_is_explained_and_adds_nothing(team, fake, member_client):
    connection = fake_connection(team, fake, key=KEY_QUOTA, run_api="assistants")

    response = member_client.post(url(connection))

    content = response.content.decode()
    assert response.status_code == 200
    assert "Importing from “Fake” failed; nothing was added" in content
    assert "You exceeded your current quota" in content
    assert not Assistant.objects.exists()


def test_responses_api_has_nothing_to_import(connection, fake, member_client):
    fake.assistants_api_removed = True

    response = member_client.post(url(connection), follow=True)

    assert "there is nothing to import" in response.content.decode()


def test_another_teams_connection_is_404(team, other_team, fake, member_client):
    foreign = fake_connection(other_team, fake)
    response = member_client.post(
        reverse("assistants:import", kwargs={"team_id": team.pk, "connection_id": foreign.pk})
    )
    assert response.status_code == 404
    assert fake.requests == []


def test_refusals(users, connection, fake):
    check_refusals(users, url(connection), min_role="member", method="post")
    assert fake.requests == []


def test_get_is_not_allowed(connection, member_client):
    assert member_client.get(url(connection)).status_code == 405


def test_unknown_connection_is_404(team, owner_client):
    response = owner_client.post(
        reverse("assistants:import", kwargs={"team_id": team.pk, "connection_id": uuid.uuid4()})
    )
    assert response.status_code == 404


def test_an_assistant_added_meanwhile_by_another_import_counts_as_known(
    team, member, connection, fake, monkeypatch
):
    # A double click: two imports list the same remote assistants; the other one saves them
    # after this one read which were known. The database's unique constraint decides.
    seed(fake, 2)
    services.assistant_import(team=team, user=member, connection=connection)
    monkeypatch.setattr(importing, "_known_remote_ids", lambda connection: set())

    result = services.assistant_import(team=team, user=member, connection=connection).value

    assert (result.added, result.known, result.skipped) == (0, 2, 0)
    assert Assistant.objects.filter(connection=connection).count() == 2


def test_double_click_on_import_adds_each_assistant_once(team, connection, fake, member_client):
    seed(fake, 2)

    member_client.post(url(connection))
    response = member_client.post(url(connection), follow=True)

    assert "0 new, 2 already here, 0 skipped" in response.content.decode()
    assert Assistant.objects.filter(connection=connection).count() == 2


def test_a_remote_id_that_cannot_go_into_a_url_is_skipped(team, member, connection, fake):
    # Such an assistant could never be synced or deleted (its id is refused in URL paths), so
    # its local record would be stuck.
    seed(fake, 1)
    fake.state["assistants"]["asst/../x"] = {
        **fake.state["assistants"]["asst_000"],
        "id": "asst/../x",
        "_seq": 1,
    }

    result = services.assistant_import(team=team, user=member, connection=connection).value

    assert (result.added, result.skipped) == (1, 1)
    assert list(Assistant.objects.values_list("remote_id", flat=True)) == ["asst_000"]
