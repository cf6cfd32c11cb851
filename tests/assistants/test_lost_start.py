"""A run whose start task was lost (its consumer killed, the queue flushed) is started by the
periodic sweep once it has waited a few minutes, once: never a second run at the provider. A
start that was sent and never answered is not sent again: the run ends as failed, explained.
Huey runs in immediate mode; the clock is pinned."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from assistants import services
from assistants.models import Run, RunStatus, SyncState
from assistants.tasks import RUN_START_STALE, run_begin_step, runs_follow_sweep, start_send_window
from tests.assistants.helpers import fake_connection, make_assistant
from tests.taskqueue import empty_queue  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def lost(pinned_clock, team, owner, member, fake_upstream):
    """A run recorded by its page, whose start task never ran; its assistant is not at the
    provider yet (the start brings it there first)."""
    fake_upstream.run_step_seconds = 0
    connection = fake_connection(team, fake_upstream, created_by=owner)
    assistant = make_assistant(team, connection, created_by=member, sync_state="pending")
    run, claim = services.run_create(assistant=assistant, user=member, message="Hi")
    assert claim is not None  # held by the task that died with its consumer
    run.claim = claim.isoformat()
    return run


def starts(fake) -> list:
    return [r for r in fake.requests if r.method == "POST" and r.path == "/v1/threads/runs"]


def creates(fake) -> list:
    return [r for r in fake.requests if r.method == "POST" and r.path == "/v1/assistants"]


def test_a_fresh_run_is_left_to_its_own_start_task(lost, fake_upstream, pinned_clock):
    pinned_clock.shift(RUN_START_STALE - timedelta(seconds=30))
    runs_follow_sweep()

    lost.refresh_from_db()
    assert (lost.status, lost.remote_run_id) == (RunStatus.QUEUED, "")
    assert starts(fake_upstream) == []


def test_a_lost_start_is_queued_again_and_made_once(lost, fake_upstream, pinned_clock):
    pinned_clock.shift(RUN_START_STALE + timedelta(seconds=1))
    runs_follow_sweep()
    pinned_clock.shift(RUN_START_STALE + timedelta(seconds=1))
    runs_follow_sweep()  # started: nothing more to do

    lost.refresh_from_db()
    assert lost.remote_run_id and lost.status != RunStatus.FAILED
    assert len(starts(fake_upstream)) == 1
    assert len(creates(fake_upstream)) == 1
    assert lost.assistant.sync_state == SyncState.SYNCED
    assert lost.start_sent_at is not None
    assert lost.assistant.sync_claimed_at is None  # the dead task's claim was taken over


def test_a_second_copy_of_the_start_task_sends_nothing(lost, fake_upstream, member):
    run_begin_step(run_id=lost.pk, user_id=member.pk, claim=lost.claim)
    run_begin_step(run_id=lost.pk, user_id=member.pk, claim=lost.claim)

    assert len(starts(fake_upstream)) == 1


def test_a_start_sent_by_another_meanwhile_is_not_sent_again(lost, fake_upstream, member):
    """The compare-and-swap on `start_sent_at` holds across consumers that share no cache."""
    assistant = lost.assistant
    assistant.remote_id = "asst_abc123"
    assistant.sync_state = SyncState.SYNCED
    assistant.save()
    lost.refresh_from_db()
    Run.objects.filter(pk=lost.pk).update(start_sent_at=timezone.now())  # the other consumer

    outcome = services.run_begin(run=lost, user=member)

    assert outcome.error is None and outcome.value.status == RunStatus.QUEUED
    assert starts(fake_upstream) == []


def test_a_start_sent_and_never_answered_ends_the_run_explained(
    lost, fake_upstream, pinned_clock, member_client
):
    pinned_clock.shift(RUN_START_STALE + timedelta(seconds=1))
    Run.objects.filter(pk=lost.pk).update(start_sent_at=timezone.now())  # then killed
    runs_follow_sweep()
    lost.refresh_from_db()
    assert lost.status == RunStatus.QUEUED  # its sender may still be waiting for the answer

    pinned_clock.shift(max(start_send_window(), RUN_START_STALE) + timedelta(seconds=1))
    runs_follow_sweep()

    lost.refresh_from_db()
    assert lost.status == RunStatus.FAILED
    assert lost.last_error_code == services.START_LOST_CODE
    assert starts(fake_upstream) == []
    assert not lost.assistant.sync_in_progress  # the dead task's claim has expired
    page = member_client.get(
        reverse("assistants:run_detail", args=[lost.team_id, lost.pk])
    ).content.decode()
    assert "Tablero lost this run&#x27;s start" in page
    assert "did not send it again" in page
