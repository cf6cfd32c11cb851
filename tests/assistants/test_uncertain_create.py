"""A create that reached the provider but whose answer was lost (a proxy's 502, a dropped
connection, no answer in time) leaves no orphan and no duplicate: Tablero tags what it creates
with the local record's id and looks for that tag before creating again; import and delete
find it too. The fake provider creates the assistant and then loses the answer."""

import httpx
import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from assistants import services
from assistants.models import Assistant, SyncState
from assistants.services import sync
from connections.models import ConnectionErrorEvent
from fakeprovider import Reply
from tests.assistants.helpers import fake_connection

pytestmark = pytest.mark.django_db

FORM = {
    "name": "Math Tutor",
    "description": "",
    "instructions": "You are a personal math tutor.",
    "model": "gpt-4o",
    "functions": "",
    "temperature": "",
    "top_p": "",
    "metadata": '{"team": "maths"}',
}
DATA = {**FORM, "metadata": {}, "tools": [], "temperature": None, "top_p": None}
LOSSES = ["502", "drop"]


def create_url(team) -> str:
    return reverse("assistants:create", kwargs={"team_id": team.pk})


def sync_url(assistant) -> str:
    return reverse(
        "assistants:sync", kwargs={"team_id": assistant.team_id, "assistant_id": assistant.pk}
    )


def import_url(connection) -> str:
    return reverse(
        "assistants:import", kwargs={"team_id": connection.team_id, "connection_id": connection.pk}
    )


def delete_url(assistant) -> str:
    return reverse(
        "assistants:delete", kwargs={"team_id": assistant.team_id, "assistant_id": assistant.pk}
    )


def create_with_lost_answer(client, team, connection, fake, mode: str) -> Assistant:
    fake.lose_created_assistants = [mode]
    client.post(create_url(team), {**FORM, "connection": connection.pk})
    assistant = Assistant.objects.get(team=team)
    assert (assistant.sync_state, assistant.remote_id) == (SyncState.FAILED, "")
    assert len(fake.state["assistants"]) == 1  # the provider made it all the same
    return assistant


def creates(fake) -> int:
    return len(fake.requests_to("/v1/assistants", "POST"))


def lookups(fake) -> int:
    return len(fake.requests_to("/v1/assistants", "GET"))


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    monkeypatch.setattr("provider.policy.BACKOFF_BASE", 0)


@pytest.fixture
def connection(team, owner, fake):
    return fake_connection(team, fake, created_by=owner, run_api="assistants")


@pytest.mark.parametrize("mode", LOSSES)
def test_create_retry_import_leave_one_remote_and_one_local(
    mode, team, connection, fake, member_client
):
    # The scenario: two clicks and a retry made 3 remote assistants and 5 records.
    assistant = create_with_lost_answer(member_client, team, connection, fake, mode)
    (remote_id,) = fake.state["assistants"]

    response = member_client.post(sync_url(assistant), follow=True)
    assert "Assistant synced with the provider." in response.content.decode()
    response = member_client.post(import_url(connection), follow=True)

    assert "0 new, 1 already here, 0 skipped" in response.content.decode()
    assert list(fake.state["assistants"]) == [remote_id]
    (record,) = Assistant.objects.all()
    assert (record.pk, record.remote_id, record.sync_state) == (
        assistant.pk,
        remote_id,
        SyncState.SYNCED,
    )
    assert creates(fake) == 1
    # The user's metadata is theirs alone; the copy carries the tag next to it.
    assert record.metadata == {"team": "maths"}
    remote = fake.state["assistants"][remote_id]
    assert remote["metadata"] == {"team": "maths", "tablero_id": str(record.pk)}


@pytest.mark.parametrize("mode", LOSSES)
def test_import_before_the_retry_attaches_the_copy_to_its_record(
    mode, team, connection, fake, member_client
):
    assistant = create_with_lost_answer(member_client, team, connection, fake, mode)
    (remote_id,) = fake.state["assistants"]

    response = member_client.post(import_url(connection), follow=True)
    member_client.post(sync_url(assistant))

    assert "0 new, 1 already here, 0 skipped" in response.content.decode()
    assert list(fake.state["assistants"]) == [remote_id]
    (record,) = Assistant.objects.all()
    assert (record.remote_id, record.sync_state) == (remote_id, SyncState.SYNCED)
    assert creates(fake) == 1


def test_every_answer_lost_still_makes_one_copy(team, connection, fake, member_client):
    # The retry's own answer goes missing too; the next retry looks again and finds one copy.
    assistant = create_with_lost_answer(member_client, team, connection, fake, "502")
    # The lookup fails (a list is asked three times, as any safe request).
    fake.queue(Reply(502, b"Bad Gateway", {"Content-Type": "text/plain"}), times=3)

    member_client.post(sync_url(assistant))

    assistant.refresh_from_db()
    assert (assistant.sync_state, assistant.remote_id) == (SyncState.FAILED, "")
    assert assistant.last_error_kind == "server_error"
    assert creates(fake) == 1  # nothing was created while the lookup could not answer
    assert not assistant.sync_in_progress

    member_client.post(sync_url(assistant))

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.SYNCED
    assert list(fake.state["assistants"]) == [assistant.remote_id]
    assert creates(fake) == 1


