"""The assistant pages never wait on the provider: creating, saving, retrying the sync,
deleting and importing save what is local at once, queue the provider's part, and say
"syncing…", "deleting…" or "importing…" until a consumer has done it.

Huey runs as a deployment has it here (`queued`): a task waits in the queue until the test
runs it, so "the page answered without asking the provider" is seen in the fake's requests."""

import uuid

import pytest
from django.urls import reverse

from assistants.models import Assistant, SyncState
from fakeprovider.keys import KEY_INVALID, KEY_QUOTA
from tests.assistants.helpers import fake_connection, make_assistant
from tests.assistants.test_assistant_import import seed
from tests.conftest import client_for
from tests.taskqueue import empty_queue, queued, queued_names, run_queued  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("queued")]


def _url(name: str, assistant: Assistant) -> str:
    return reverse(
        f"assistants:{name}", kwargs={"team_id": assistant.team_id, "assistant_id": assistant.pk}
    )


def list_url(team) -> str:
    return reverse("assistants:list", kwargs={"team_id": team.pk})


def form_data(connection, **extra):
    return {
        "connection": connection.pk,
        "name": "Math Tutor",
        "description": "",
        "instructions": "You are a personal math tutor.",
        "model": "gpt-4o",
        "code_interpreter": "on",
        "functions": "",
        "temperature": "",
        "top_p": "",
        "metadata": "",
        "submission_token": str(uuid.uuid4()),
        **extra,
    }


def test_creating_answers_syncing_and_a_task_pushes_it(team, connection, fake, member_client):
    url = reverse("assistants:create", kwargs={"team_id": team.pk})
    response = member_client.post(url, form_data(connection), follow=True)

    assert response.status_code == 200
    assistant = Assistant.objects.get()
    assert assistant.sync_state == SyncState.PENDING
    content = response.content.decode()
    assert "Syncing…" in content
    assert 'hx-select="#assistant-sync"' in content  # the part that updates itself
    assert fake.requests == []
    assert queued_names() == ["assistant_push_task"]

    run_queued()

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.SYNCED
    assert assistant.remote_id
    sent = fake.requests_to("/v1/assistants", "POST")
    assert len(sent) == 1 and sent[0].json["name"] == "Math Tutor"
    content = member_client.get(_url("detail", assistant)).content.decode()
    assert "Syncing…" not in content
    assert "hx-get" not in content.split('id="assistant-sync"')[1].split(">")[0]
    assert assistant.remote_id in content


def test_the_same_create_form_sent_twice_queues_one_push(team, connection, fake, member_client):
    url = reverse("assistants:create", kwargs={"team_id": team.pk})
    data = form_data(connection)
    member_client.post(url, data)
    response = member_client.post(url, data, follow=True)

    assert "This was already submitted" in response.content.decode()
    assert Assistant.objects.count() == 1
    assert queued_names() == ["assistant_push_task"]
    run_queued()
    assert len(fake.requests_to("/v1/assistants", "POST")) == 1


def test_saving_answers_at_once_and_a_task_sends_the_change(team, connection, member, fake):

    assistant = make_assistant(team, connection, created_by=member, remote_id="asst_x")
    fake.state["assistants"]["asst_x"] = {"id": "asst_x", "name": "Math Tutor", "metadata": {}}
    client = client_for(member)
    response = client.post(
        _url("edit", assistant), form_data(connection, name="Physics Tutor"), follow=True
    )

    assert response.status_code == 200
    assistant.refresh_from_db()
    assert assistant.name == "Physics Tutor"
    assert assistant.sync_state == SyncState.PENDING
    assert "Syncing…" in response.content.decode()
    assert fake.requests == []

    run_queued()

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.SYNCED
    assert fake.requests_to("/v1/assistants/asst_x", "POST")[0].json["name"] == "Physics Tutor"


def test_retry_sync_answers_at_once_and_a_failure_lands_on_the_page(team, owner, member, fake):

    connection = fake_connection(team, fake, created_by=owner, key=KEY_QUOTA)
    assistant = make_assistant(team, connection, created_by=member, sync_state="failed")
    client = client_for(member)
    response = client.post(_url("sync", assistant), follow=True)

    assert "Syncing…" in response.content.decode()
    assert fake.requests == []
    assert queued_names() == ["assistant_push_task"]

    run_queued()

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.FAILED
    assert assistant.last_error_kind == "quota_exhausted"
    content = client.get(_url("detail", assistant)).content.decode()
    assert "Syncing…" not in content
    assert "did not reach the provider" in content


def test_deleting_answers_at_once_and_the_record_goes_when_the_copy_is_gone(
    team, connection, member, fake, member_client
):
    assistant = make_assistant(team, connection, created_by=member, remote_id="asst_x")
    fake.state["assistants"]["asst_x"] = {"id": "asst_x", "name": "Math Tutor", "metadata": {}}
    response = member_client.post(_url("delete", assistant), follow=True)

    content = response.content.decode()
    assert "Deleting…" in content  # the list shows it going
    assert Assistant.objects.filter(pk=assistant.pk).exists()
    assert fake.requests == []
    assert queued_names() == ["assistant_delete_task"]

    run_queued()

    assert not Assistant.objects.filter(pk=assistant.pk).exists()
    assert fake.requests_to("/v1/assistants/asst_x", "DELETE")
    content = member_client.get(list_url(team)).content.decode()
    assert "Deleting…" not in content and "Math Tutor" not in content


def test_a_refused_delete_keeps_the_record_and_says_so(team, owner, member, fake):

    connection = fake_connection(team, fake, created_by=owner, key=KEY_INVALID)
    assistant = make_assistant(team, connection, created_by=member, remote_id="asst_x")
    client = client_for(member)
    client.post(_url("delete", assistant))
    assert fake.requests == []

    run_queued()

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.FAILED
    content = client.get(_url("detail", assistant)).content.decode()
    assert "The delete did not reach the provider, so the assistant was kept here." in content


def test_importing_answers_importing_and_the_list_updates(team, owner, fake, member_client):
    connection = fake_connection(team, fake, created_by=owner, run_api="assistants")
    seed(fake, 2)
    url = reverse("assistants:import", kwargs={"team_id": team.pk, "connection_id": connection.pk})
    response = member_client.post(url, follow=True)

    content = response.content.decode()
    assert f"Importing from “{connection.name}”…" in content
    assert 'hx-select="#assistant-list"' in content
    assert fake.requests == []
    assert queued_names() == ["assistant_import_task"]

    run_queued()

    content = member_client.get(list_url(team)).content.decode()
    assert "Remote 0" in content and "Remote 1" in content
    assert Assistant.objects.count() == 2
    assert "Importing from" not in content


def test_a_failed_import_is_explained_on_the_list_after_the_task(team, owner, fake, member_client):
    connection = fake_connection(team, fake, created_by=owner, key=KEY_QUOTA, run_api="assistants")
    url = reverse("assistants:import", kwargs={"team_id": team.pk, "connection_id": connection.pk})
    member_client.post(url)
    run_queued()

    content = member_client.get(list_url(team)).content.decode()
    assert f"Importing from “{connection.name}” failed; nothing was added" in content
    assert Assistant.objects.count() == 0
