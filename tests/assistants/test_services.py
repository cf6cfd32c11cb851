"""The assistants services against the fake provider: local and remote records agree, failures
are kept and explained, runs move on and are polled sparingly."""

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.models import AuditEvent
from assistants import services
from assistants.models import Assistant, Run, RunStatus, SyncState
from connections.models import ConnectionErrorEvent
from connections.services import connection_test
from fakeprovider import KEY_QUOTA, Reply
from tests.assistants.helpers import fake_connection, let_poll, make_assistant

pytestmark = pytest.mark.django_db

DATA = {
    "name": "Math Tutor",
    "description": "Helps with maths",
    "instructions": "You are a personal math tutor.",
    "model": "gpt-4o",
    "tools": [{"type": "code_interpreter"}],
    "temperature": 0.3,
    "top_p": None,
    "metadata": {"team": "maths"},
}


def remote_assistants(fake) -> dict:
    return fake.state["assistants"]


def actions(team) -> list[str]:
    return list(AuditEvent.objects.filter(team=team).values_list("action", flat=True))


# --- assistants -----------------------------------------------------------------------------


def test_create_on_the_assistants_api_makes_the_remote_copy(team, member, connection, fake):
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.SYNCED
    assert assistant.remote_id.startswith("asst_")
    remote = remote_assistants(fake)[assistant.remote_id]
    assert remote["name"] == "Math Tutor"
    # The user's metadata, and Tablero's tag with the record's id.
    assert remote["metadata"] == {"team": "maths", "tablero_id": str(assistant.pk)}
    assert remote["temperature"] == 0.3
    sent = fake.requests_to("/v1/assistants", "POST")[0]
    assert sent.headers["openai-beta"] == "assistants=v2"
    assert "assistant.create" in actions(team)


def test_failed_create_keeps_a_failed_local_record_and_no_remote(team, member, owner, fake):
    connection = fake_connection(team, fake, key=KEY_QUOTA, run_api="assistants")

    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.FAILED
    assert assistant.last_error_kind == "quota_exhausted"
    assert assistant.remote_id == ""
    assert remote_assistants(fake) == {}
    event = ConnectionErrorEvent.objects.get(connection=connection)
    assert event.operation == "assistant.create"


def test_retry_sync_after_a_failure_creates_it_once(team, member, connection, fake):
    fake.queue(Reply.error(403, "Project has no access.", "invalid_request_error", None))
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    assert assistant.sync_state == SyncState.FAILED
    assert assistant.last_error_kind == "permission_denied"

    services.assistant_sync(assistant=assistant, user=member)

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.SYNCED
    assert assistant.last_error_kind == ""
    assert list(remote_assistants(fake)) == [assistant.remote_id]


def test_unknown_model_is_explained(team, member, connection, fake):
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data={**DATA, "model": "gpt-nope"}
    ).value
    assert assistant.sync_state == SyncState.FAILED
    assert assistant.last_error_kind == "model_not_found"


def test_create_where_the_assistants_api_is_gone_switches_to_responses(
    team, member, connection, fake
):
    fake.assistants_api_removed = True

    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value

    assistant.refresh_from_db()
    connection.refresh_from_db()
    assert connection.detected_run_api == "responses"
    assert assistant.sync_state == SyncState.SYNCED
    assert assistant.remote_id == ""


def test_create_on_the_responses_api_sends_nothing(team, member, fake):
    connection = fake_connection(team, fake, run_api="responses")

    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value

    assert assistant.sync_state == SyncState.SYNCED
    assert fake.requests == []


def test_create_refuses_another_teams_connection(team, other_team, member, fake):
    foreign = fake_connection(other_team, fake)
    with pytest.raises(ValueError):
        services.assistant_create(team=team, user=member, connection=foreign, data=DATA)


def test_update_changes_the_remote_copy(team, member, connection, fake):
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value

    services.assistant_update(
        assistant=assistant,
        user=member,
        data={**DATA, "name": "Algebra Tutor", "tools": [], "temperature": None},
    )

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.SYNCED
    remote = remote_assistants(fake)[assistant.remote_id]
    assert remote["name"] == "Algebra Tutor"
    assert remote["tools"] == []
    event = AuditEvent.objects.filter(action="assistant.update").get()
    assert event.data["changed"] == ["name", "temperature", "tools"]