def test_a_lost_answer_after_a_timeout_is_found_too(
    team, member, connection, fake, fake_clock, member_client, monkeypatch
):
    monkeypatch.setattr(
        "provider.policy.DEFAULT_TIMEOUT",
        httpx.Timeout(connect=5.0, read=0.2, write=5.0, pool=5.0),
    )
    fake.lose_created_assistants = ["slow"]
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    # The client gave up; the fake sends its answer once its clock has passed the delay.
    assert fake_clock.wait_for_sleepers(1)
    fake_clock.advance(fake.slow_seconds)
    assert fake.wait_idle()
    assert (assistant.sync_state, assistant.last_error_kind) == (SyncState.FAILED, "timeout")

    services.assistant_sync(assistant=assistant, user=member)

    assert list(fake.state["assistants"]) == [assistant.remote_id]
    assert assistant.sync_state == SyncState.SYNCED
    assert creates(fake) == 1


def test_a_clear_refusal_does_not_look_for_a_copy(team, member, connection, fake):
    fake.queue(Reply.error(400, "Invalid 'name'.", "invalid_request_error", None, "name"))
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    assert (assistant.sync_state, assistant.last_error_kind) == (SyncState.FAILED, "bad_request")

    services.assistant_sync(assistant=assistant, user=member)

    assert assistant.sync_state == SyncState.SYNCED
    assert lookups(fake) == 0
    assert creates(fake) == 2


def test_a_first_create_does_not_look(team, member, connection, fake):
    services.assistant_create(team=team, user=member, connection=connection, data=DATA)
    assert (lookups(fake), creates(fake)) == (0, 1)


def test_nothing_tagged_found_means_create_again(team, member, connection, fake, member_client):
    # The lost answer's create did not happen after all (the copy is not there): one is made.
    assistant = create_with_lost_answer(member_client, team, connection, fake, "drop")
    fake.state["assistants"].clear()

    services.assistant_sync(assistant=assistant, user=member)

    assert assistant.sync_state == SyncState.SYNCED
    assert list(fake.state["assistants"]) == [assistant.remote_id]
    assert (lookups(fake), creates(fake)) == (1, 2)


def test_the_adopted_copy_gets_the_settings_saved_since(
    team, member, connection, fake, member_client
):
    assistant = create_with_lost_answer(member_client, team, connection, fake, "502")

    services.assistant_update(
        assistant=assistant,
        user=member,
        data={"name": "Algebra Tutor", "metadata": {"team": "algebra"}},
    )

    assert assistant.sync_state == SyncState.SYNCED
    remote = fake.state["assistants"][assistant.remote_id]
    assert remote["name"] == "Algebra Tutor"
    assert remote["metadata"] == {"team": "algebra", "tablero_id": str(assistant.pk)}
    assert len(fake.state["assistants"]) == 1


def test_a_recreate_whose_answer_is_lost_is_found_again(team, member, connection, fake):
    # Deleted remotely, then "Create on the provider again" loses its answer: the record must
    # not keep naming the gone copy, or the next try would create a second new one.
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    fake.state["assistants"].clear()
    services.assistant_sync(assistant=assistant, user=member)
    assert assistant.sync_state == SyncState.GONE
    fake.lose_created_assistants = ["502"]

    services.assistant_sync(assistant=assistant, user=member)
    assert (assistant.sync_state, assistant.remote_id) == (SyncState.FAILED, "")
    services.assistant_sync(assistant=assistant, user=member)

    assert assistant.sync_state == SyncState.SYNCED
    assert list(fake.state["assistants"]) == [assistant.remote_id]


def test_a_run_started_after_a_lost_answer_uses_the_copy(
    team, member, connection, fake, member_client
):
    assistant = create_with_lost_answer(member_client, team, connection, fake, "drop")
    (remote_id,) = fake.state["assistants"]

    run = services.run_start(assistant=assistant, user=member, message="What is 2 + 2?").value

    assert run.status != "failed"
    assert [r["assistant_id"] for r in fake.state["runs"].values()] == [remote_id]
    assert len(fake.state["assistants"]) == 1


# --- delete ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", LOSSES)
def test_delete_after_a_lost_answer_deletes_the_copy(mode, team, connection, fake, member_client):
    assistant = create_with_lost_answer(member_client, team, connection, fake, mode)

    response = member_client.post(delete_url(assistant), follow=True)

    assert "deleted" in response.content.decode()
    assert not Assistant.objects.exists()
    assert fake.state["assistants"] == {}


