"""The same form sent twice (a double click, back and resubmit) makes one assistant or starts
one run: the one-time token in the create-assistant and run forms."""

import re
import uuid

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from assistants.models import Assistant, Run, RunStatus, SyncState
from fakeprovider import KEY_QUOTA
from tests.assistants.concurrency import meanwhile
from tests.assistants.helpers import fake_connection, make_assistant
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r'name="submission_token" value="([^"]+)"')
ALREADY_CREATED = "This was already submitted; here is the assistant it created."
ALREADY_STARTED = "This was already submitted; here is the run it started."


def create_url(team) -> str:
    return reverse("assistants:create", kwargs={"team_id": team.pk})


def detail_url(assistant) -> str:
    return reverse(
        "assistants:detail", kwargs={"team_id": assistant.team_id, "assistant_id": assistant.pk}
    )


def run_url(assistant) -> str:
    return reverse(
        "assistants:run_start", kwargs={"team_id": assistant.team_id, "assistant_id": assistant.pk}
    )


def run_detail_url(run) -> str:
    return reverse("assistants:run_detail", kwargs={"team_id": run.team_id, "run_id": run.pk})


def token_in(response) -> str:
    tokens = TOKEN.findall(response.content.decode())
    assert len(tokens) == 1, tokens
    return tokens[0]


def assistant_data(connection, **extra):
    return {
        "connection": connection.pk,
        "name": "Math Tutor",
        "instructions": "You are a personal math tutor.",
        "model": "gpt-4o",
        "code_interpreter": "on",
        **extra,
    }


# --- creating an assistant ------------------------------------------------------------------


def test_create_form_carries_a_new_token_on_every_render(team, connection, member_client):
    first = token_in(member_client.get(create_url(team)))
    second = token_in(member_client.get(create_url(team)))

    assert uuid.UUID(first) and uuid.UUID(second)
    assert first != second


def test_create_sent_twice_creates_one_assistant_and_one_remote_copy(
    team, connection, fake, member_client
):
    data = assistant_data(
        connection, submission_token=token_in(member_client.get(create_url(team)))
    )

    first = member_client.post(create_url(team), data)
    second = member_client.post(create_url(team), data, follow=True)

    assistant = Assistant.objects.get()
    assert first["Location"] == detail_url(assistant)
    assert second.redirect_chain == [(detail_url(assistant), 302)]
    assert ALREADY_CREATED in second.content.decode()
    assert len(fake.requests_to("/v1/assistants", "POST")) == 1
    assert list(fake.state["assistants"]) == [assistant.remote_id]
    assert AuditEvent.objects.filter(action="assistant.create").count() == 1


def test_create_sent_again_while_the_first_is_with_the_provider(
    team, connection, fake, member_client
):
    data = assistant_data(connection, submission_token=str(uuid.uuid4()))

    with meanwhile(
        "POST", "/v1/assistants", lambda: member_client.post(create_url(team), data)
    ) as seen:
        first = member_client.post(create_url(team), data)

    assistant = Assistant.objects.get()
    assert first["Location"] == seen[0]["Location"] == detail_url(assistant)
    assert assistant.sync_state == SyncState.SYNCED
    assert len(fake.requests_to("/v1/assistants", "POST")) == 1
    assert list(fake.state["assistants"]) == [assistant.remote_id]


def test_create_of_a_failed_first_attempt_is_not_repeated(team, fake, member_client):
    """The first post kept a failed assistant: sending the form again leads there, and "Retry
    sync" is the way to try the provider again."""
    connection = fake_connection(team, fake, key=KEY_QUOTA, run_api="assistants")
    data = assistant_data(connection, submission_token=str(uuid.uuid4()))

    member_client.post(create_url(team), data)
    second = member_client.post(create_url(team), data, follow=True)

    assistant = Assistant.objects.get()
    assert assistant.sync_state == SyncState.FAILED
    assert ALREADY_CREATED in second.content.decode()
    assert "Retry sync" in second.content.decode()
    assert len(fake.requests_to("/v1/assistants", "POST")) == 1


def test_create_without_a_token_works_as_before(team, connection, fake, member_client):
    """An old page or an API client sends no token: each post creates, as it always did."""
    data = assistant_data(connection)

    member_client.post(create_url(team), data)
    member_client.post(create_url(team), data)

    assert Assistant.objects.count() == 2
    assert len(fake.requests_to("/v1/assistants", "POST")) == 2


@pytest.mark.parametrize("junk", ["zzz", "x" * 10_000, "%00", "1" * 33])
def test_a_junk_token_counts_as_none(team, connection, fake, member_client, junk):
    response = member_client.post(
        create_url(team), assistant_data(connection, submission_token=junk)
    )

    assert response.status_code == 302
    assert Assistant.objects.get().sync_state == SyncState.SYNCED