def test_update_of_an_assistant_deleted_remotely_marks_it_gone(team, member, connection, fake):
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    remote_assistants(fake).clear()

    services.assistant_update(assistant=assistant, user=member, data={**DATA, "name": "New"})

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.GONE
    assert assistant.name == "New"

    services.assistant_sync(assistant=assistant, user=member)

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.SYNCED
    assert remote_assistants(fake)[assistant.remote_id]["name"] == "New"


def test_delete_removes_remote_then_local(team, member, connection, fake):
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value

    assert services.assistant_delete(assistant=assistant, user=member).value is None

    assert not Assistant.objects.exists()
    assert remote_assistants(fake) == {}
    assert "assistant.delete" in actions(team)


def test_delete_when_already_gone_remotely_counts_as_done(team, member, connection, fake):
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    remote_assistants(fake).clear()

    assert services.assistant_delete(assistant=assistant, user=member).value is None
    assert not Assistant.objects.exists()


def test_delete_with_another_failure_keeps_the_local_record(team, member, connection, fake):
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    fake.queue(Reply.error(403, "No access.", "invalid_request_error", None))

    assert services.assistant_delete(assistant=assistant, user=member).value is not None

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.FAILED
    assert assistant.last_error_kind == "permission_denied"
    assert assistant.remote_id in remote_assistants(fake)


def test_delete_keeps_the_runs(team, member, connection, fake):
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    run = services.run_start(assistant=assistant, user=member, message="Hi").value

    services.assistant_delete(assistant=assistant, user=member)

    run.refresh_from_db()
    assert run.assistant is None
    assert run.assistant_name == "Math Tutor"


def _seed_remote(fake, count: int) -> None:
    for number in range(count):
        assistant_id = f"asst_{number:04d}"
        fake.state["assistants"][assistant_id] = {
            "id": assistant_id,
            "object": "assistant",
            "created_at": 1700000000 + number,
            "name": f"Remote {number}",
            "description": None,
            "model": "gpt-4o",
            "instructions": None,
            "tools": [{"type": "retrieval"}] if number == 0 else [],
            "metadata": {},
            "temperature": 1.0,
            "top_p": 1.0,
            "_seq": number,
        }


def test_import_follows_the_cursor_and_adds_only_unknown(team, member, connection, fake):
    _seed_remote(fake, 150)
    make_assistant(team, connection, name="Known", remote_id="asst_0149")

    result = services.assistant_import(team=team, user=member, connection=connection).value

    assert (result.api, result.added, result.known, result.skipped) == ("assistants", 149, 1, 0)
    lists = fake.requests_to("/v1/assistants", "GET")
    assert [request.query.get("after") for request in lists] == [None, ["asst_0050"]]
    assert Assistant.objects.filter(team=team).count() == 150
    old = Assistant.objects.get(remote_id="asst_0000")
    assert old.tools == [{"type": "file_search"}]
    assert old.sync_state == SyncState.SYNCED
    assert old.created_by == member

    again = services.assistant_import(team=team, user=member, connection=connection).value
    assert (again.added, again.known) == (0, 150)
    assert actions(team).count("assistant.import") == 2


def test_import_failure_adds_nothing(team, member, fake):
    connection = fake_connection(team, fake, key=KEY_QUOTA, run_api="assistants")
    outcome = services.assistant_import(team=team, user=member, connection=connection)
    assert outcome.value is None and outcome.error.kind == "quota_exhausted"
    assert not Assistant.objects.exists()


def test_import_on_the_responses_api_has_nothing_to_import(team, member, connection, fake):
    fake.assistants_api_removed = True
    result = services.assistant_import(team=team, user=member, connection=connection).value
    assert (result.api, result.found) == ("responses", 0)


# --- runs -----------------------------------------------------------------------------------


