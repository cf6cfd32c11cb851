"""Editing an assistant changes the local record, then the remote copy."""

import json
import uuid

import pytest
from django.urls import reverse

from assistants import services
from assistants.models import SyncState
from fakeprovider import Reply
from tests.assistants.helpers import check_refusals

pytestmark = pytest.mark.django_db

FUNCTION = {"name": "get_weather", "parameters": {"type": "object"}}


def url(assistant) -> str:
    return reverse(
        "assistants:edit", kwargs={"team_id": assistant.team_id, "assistant_id": assistant.pk}
    )


@pytest.fixture
def synced(team, member, connection, fake):
    return services.assistant_create(
        team=team,
        user=member,
        connection=connection,
        data={
            "name": "Math Tutor",
            "model": "gpt-4o",
            "tools": [{"type": "file_search"}, {"type": "function", "function": FUNCTION}],
            "metadata": {"team": "maths"},
        },
    ).value


def data(**extra):
    return {
        "name": "Algebra Tutor",
        "description": "",
        "instructions": "Only algebra.",
        "model": "gpt-4o-mini",
        "functions": "",
        "temperature": "",
        "top_p": "0.5",
        "metadata": "",
        **extra,
    }


def test_form_is_prefilled(synced, member_client):
    content = member_client.get(url(synced)).content.decode()

    assert 'value="Math Tutor"' in content
    assert '<option value="gpt-4o" selected>' in content
    assert (
        'name="file_search" aria-describedby="id_file_search_helptext" id="id_file_search" checked'
        in content
    )
    assert "get_weather" in content
    assert "{&quot;team&quot;: &quot;maths&quot;}" in content


def test_save_updates_the_remote_copy(synced, fake, member_client):
    response = member_client.post(url(synced), data())

    assert response.status_code == 302
    synced.refresh_from_db()
    assert synced.name == "Algebra Tutor"
    assert synced.tools == []
    assert synced.top_p == 0.5
    assert synced.sync_state == SyncState.SYNCED
    sent = fake.requests_to(f"/v1/assistants/{synced.remote_id}", "POST")[0].json
    assert sent["name"] == "Algebra Tutor"
    assert sent["model"] == "gpt-4o-mini"
    assert sent["instructions"] == "Only algebra."
    # The user's metadata is cleared; Tablero's tag (the record's id) stays on the copy.
    assert sent["metadata"] == {"tablero_id": str(synced.pk)}


def test_invalid_input_is_shown(synced, member_client, fake):
    response = member_client.post(url(synced), data(functions=json.dumps([{"name": ""}])))

    assert response.status_code == 200
    assert "the name must be 1 to 64 letters" in response.content.decode()
    synced.refresh_from_db()
    assert synced.name == "Math Tutor"


def test_provider_failure_is_explained(synced, fake, member_client):
    member_client.get(url(synced))  # the model list is cached from here on
    fake.queue(Reply.error(500, "Boom", "server_error", None))

    response = member_client.post(url(synced), data(), follow=True)

    # A POST that may have been carried out is not sent again.
    assert len(fake.requests_to(f"/v1/assistants/{synced.remote_id}", "POST")) == 1
    synced.refresh_from_db()
    assert synced.name == "Algebra Tutor"
    assert synced.sync_state == SyncState.FAILED
    content = response.content.decode()
    assert "Saved in Tablero, but not on the provider" in content
    assert "The provider had an error (5xx)" in content


def test_refusals(users, synced):
    check_refusals(users, url(synced), min_role="member")
    check_refusals(users, url(synced), min_role="member", method="post", data=data())
    synced.refresh_from_db()
    assert synced.name == "Math Tutor"


def test_unknown_assistant_is_404(team, owner_client):
    response = owner_client.get(
        reverse("assistants:edit", kwargs={"team_id": team.pk, "assistant_id": uuid.uuid4()})
    )
    assert response.status_code == 404
