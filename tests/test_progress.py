"""Work in progress marks (lib.progress): set by a page as it queues a task, cleared by the
task, gone by themselves after their time, read without writing."""

from datetime import timedelta

from lib.progress import progress_active, progress_active_many, progress_clear, progress_mark
from tests.taskqueue import empty_queue  # noqa: F401


def test_a_mark_lasts_until_cleared(pinned_clock):
    assert not progress_active("thing:1")
    progress_mark("thing:1", ttl=60)
    assert progress_active("thing:1")
    assert progress_active("thing:1")  # reading leaves it there
    assert not progress_active("thing:2")
    progress_clear("thing:1")
    assert not progress_active("thing:1")


def test_a_mark_nobody_clears_ends_by_itself(pinned_clock):
    progress_mark("thing:1", ttl=60)
    pinned_clock.shift(timedelta(seconds=61))
    assert not progress_active("thing:1")


def test_clearing_what_was_never_marked_is_fine():
    progress_clear("never")
    assert not progress_active("never")


def test_many_marks_are_read_at_once(pinned_clock):
    progress_mark("thing:1", ttl=60)
    progress_mark("thing:2", ttl=10)
    pinned_clock.shift(timedelta(seconds=11))
    assert progress_active_many(["thing:1", "thing:2", "thing:3"]) == {"thing:1"}
    assert progress_active_many([]) == set()
