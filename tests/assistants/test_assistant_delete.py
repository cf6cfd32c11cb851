"""Deleting an assistant: confirmation, remote copy first, local record kept on failure."""

import uuid

import pytest
from django.urls import reverse

from assistants import services
from assistants.models import Assistant, SyncState
from fakeprovider import Reply
from tests.assistants.helpers import check_refusals

pytestmark = pytest.mark.django_db


def url(assistant) -> str:
    return reverse(
        "assistants:delete", kwargs={"team_id": assistant.team_id, "assistant_id": assistant.pk}
    )


@pytest.fixture
def synced(team, member, connection, fake):
    return services.assistant_create(
        team=team,
        user=member,
        connection=connection,
        data={"name": "Math Tutor", "model": "gpt-4o"},
    ).value


def test_confirmation_names_the_remote_copy(synced, member_client):
    response = member_client.get(url(synced))

    content = response.content.decode()
    assert response.status_code == 200
    assert synced.remote_id in content
    assert "Its past runs stay in the run history." in content
    assert Assistant.objects.filter(pk=synced.pk).exists()


def test_delete_removes_both(team, synced, fake, member_client):
    response = member_client.post(url(synced), follow=True)

    assert response.redirect_chain[-1][0] == reverse("assistants:list", kwargs={"team_id": team.pk})
    assert "Assistant “Math Tutor” deleted." in response.content.decode()
    assert not Assistant.objects.exists()
    assert fake.state["assistants"] == {}


def test_delete_with_remote_already_gone(synced, fake, member_client):
    fake.state["assistants"].clear()

    member_client.post(url(synced))

    assert not Assistant.objects.exists()


def test_failure_keeps_the_assistant_and_explains(synced, fake, member_client):
    fake.queue(Reply.error(403, "No access.", "invalid_request_error", None))

    response = member_client.post(url(synced), follow=True)

    synced.refresh_from_db()
    assert synced.sync_state == SyncState.FAILED
    content = response.content.decode()
    assert "could not be deleted on the provider, so it was kept here" in content
    assert "Access denied (403)" in content


def test_refusals(users, synced):
    check_refusals(users, url(synced), min_role="member")
    check_refusals(users, url(synced), min_role="member", method="post")
    assert Assistant.objects.filter(pk=synced.pk).exists()


def test_unknown_assistant_is_404(team, owner_client):
    response = owner_client.post(
        reverse("assistants:delete", kwargs={"team_id": team.pk, "assistant_id": uuid.uuid4()})
    )
    assert response.status_code == 404


def test_delete_reaches_the_remote_copy_after_the_connection_moved_to_responses(
    synced, connection, fake, member_client
):
    # An admin set the connection to the Responses API after the assistant was made on the
    # Assistants API: its remote copy still exists and must not be left behind.
    connection.run_api = "responses"
    connection.save(update_fields=["run_api"])

    member_client.post(url(synced))

    assert not Assistant.objects.exists()
    assert fake.requests_to(f"/v1/assistants/{synced.remote_id}", "DELETE") != []
    assert fake.state["assistants"] == {}


def test_delete_on_a_server_without_the_assistants_api_counts_as_gone(
    synced, connection, fake, member_client
):
    connection.run_api = "responses"
    connection.save(update_fields=["run_api"])
    fake.assistants_api_removed = True

    member_client.post(url(synced))

    assert not Assistant.objects.exists()
