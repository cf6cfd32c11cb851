"""lib.taskqueue: the heartbeat, the lock, the spreading of periodic work, and what a consumer
does as it starts."""

from datetime import UTC, datetime, timedelta

from django.core.cache import cache

from lib import taskqueue
from tests.conftest import PINNED_NOW
from tests.taskqueue import empty_queue  # noqa: F401

PERIOD = timedelta(minutes=15)


def test_a_slot_is_the_same_moment_of_every_interval():
    first = taskqueue.slot_start(key="connection-check:a", period=PERIOD, now=PINNED_NOW)
    later = taskqueue.slot_start(
        key="connection-check:a", period=PERIOD, now=PINNED_NOW + PERIOD * 7 + timedelta(minutes=1)
    )

    assert first <= PINNED_NOW < first + PERIOD
    assert (later - first) % PERIOD == timedelta(0)
    assert later <= PINNED_NOW + PERIOD * 7 + timedelta(minutes=1) < later + PERIOD


def test_different_keys_get_different_moments():
    moments = {
        taskqueue.slot_start(key=f"connection-check:{n}", period=PERIOD, now=PINNED_NOW)
        for n in range(50)
    }
    assert len(moments) > 40


def test_the_lock_is_held_once_and_let_go():
    with (
        taskqueue.exclusive("test:lock", ttl=60) as first,
        taskqueue.exclusive("test:lock", ttl=60) as second,
    ):
        assert (first, second) == (True, False)
    with taskqueue.exclusive("test:lock", ttl=60) as again:
        assert again


def test_a_lock_another_took_over_is_not_let_go():
    with taskqueue.exclusive("test:lock", ttl=60) as mine:
        assert mine
        cache.set("test:lock", "someone else's", timeout=60)  # ours expired, theirs now
    assert cache.get("test:lock") == "someone else's"


def test_the_heartbeat_ages(pinned_clock):
    assert taskqueue.heartbeat_read().never

    taskqueue.heartbeat_record()
    pinned_clock.shift(timedelta(minutes=4))
    heartbeat = taskqueue.heartbeat_read()

    assert not heartbeat.stale()
    assert timedelta(minutes=4) <= heartbeat.age() < timedelta(minutes=4, seconds=5)
    pinned_clock.shift(timedelta(minutes=2))
    assert taskqueue.heartbeat_read().stale()
    assert taskqueue.heartbeat_read().last.tzinfo == UTC


def test_a_starting_consumer_reports_and_gives_the_provider_longer(settings):
    settings.TABLERO_PROVIDER_DEADLINE = 10.0
    settings.TABLERO_TASK_PROVIDER_DEADLINE = 60.0

    taskqueue._consumer_started()

    assert settings.TABLERO_PROVIDER_DEADLINE == 60.0
    last = taskqueue.heartbeat_read().last
    assert last is not None and datetime.now(UTC) - last < timedelta(seconds=5)
