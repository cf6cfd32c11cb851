"""What every background task shares: the queue (Huey, set up from `settings.HUEY`), the
consumer's heartbeat, a per-object lock, the spreading of periodic work, and one deadline.

The heartbeat lives in the queue's own storage (SQLite file or Redis), not in the Django cache:
the default cache is each process's memory, where the web processes would never see what the
consumer wrote, while the queue's storage is by construction shared by every process that
enqueues or runs tasks. Reading it therefore also shows that the queue is reachable.

The locks and markers that keep two consumers from doing one thing twice live in the Django
cache (atomic `cache.add` with an expiry, so a consumer killed mid-task leaves nothing stuck).
They hold across consumers when the cache is shared (Redis, as the README's production setup
has it); every task is idempotent besides, so a lock missed costs a second provider call, never
a wrong result.

For the admin site: the tasks waiting in the queue (`queued_tasks`) and what may be kept of a
failed one (`failure_note`, recorded by connections.tasks' signal handler), ids only, keys
masked.
"""

import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from huey.contrib.djhuey import HUEY, on_startup
from huey.signals import SIGNAL_ERROR, SIGNAL_EXPIRED, SIGNAL_INTERRUPTED, SIGNAL_TIMEOUT

from provider.secrets import mask_secrets

HEARTBEAT_KEY = "tablero.consumer.heartbeat"
# The team home says background checks have stopped when no consumer reported for this long
# (a consumer reports every minute, and at its start).
HEARTBEAT_STALE = timedelta(minutes=5)


# --- the consumer's heartbeat -----------------------------------------------------------------


def heartbeat_record() -> None:
    """Note that a consumer is alive, now."""
    HUEY.put(HEARTBEAT_KEY, time.time())


@dataclass(frozen=True)
class Heartbeat:
    """The last sign of life of any consumer of the queue. `reachable` is False when the
    queue's storage could not be read (then nothing is known)."""

    last: datetime | None
    reachable: bool = True

    def age(self, now: datetime | None = None) -> timedelta | None:
        if self.last is None:
            return None
        return max(timedelta(0), (now or datetime.now(UTC)) - self.last)

    def stale(self, now: datetime | None = None) -> bool:
        """No consumer reported lately, or ever, or the queue cannot be read."""
        age = self.age(now)
        return age is None or age > HEARTBEAT_STALE

    @property
    def never(self) -> bool:
        return self.reachable and self.last is None


def heartbeat_read() -> Heartbeat:
    """The heartbeat as the queue's storage holds it. Raises whatever the storage raises when
    it cannot be reached (the health check reports it); see `heartbeat_known` for pages."""
    value = HUEY.get(HEARTBEAT_KEY, peek=True)
    if not isinstance(value, int | float):
        return Heartbeat(last=None)
    return Heartbeat(last=datetime.fromtimestamp(value, tz=UTC))


def heartbeat_known() -> Heartbeat:
    """`heartbeat_read`, for a page: an unreachable queue reads as not reachable, no error."""
    try:
        return heartbeat_read()
    except Exception:
        return Heartbeat(last=None, reachable=False)


def queue_pending() -> int:
    """How many tasks wait in the queue (not counting those scheduled for later). Raises
    whatever the storage raises when it cannot be reached."""
    return HUEY.pending_count()


@on_startup()
def _consumer_started() -> None:
    """In the consumer only (each worker runs it as it starts): report at once, and give
    provider calls the background deadline. The clients read TABLERO_PROVIDER_DEADLINE, which
    keeps a page from waiting long; here no page waits, so a slow provider gets longer."""
    settings.TABLERO_PROVIDER_DEADLINE = settings.TABLERO_TASK_PROVIDER_DEADLINE
    heartbeat_record()


# --- one at a time ------------------------------------------------------------------------------


@contextmanager
def exclusive(key: str, *, ttl: float) -> Iterator[bool]:
    """Hold the lock `key` for the block, if nobody holds it: yields whether it was taken.

    The lock expires after `ttl` seconds whatever happens, so a consumer killed inside the
    block leaves nothing stuck; make `ttl` longer than the block can take."""
    token = secrets.token_hex(8)
    taken = cache.add(key, token, timeout=ttl)
    try:
        yield taken
    finally:
        if taken and cache.get(key) == token:
            cache.delete(key)


