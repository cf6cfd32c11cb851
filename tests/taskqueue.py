"""Helpers for the tests of background tasks.

The tests run Huey in immediate mode (tests/testenv.py): a task queued runs at once, in the
test's own process, on Huey's in-memory storage. A task scheduled for later (a retry, a run's
next poll) waits in that storage until `run_scheduled` moves the pinned clock to it and runs it.
"""

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from huey.contrib import djhuey
from huey.contrib.djhuey import HUEY


@pytest.fixture(autouse=True)
def empty_queue():
    """Each test starts with an empty queue: no heartbeat, scheduled task or lock of another."""
    assert HUEY.immediate, "the tests run Huey in immediate mode (TASK_QUEUE_IMMEDIATE)"
    HUEY.flush()
    yield HUEY
    HUEY.flush()


def scheduled_etas() -> list[datetime]:
    """When the tasks waiting in the queue's schedule are due (UTC), earliest first."""
    return sorted(task.eta.replace(tzinfo=UTC) for task in HUEY.scheduled())


def run_scheduled(traveller, *, limit: int = 500, until: datetime | None = None) -> int:
    """Run the scheduled tasks one moment at a time, moving the clock (a time_machine
    traveller) to each one's time, until none is left (or the next is after `until`).
    Returns how many ran; fails if they never stop coming."""
    ran = 0
    while etas := scheduled_etas():
        if until is not None and etas[0] > until:
            break
        now = datetime.now(UTC)
        if etas[0] > now:
            traveller.shift(etas[0] - now + timedelta(milliseconds=1))
        for task in HUEY.read_schedule():
            HUEY.execute(task)
            ran += 1
        assert ran < limit, "scheduled tasks keep coming"
    return ran


@pytest.fixture
def queued(empty_queue):
    """Huey as a real deployment has it: a task queued waits in the queue (the in-memory
    storage here) instead of running at once, until the test runs it with `run_queued`. For
    proving that a page answers without doing the task's work."""
    HUEY._immediate = False  # the storage stays the in-memory one
    # djhuey's db_task closes "old" connections around a task when not immediate; inside a
    # test's transaction that is the test's own connection (PostgreSQL then says "the
    # connection is closed"; SQLite's in-memory database ignores it). A consumer has no such
    # transaction around its tasks, so leaving the connection alone changes nothing else.
    with mock.patch.object(djhuey, "close_old_connections", lambda: None):
        yield HUEY
    HUEY._immediate = True


def queued_names() -> list[str]:
    """The names of the tasks waiting in the queue, oldest first."""
    return [task.name for task in HUEY.pending()]


def run_queued(limit: int = 50) -> int:
    """Run the tasks waiting in the queue (and those they queue) until none is left, as a
    consumer would. Returns how many ran."""
    ran = 0
    while (task := HUEY.dequeue()) is not None:
        HUEY.execute(task)
        ran += 1
        assert ran < limit, "queued tasks keep coming"
    return ran
