"""The fake provider's clock: every timestamp it gives and every delay it plays reads it.

`SystemClock` (the default) is the wall clock, read at each call, so ``time_machine`` and the
tests' ``pinned_clock`` move it too. `ManualClock` stands still until a test steps it with
`advance()`: a run that is queued for one step is in progress once the test advances the clock
by a step, with no waiting; a slow answer (``sleep``) is sent when the clock passes its end.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch."""
        ...

    def now(self) -> datetime:
        """The same moment as an aware UTC datetime."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class ManualClock:
    """A clock that moves only when `advance()` (or `set()`) is called.

    `sleep(seconds)` blocks the calling thread (a request being answered) until the clock has
    been advanced past its end; `advance()` wakes it.
    """

    def __init__(self, start: datetime | float = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)):
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)
        self._moved = threading.Condition()
        self._sleeping = 0

    def time(self) -> float:
        with self._moved:
            return self._now

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._moved:
            self._now += seconds
            self._moved.notify_all()

    def set(self, moment: datetime) -> None:
        with self._moved:
            self._now = moment.timestamp()
            self._moved.notify_all()

    def sleep(self, seconds: float) -> None:
        with self._moved:
            end = self._now + seconds
            self._sleeping += 1
            self._moved.notify_all()
            try:
                self._moved.wait_for(lambda: self._now >= end)
            finally:
                self._sleeping -= 1

    @property
    def sleeping(self) -> int:
        """How many threads wait in `sleep` right now."""
        with self._moved:
            return self._sleeping

    def wait_for_sleepers(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait (in real time, at most `timeout`) until `count` threads sleep on this clock, so
        that a step the test takes next is one they see."""
        with self._moved:
            return self._moved.wait_for(lambda: self._sleeping >= count, timeout)