def test_delete_keeps_the_record_while_the_copy_cannot_be_looked_for(
    team, member, connection, fake, member_client
):
    assistant = create_with_lost_answer(member_client, team, connection, fake, "502")
    fake.queue(Reply(502, b"Bad Gateway", {"Content-Type": "text/plain"}), times=3)

    assert services.assistant_delete(assistant=assistant, user=member).value is not None

    assert Assistant.objects.filter(pk=assistant.pk).exists()
    assert len(fake.state["assistants"]) == 1
    event = ConnectionErrorEvent.objects.filter(operation="assistant.delete").get()
    assert event.kind == "server_error"


# --- import ---------------------------------------------------------------------------------


def tagged_remote(fake, remote_id: str, tag: str, **fields) -> None:
    fake.state["assistants"][remote_id] = {
        "id": remote_id,
        "object": "assistant",
        "created_at": 1700000000,
        "name": "Tagged",
        "description": None,
        "model": "gpt-4o",
        "instructions": None,
        "tools": [],
        "metadata": {"team": "maths", "tablero_id": tag},
        "_seq": len(fake.state["assistants"]),
        **fields,
    }


def test_import_never_attaches_to_another_teams_record(
    team, other_team, member, connection, fake, member_client
):
    foreign_connection = fake_connection(other_team, fake, run_api="assistants")
    foreign = Assistant.objects.create(
        team=other_team,
        connection=foreign_connection,
        name="Theirs",
        model="gpt-4o",
        sync_state=SyncState.FAILED,
        last_error_kind="server_error",
    )
    tagged_remote(fake, "asst_theirs", str(foreign.pk))

    response = member_client.post(import_url(connection), follow=True)

    assert "0 new, 0 already here, 1 skipped" in response.content.decode()
    assert not Assistant.objects.filter(team=team).exists()
    foreign.refresh_from_db()
    assert (foreign.remote_id, foreign.sync_state) == ("", SyncState.FAILED)
    assert fake.requests_to("/v1/assistants/asst_theirs", "POST") == []


def test_import_of_a_copy_for_another_connection_of_the_team_adds_nothing(
    team, owner, connection, fake, member_client
):
    second = fake_connection(team, fake, name="Second", run_api="assistants")
    theirs = Assistant.objects.create(
        team=team, connection=second, name="Other", model="gpt-4o", remote_id="asst_x"
    )
    tagged_remote(fake, "asst_other_copy", str(theirs.pk))

    result = services.assistant_import(team=team, user=owner, connection=connection).value

    assert (result.added, result.known, result.skipped) == (0, 0, 1)
    assert Assistant.objects.count() == 1


def test_import_of_an_unknown_tag_adds_a_record_without_the_tag(team, owner, connection, fake):
    # Its record was deleted, or another Tablero made it: an assistant like any other.
    tagged_remote(fake, "asst_stray", "6c0f6f0e-8b9e-4a4e-9b7e-3d1f0c2a5b77")

    result = services.assistant_import(team=team, user=owner, connection=connection).value

    assert result.added == 1
    record = Assistant.objects.get(remote_id="asst_stray")
    assert record.metadata == {"team": "maths"}


def test_import_keeps_a_users_own_value_under_the_tags_name(team, owner, connection, fake):
    tagged_remote(fake, "asst_users", "not-a-uuid")

    services.assistant_import(team=team, user=owner, connection=connection)

    record = Assistant.objects.get(remote_id="asst_users")
    assert record.metadata == {"team": "maths", "tablero_id": "not-a-uuid"}


def test_import_of_an_extra_copy_of_a_synced_record_adds_nothing(team, member, connection, fake):
    # An older Tablero's retry made a second copy: it belongs to the record, which has one.
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    tagged_remote(fake, "asst_extra", str(assistant.pk))

    result = services.assistant_import(team=team, user=member, connection=connection).value

    assert (result.added, result.known, result.skipped) == (0, 1, 1)
    assert Assistant.objects.count() == 1
    assistant.refresh_from_db()
    assert assistant.remote_id != "asst_extra"


def test_import_leaves_a_record_being_synced_to_its_sync(
    team, member, connection, fake, member_client
):
    assistant = create_with_lost_answer(member_client, team, connection, fake, "502")
    claim = sync.take_claim(assistant)
    assert claim is not None

    result = services.assistant_import(team=team, user=member, connection=connection).value

    assert (result.added, result.known) == (0, 1)
    assistant.refresh_from_db()
    assert assistant.remote_id == ""  # the sync holding the claim adopts the copy
    services.assistant_sync(assistant=assistant, user=member)  # busy: sends nothing
    sync.release(assistant, claim)
    services.assistant_sync(assistant=assistant, user=member)
    assert assistant.sync_state == SyncState.SYNCED
    assert len(fake.state["assistants"]) == 1
    assert Assistant.objects.count() == 1
    audit = AuditEvent.objects.filter(action="assistant.import").get()
    assert audit.data["attached"] == 0