def claim_once(key: str, *, ttl: float) -> bool:
    """True the first time `key` is claimed within `ttl` seconds, False after: a marker that
    keeps one piece of periodic work from being queued twice (by two sweeps, two consumers)."""
    return cache.add(key, True, timeout=ttl)


# --- spreading periodic work --------------------------------------------------------------------


def slot_start(*, key: str, period: timedelta, now: datetime) -> datetime:
    """The latest moment, at or before `now`, at which the periodic work named `key` falls due.

    Work falls due once every `period`, at an offset within the period taken from a digest of
    `key`: a hundred connections checked every 15 minutes fall due at a hundred moments spread
    over the 15 minutes, the same moments in every process and after every restart."""
    seconds = max(1, int(period.total_seconds()))
    digest = hashlib.sha256(key.encode()).digest()
    offset = int.from_bytes(digest[:8], "big") % seconds
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - (epoch - offset) % seconds, tz=UTC)


def task_deadline() -> float:
    """Seconds a provider call made by a task may take; a lock held around one lasts longer."""
    return float(settings.TABLERO_TASK_PROVIDER_DEADLINE)


# --- what the admin site shows: tasks waiting, tasks that failed ----------------------------

# A task argument is shown when it is a plain id (a UUID, a number, a short name), else elided:
# the tasks here take ids only, and a key must never reach the admin through a mistake.
_PLAIN_ARGUMENT = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
FAILURE_SIGNALS = (SIGNAL_ERROR, SIGNAL_EXPIRED, SIGNAL_INTERRUPTED, SIGNAL_TIMEOUT)
MESSAGE_LENGTH = 300


def _argument_shown(value: object) -> str:
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    plain = isinstance(value, str) and _PLAIN_ARGUMENT.fullmatch(value)
    if plain and mask_secrets(value) == value:
        return repr(value)
    return "…"


def task_arguments_shown(args: object, kwargs: object) -> str:
    """A task's arguments as the admin may see them: plain ids, anything else elided."""
    shown = [_argument_shown(value) for value in (args if isinstance(args, tuple | list) else ())]
    if isinstance(kwargs, dict):
        shown += [f"{name}={_argument_shown(value)}" for name, value in kwargs.items()]
    return ", ".join(shown)


@dataclass(frozen=True)
class QueuedTask:
    name: str
    task_id: str
    arguments: str
    eta: datetime | None  # None: waiting for a free worker


def queued_tasks(*, limit: int = 200) -> tuple[list[QueuedTask], list[QueuedTask]]:
    """The tasks waiting in the queue and those scheduled for later (soonest first), at most
    `limit` of each; reading them takes nothing off the queue."""

    def shown(task) -> QueuedTask:
        eta = task.eta.replace(tzinfo=UTC) if task.eta else None
        return QueuedTask(
            name=task.name,
            task_id=str(task.id),
            arguments=task_arguments_shown(task.args, task.kwargs),
            eta=eta,
        )

    # A task queued with a delay waits in the queue, with its time, until a consumer moves it
    # to the schedule: it is listed with the scheduled ones.
    waiting = [shown(task) for task in HUEY.pending(limit=limit)]
    later = [shown(task) for task in HUEY.scheduled(limit=limit)]
    pending = [task for task in waiting if task.eta is None]
    scheduled = sorted(
        [task for task in waiting if task.eta is not None] + later,
        key=lambda task: task.eta or datetime.min.replace(tzinfo=UTC),
    )
    return pending, scheduled


@dataclass(frozen=True)
class FailureNote:
    """What may be kept of a failed task (connections.TaskFailure stores it)."""

    task_name: str
    task_id: str
    arguments: str
    signal: str
    error_class: str
    message: str
    retries_left: int


def failure_note(signal: str, task, exc: BaseException | None = None) -> FailureNote:
    """A failed task as the admin may see it: ids only, the message with keys masked."""
    return FailureNote(
        task_name=str(task.name)[:200],
        task_id=str(task.id)[:64],
        arguments=task_arguments_shown(task.args, task.kwargs),
        signal=signal,
        error_class=type(exc).__name__ if exc is not None else "",
        message=mask_secrets(str(exc))[:MESSAGE_LENGTH] if exc is not None else "",
        retries_left=max(0, int(task.retries or 0)),
    )