def test_an_invalid_form_keeps_its_token_and_can_be_sent_again(
    team, connection, fake, member_client
):
    token = str(uuid.uuid4())

    refused = member_client.post(
        create_url(team), assistant_data(connection, name="", submission_token=token)
    )
    assert token_in(refused) == token
    accepted = member_client.post(
        create_url(team), assistant_data(connection, submission_token=token)
    )

    assert accepted.status_code == 302
    assert Assistant.objects.count() == 1


def test_an_invalid_form_without_a_token_gets_one(team, connection, member_client):
    refused = member_client.post(create_url(team), assistant_data(connection, name=""))

    assert uuid.UUID(token_in(refused))


def test_a_token_only_finds_the_same_teams_assistant(
    team, other_team, connection, fake, member_client, outsider
):
    """Another team's form with the same token (copied, say) creates its own assistant and
    learns nothing about ours."""
    token = str(uuid.uuid4())
    theirs = fake_connection(other_team, fake, name="Theirs")
    member_client.post(create_url(team), assistant_data(connection, submission_token=token))

    response = client_for(outsider).post(
        create_url(other_team), assistant_data(theirs, submission_token=token), follow=True
    )

    assert ALREADY_CREATED not in response.content.decode()
    assert Assistant.objects.filter(team=team).count() == 1
    assert Assistant.objects.filter(team=other_team).count() == 1
    assert len(fake.requests_to("/v1/assistants", "POST")) == 2


# --- starting a run --------------------------------------------------------------------------


@pytest.fixture
def synced(team, connection, fake, member):
    """An assistant on the provider already, so a run costs one POST /v1/threads/runs."""
    assistant = make_assistant(team, connection, created_by=member, sync_state="pending")
    client_for(member).post(
        reverse("assistants:sync", kwargs={"team_id": team.pk, "assistant_id": assistant.pk})
    )
    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.SYNCED
    fake.requests.clear()
    return assistant


def test_run_form_carries_a_new_token_on_every_render(synced, member_client):
    first = token_in(member_client.get(detail_url(synced)))
    second = token_in(member_client.get(detail_url(synced)))

    assert first != second


def test_run_sent_twice_starts_one_run(synced, fake, member_client):
    data = {
        "message": "What is 2 + 2?",
        "submission_token": token_in(member_client.get(detail_url(synced))),
    }

    first = member_client.post(run_url(synced), data)
    second = member_client.post(run_url(synced), data, follow=True)

    run = Run.objects.get()
    assert first["Location"] == run_detail_url(run)
    assert second.redirect_chain == [(run_detail_url(run), 302)]
    assert ALREADY_STARTED in second.content.decode()
    assert len(fake.requests_to("/v1/threads/runs", "POST")) == 1


def test_run_sent_again_while_the_first_is_starting(synced, fake, member_client):
    data = {"message": "What is 2 + 2?", "submission_token": str(uuid.uuid4())}

    with meanwhile(
        "POST", "/v1/threads/runs", lambda: member_client.post(run_url(synced), data)
    ) as seen:
        first = member_client.post(run_url(synced), data)

    run = Run.objects.get()
    assert first["Location"] == run_detail_url(run)
    assert seen[0]["Location"] == run_detail_url(run)
    assert len(fake.requests_to("/v1/threads/runs", "POST")) == 1


def test_run_of_an_unsynced_assistant_sent_again_during_its_sync(
    team, assistant, fake, member_client
):
    """The first post brings the assistant to the provider before it starts the run; the second
    arrives meanwhile and is led to the first one's run: one remote assistant, one run."""
    data = {"message": "What is 2 + 2?", "submission_token": str(uuid.uuid4())}

    with meanwhile(
        "POST", "/v1/assistants", lambda: member_client.post(run_url(assistant), data)
    ) as seen:
        first = member_client.post(run_url(assistant), data)

    run = Run.objects.get()
    assert first["Location"] == seen[0]["Location"] == run_detail_url(run)
    assert len(fake.requests_to("/v1/assistants", "POST")) == 1
    assert len(fake.requests_to("/v1/threads/runs", "POST")) == 1
    assert len(fake.state["assistants"]) == 1


def test_run_without_a_token_starts_each_time(synced, fake, member_client):
    """As before: an API client that sends no token starts a run per post."""
    member_client.post(run_url(synced), {"message": "Hi"})
    member_client.post(run_url(synced), {"message": "Hi"})

    assert Run.objects.count() == 2
    assert len(fake.requests_to("/v1/threads/runs", "POST")) == 2


def test_a_refused_run_form_can_be_sent_again_with_its_token(synced, fake, member_client):
    token = str(uuid.uuid4())

    refused = member_client.post(run_url(synced), {"message": "  ", "submission_token": token})
    assert token_in(refused) == token
    member_client.post(run_url(synced), {"message": "Hi", "submission_token": token})

    assert Run.objects.get().status != RunStatus.FAILED
    assert len(fake.requests_to("/v1/threads/runs", "POST")) == 1