def test_run_on_the_assistants_api(team, member, connection, assistant, fake):
    fake.run_step_seconds = 30

    run = services.run_start(assistant=assistant, user=member, message="What is 2 + 2?").value

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.SYNCED  # pushed before the run
    run.refresh_from_db()
    assert run.backend == "assistants"
    assert run.status == RunStatus.QUEUED
    assert run.thread_id.startswith("thread_") and run.remote_run_id.startswith("run_")
    sent = fake.requests_to("/v1/threads/runs", "POST")[0]
    assert sent.json["assistant_id"] == assistant.remote_id
    assert "run.start" in actions(team)

    fake.run_step_seconds = 0
    services.run_refresh(run=let_poll(run))

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.output_text == "Hello from the fake provider. You said: What is 2 + 2?"
    assert run.total_tokens and run.completed_at


def test_run_on_the_responses_api(team, member, connection, assistant, fake):
    fake.assistants_api_removed = True
    fake.run_step_seconds = 30

    run = services.run_start(assistant=assistant, user=member, message="Hello").value

    run.refresh_from_db()
    assert run.backend == "responses"
    assert run.response_id.startswith("resp_")
    assert run.status == RunStatus.QUEUED
    body = fake.requests_to("/v1/responses", "POST")[0].json
    assert body["background"] is True and body["input"] == "Hello"
    assert body["tools"] == [{"type": "code_interpreter", "container": {"type": "auto"}}]

    fake.run_step_seconds = 0
    services.run_refresh(run=let_poll(run))

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert "You said: Hello" in run.output_text
    assert run.input_tokens and run.output_tokens


@pytest.mark.parametrize("api_removed", [False, True])
@pytest.mark.parametrize(
    ("marker", "status", "code"),
    [
        ("[fail]", "failed", "server_error"),
        ("[incomplete]", "incomplete", None),
        ("[expire]", "expired", ""),
    ],
)
def test_run_endings(team, member, assistant, fake, api_removed, marker, status, code):
    fake.assistants_api_removed = api_removed

    run = services.run_start(assistant=assistant, user=member, message=f"Hi {marker}").value

    run.refresh_from_db()
    if api_removed and status == "expired":
        status, code = "failed", "server_error"  # responses do not expire
    if code is None:
        code = "max_output_tokens" if api_removed else "max_completion_tokens"
    assert (run.status, run.last_error_code) == (status, code)
    assert run.completed_at is not None


def test_run_start_failure_is_stored_not_raised(team, member, fake):
    connection = fake_connection(team, fake, key=KEY_QUOTA, run_api="responses")
    assistant = make_assistant(team, connection)

    run = services.run_start(assistant=assistant, user=member, message="Hi").value

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.last_error_kind == "quota_exhausted"
    assert run.completed_at is not None
    assert ConnectionErrorEvent.objects.filter(operation="run.start").exists()


def test_run_of_an_assistant_that_cannot_be_synced_fails_with_that_error(team, member, fake):
    connection = fake_connection(team, fake, run_api="assistants")
    assistant = make_assistant(team, connection, model="gpt-nope", sync_state="pending")

    run = services.run_start(assistant=assistant, user=member, message="Hi").value

    assert run.status == RunStatus.FAILED
    assert run.last_error_kind == "model_not_found"
    assert fake.requests_to("/v1/threads/runs") == []


def test_refresh_asks_at_most_once_a_second(team, member, assistant, fake):
    fake.run_step_seconds = 30
    run = services.run_start(assistant=assistant, user=member, message="Hi").value
    path = f"/v1/threads/{run.thread_id}/runs/{run.remote_run_id}"
    let_poll(run)

    first = services.run_refresh(run=Run.objects.get(pk=run.pk)).value
    second = services.run_refresh(run=Run.objects.get(pk=run.pk)).value

    assert len(fake.requests_to(path, "GET")) == 1
    assert first.status == second.status == RunStatus.QUEUED


def test_refresh_reuses_the_stored_status_while_another_poller_holds_the_lock(
    team, member, assistant, fake
):
    fake.run_step_seconds = 30
    run = let_poll(services.run_start(assistant=assistant, user=member, message="Hi").value)
    cache.add(services.poll_lock_key(run), "1", timeout=5)

    services.run_refresh(run=run)

    assert fake.requests_to(f"/v1/threads/{run.thread_id}/runs/{run.remote_run_id}") == []
    cache.delete(services.poll_lock_key(run))


