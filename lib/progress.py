"""Work in progress that a page shows ("checking…", "cancelling…") while a task does it.

A view marks the work as it queues the task; the task clears the mark when it ends. A mark
also ends by itself after its `ttl`, so a task that never ran (no consumer, a killed one)
does not leave a page saying "checking…" for ever.

The marks live in the queue's own storage (SQLite file or Redis), like the consumer's
heartbeat (lib.taskqueue): the default Django cache is each process's memory, where the web
process that marked and the consumer that clears would never meet. Reading a mark writes
nothing, so a GET may show it.
"""

import time
from collections.abc import Iterable

from huey.contrib.djhuey import HUEY

PREFIX = "tablero.progress."


def progress_mark(key: str, *, ttl: float) -> None:
    """Note that the work named `key` is under way, for at most `ttl` seconds."""
    HUEY.put(PREFIX + key, time.time() + ttl)


def progress_active(key: str) -> bool:
    """Whether the work named `key` is under way (marked, not cleared, not expired). An
    unreachable queue reads as nothing under way."""
    try:
        until = HUEY.get(PREFIX + key, peek=True)
    except Exception:
        return False
    return isinstance(until, int | float) and until > time.time()


def progress_active_many(keys: Iterable[str]) -> set[str]:
    """Which of `keys` name work under way (`progress_active` of each), in one read of the
    queue's storage: a list page asks about each of its rows, and one read per row is a round
    trip per row to Redis or SQLite. An unreachable queue reads as nothing under way."""
    keys = list(keys)
    if not keys:
        return set()
    try:
        found = HUEY.storage.peek_many([PREFIX + key for key in keys])
        now = time.time()
        active = set()
        for key in keys:
            raw = found.get(PREFIX + key)
            until = None if raw is None else HUEY.serializer.deserialize(raw)
            if isinstance(until, int | float) and until > now:
                active.add(key)
    except Exception:
        return set()
    return active


def progress_clear(key: str) -> None:
    """The work named `key` has ended."""
    HUEY.delete(PREFIX + key)
