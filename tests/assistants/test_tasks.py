"""Runs are followed to their end by background tasks, with nobody on their page: asked about
often at first, less often as they age, given up at their deadline, never twice at once. Huey
runs in immediate mode; the fake provider's runs move with the (pinned) clock."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from huey.contrib.djhuey import HUEY

from assistants import services
from assistants.models import Run, RunStatus
from assistants.tasks import (
    POLL_DELAY_MAX,
    POLL_DELAY_MIN,
    next_poll_delay,
    run_poll,
    runs_follow_sweep,
)
from fakeprovider import Reply
from tests.assistants.helpers import fake_connection, make_assistant
from tests.taskqueue import empty_queue, run_scheduled, scheduled_etas  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def started(pinned_clock, team, owner, member, fake_upstream):
    """A run started at the provider (Assistants API), which takes 30 s per step there."""
    fake_upstream.run_step_seconds = 30
    connection = fake_connection(team, fake_upstream, created_by=owner)
    assistant = make_assistant(team, connection, created_by=member, sync_state="pending")
    run = services.run_start(assistant=assistant, user=member, message="Hi").value
    assert not run.is_terminal
    return run


def polls(fake, run: Run) -> int:
    path = f"/v1/threads/{run.thread_id}/runs/{run.remote_run_id}"
    return len(fake.requests_to(path, "GET"))


def test_a_run_left_alone_reaches_its_final_status(started, fake_upstream, pinned_clock):
    runs_follow_sweep()  # the consumer's sweep, with nobody on any page
    run_scheduled(pinned_clock)

    started.refresh_from_db()
    assert started.status == RunStatus.COMPLETED
    assert "You said: Hi" in started.output_text
    assert started.completed_at is not None
    assert 3 <= polls(fake_upstream, started) <= 40
    assert scheduled_etas() == []  # it is no longer followed


def test_the_run_page_then_shows_the_result(started, pinned_clock, member_client):
    runs_follow_sweep()
    run_scheduled(pinned_clock)

    page = member_client.get(
        reverse("assistants:run_detail", args=[started.team_id, started.pk])
    ).content.decode()
    assert "Completed" in page
    assert "You said: Hi" in page


def test_a_run_that_never_ends_is_given_up_at_its_deadline(
    started, fake_upstream, pinned_clock, settings
):
    fake_upstream.run_step_seconds = 10**7  # in progress for ever
    settings.TABLERO_RUN_POLL_LIMIT = timedelta(minutes=30)
    deadline = started.poll_deadline

    runs_follow_sweep()
    run_scheduled(pinned_clock)

    started.refresh_from_db()
    assert started.status == RunStatus.EXPIRED
    assert started.remote_status in (RunStatus.QUEUED, RunStatus.IN_PROGRESS)
    assert started.completed_at >= deadline
    # Every 2 s at first, at most every minute later: far fewer than one a second.
    assert polls(fake_upstream, started) < 30 * 60 / 10
    assert scheduled_etas() == []


def test_the_wait_grows_with_the_run_age_up_to_a_minute(started):
    created = started.created_at
    assert next_poll_delay(started, now=created) == POLL_DELAY_MIN
    assert next_poll_delay(started, now=created + timedelta(minutes=2)) == timedelta(seconds=12)
    assert next_poll_delay(started, now=created + timedelta(minutes=20)) == POLL_DELAY_MAX
    # Never past the deadline, so the last check comes on time.
    almost = started.poll_deadline - timedelta(seconds=10)
    assert next_poll_delay(started, now=almost) == timedelta(seconds=11)


def test_a_run_the_provider_refuses_to_tell_about_is_asked_rarely(
    started, fake_upstream, pinned_clock
):
    fake_upstream.queue(
        Reply.error(401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
        times=1000,
    )
    pinned_clock.shift(timedelta(minutes=1))

    runs_follow_sweep()

    started.refresh_from_db()
    assert started.last_error_kind == "invalid_key"
    (eta,) = scheduled_etas()
    assert eta - datetime.now(UTC) > timedelta(minutes=4)


def test_the_sweep_starts_one_chain_per_run(started, fake_upstream, pinned_clock):
    pinned_clock.shift(timedelta(seconds=2))  # past the check its start made
    runs_follow_sweep()
    runs_follow_sweep()  # the next minute's sweep, or another consumer's

    assert len(scheduled_etas()) == 1
    assert polls(fake_upstream, started) == 1


def test_a_stray_chain_stops_at_its_next_step(started, fake_upstream, pinned_clock):
    runs_follow_sweep()
    pinned_clock.shift(timedelta(seconds=2))
    before = polls(fake_upstream, started)

    run_poll(str(started.pk), "not-the-runs-chain")

    assert polls(fake_upstream, started) == before
    assert len(scheduled_etas()) == 1


def test_a_chain_lost_with_a_stopped_consumer_is_started_again(
    started, fake_upstream, pinned_clock
):
    fake_upstream.run_step_seconds = 10**7
    runs_follow_sweep()
    HUEY.flush()  # the consumer and its schedule are gone, and the markers with it
    cache.clear()
    pinned_clock.shift(timedelta(minutes=5))
    before = polls(fake_upstream, started)

    runs_follow_sweep()

    assert polls(fake_upstream, started) == before + 1
    assert len(scheduled_etas()) == 1


def test_ended_and_removed_runs_are_left_alone(started, fake_upstream):
    Run.objects.filter(pk=started.pk).update(status=RunStatus.CANCELLED)
    runs_follow_sweep()
    assert polls(fake_upstream, started) == 0

    run_poll(str(started.pk), "any")
    Run.objects.filter(pk=started.pk).delete()
    run_poll(str(started.pk), "any")
    assert polls(fake_upstream, started) == 0
    assert scheduled_etas() == []