def test_refresh_does_not_ask_when_another_process_just_did(team, member, assistant, fake):
    # With the local-memory cache each process has its own poll lock: the database decides.
    fake.run_step_seconds = 30
    run = let_poll(services.run_start(assistant=assistant, user=member, message="Hi").value)
    Run.objects.filter(pk=run.pk).update(last_polled_at=timezone.now())  # the other process

    refreshed = services.run_refresh(run=run).value

    assert fake.requests_to(f"/v1/threads/{run.thread_id}/runs/{run.remote_run_id}") == []
    assert refreshed.status == RunStatus.QUEUED


def test_ended_runs_are_never_polled(team, member, assistant, fake):
    run = services.run_start(assistant=assistant, user=member, message="Hi").value
    assert run.status == RunStatus.COMPLETED
    count = len(fake.requests)

    services.run_refresh(run=let_poll(run))

    assert len(fake.requests) == count


def test_refresh_failure_is_noted_and_the_status_kept(team, member, assistant, fake):
    fake.run_step_seconds = 30
    run = let_poll(services.run_start(assistant=assistant, user=member, message="Hi").value)
    fake.queue(
        Reply.error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
    )

    services.run_refresh(run=run)

    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert run.last_error_kind == "invalid_key"

    services.run_refresh(run=let_poll(run))
    run.refresh_from_db()
    assert run.last_error_kind == ""


def test_cancel_on_the_assistants_api_goes_through_cancelling(
    team, member, assistant, fake, fake_clock
):
    fake.run_step_seconds = 30
    run = services.run_start(assistant=assistant, user=member, message="Hi [slow]").value

    assert services.run_cancel(run=run, user=member).ok

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLING
    services.run_refresh(run=let_poll(run))
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLING
    # The fake finishes cancelling one step later.
    fake_clock.advance(30)
    services.run_refresh(run=let_poll(run))
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.completed_at is not None
    assert "run.cancel" in actions(team)


def test_cancel_on_the_responses_api(team, member, assistant, fake):
    fake.assistants_api_removed = True
    run = services.run_start(assistant=assistant, user=member, message="Hi [slow]").value

    services.run_cancel(run=run, user=member)

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert fake.requests_to(f"/v1/responses/{run.response_id}/cancel", "POST")


def test_cancel_failure_is_returned_and_noted(team, member, assistant, fake):
    run = services.run_start(assistant=assistant, user=member, message="Hi [slow]").value
    fake.queue(Reply.error(403, "No access.", "invalid_request_error", None))

    error = services.run_cancel(run=run, user=member).error

    assert error is not None and error.kind == "permission_denied"
    run.refresh_from_db()
    assert run.status == RunStatus.IN_PROGRESS
    assert run.last_error_kind == "permission_denied"


def test_cancel_of_an_ended_run_does_nothing(team, member, assistant, fake):
    run = services.run_start(assistant=assistant, user=member, message="Hi").value
    count = len(fake.requests)

    assert services.run_cancel(run=run, user=member).ok
    assert len(fake.requests) == count


# --- run API detection ----------------------------------------------------------------------


@pytest.mark.parametrize(("removed", "expected"), [(False, "assistants"), (True, "responses")])
def test_connection_test_detects_the_run_api(owner, connection, fake, removed, expected):
    fake.assistants_api_removed = removed

    assert connection_test(connection=connection, user=owner).ok

    connection.refresh_from_db()
    assert connection.detected_run_api == expected
    (probe,) = fake.requests_to("/v1/assistants", "GET")
    assert probe.query == {"limit": ["1"]}
    assert probe.headers["openai-beta"] == "assistants=v2"


def test_a_failed_connection_test_detects_nothing(owner, team, fake):
    connection = fake_connection(team, fake, key=KEY_QUOTA)

    connection_test(connection=connection, user=owner)

    connection.refresh_from_db()
    assert connection.detected_run_api == ""
    assert fake.requests_to("/v1/assistants") == []


def test_running_an_assistant_deleted_remotely_marks_it_gone(team, member, connection, fake):
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    remote_assistants(fake).clear()

    run = services.run_start(assistant=assistant, user=member, message="Hi").value

    assert (run.status, run.last_error_kind) == (RunStatus.FAILED, "not_found")
    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.GONE
