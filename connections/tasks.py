"""Background work on connections (Huey tasks, run by `manage.py run_huey`):

- every connection's key is checked every TABLERO_CONNECTION_CHECK_INTERVAL, each at its own
  moment within the interval (`lib.taskqueue.slot_start`), less often while its provider
  rate-limits, and not when someone checked it lately;
- the costs of connections with an admin key are fetched again every hour, spread the same way;
- provider errors and failed tasks older than TABLERO_ERROR_RETENTION are deleted.

A sweep runs every minute and queues one task per connection that falls due; each task checks
again that its work is still due, so a task queued twice (two sweeps, two consumers) asks the
provider once. A lock per connection keeps two consumers from asking about one connection at
once. The services called here never hold a database transaction open across a provider call.
A check that fails for a passing reason (the provider was down or did not answer) is tried
again after a minute, then five; a refused key, an exhausted quota or any other lasting
failure is not: it stays on the connection until someone acts.

The pages' own buttons ("Test now", "Refresh" of the model list or of the costs) queue a task
here too and answer at once: the page marks the work as under way (lib.progress), says
"checking…" and follows it through htmx until the task clears the mark.
"""

import dataclasses
import logging
from contextlib import suppress
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task

from accounts.models import User
from connections import costs
from connections.models import Connection, ConnectionErrorEvent, Health, TaskFailure
from connections.services import ConnectionChanged, connection_test, models_refresh
from lib.dbwork import db_work
from lib.progress import progress_active, progress_clear, progress_mark
from lib.taskqueue import (
    FAILURE_SIGNALS,
    claim_once,
    exclusive,
    failure_note,
    slot_start,
    task_deadline,
)
from provider.errors import ErrorKind, ProviderError

logger = logging.getLogger(__name__)

# A slot is taken up by the sweeps of this long after it: the sweep runs every minute, and a
# late one still finds the slot. A slot missed altogether waits for the next one.
SWEEP_WINDOW = timedelta(minutes=2)
# While the provider rate-limits a connection (or says it is overloaded), each check that finds
# it so doubles the wait before the next one, up to 2**MAX_BACKOFF_STEPS intervals.
BACKOFF_HEALTHS = frozenset({Health.RATE_LIMITED, Health.OVERLOADED})
MAX_BACKOFF_STEPS = 4
# Failures worth another try soon, and how soon (seconds before the first, the second retry).
RETRY_KINDS = frozenset(
    {ErrorKind.SERVER_ERROR, ErrorKind.TIMEOUT, ErrorKind.UNREACHABLE, ErrorKind.CONNECTION_DROPPED}
)
RETRY_DELAYS = (60, 300)
COSTS_INTERVAL = timedelta(hours=1)
PRUNE_BATCH = 500


def _backoff_key(pk: object) -> str:
    return f"connections:check-backoff:{pk}"


def _backoff_steps(connection_pk: object, health: str) -> int:
    """How many times in a row the periodic check found the provider rate-limiting (at least
    one while the connection's health says so, whoever checked it)."""
    if health not in BACKOFF_HEALTHS:
        return 0
    return max(1, int(cache.get(_backoff_key(connection_pk), 1)))


def _note_backoff(connection: Connection) -> None:
    key = _backoff_key(connection.pk)
    if connection.health in BACKOFF_HEALTHS:
        steps = min(MAX_BACKOFF_STEPS, int(cache.get(key, 0)) + 1)
        wait = settings.TABLERO_CONNECTION_CHECK_INTERVAL * 2 ** (MAX_BACKOFF_STEPS + 1)
        cache.set(key, steps, timeout=wait.total_seconds())
    else:
        cache.delete(key)


# --- which connections fall due -----------------------------------------------------------------


def check_is_due(
    *,
    pk: object,
    last_checked_at: datetime | None,
    health: str,
    now: datetime,
    period: timedelta,
) -> bool:
    """Whether the periodic check of a connection falls due now: its moment in the interval
    has just come, it was not checked since, nor lately by anyone (half an interval), and a
    provider that rate-limits it has had its longer wait."""
    slot = slot_start(key=f"connection-check:{pk}", period=period, now=now)
    if now - slot >= SWEEP_WINDOW:
        return False
    if last_checked_at is None:
        return True
    if last_checked_at >= slot or now - last_checked_at < period / 2:
        return False
    steps = _backoff_steps(pk, health)
    return not steps or now - last_checked_at >= period * 2**steps - SWEEP_WINDOW


def connections_due(*, now: datetime) -> list[UUID]:
    """The connections whose periodic check falls due now and is not queued yet (the marker
    lasts an interval, so two sweeps or two consumers queue it once)."""
    period = settings.TABLERO_CONNECTION_CHECK_INTERVAL
    due = []
    rows = Connection.objects.values_list("pk", "last_checked_at", "health").order_by("pk")
    for pk, last_checked_at, health in rows.iterator():
        if not check_is_due(
            pk=pk, last_checked_at=last_checked_at, health=health, now=now, period=period
        ):
            continue
        slot = slot_start(key=f"connection-check:{pk}", period=period, now=now)
        if claim_once(
            f"connections:check-queued:{pk}:{slot.timestamp():.0f}", ttl=period.total_seconds()
        ):
            due.append(pk)
    return due


@db_periodic_task(crontab(minute="*"))
def connections_check_sweep() -> None:
    """Every minute: queue the checks that fall due."""
    for pk in connections_due(now=timezone.now()):
        connection_check(str(pk))


# --- checking one connection --------------------------------------------------------------------


def connection_check_run(*, connection_id: UUID | str, retry: int = 0) -> ProviderError | None:
    """Check one connection's key as its page's "Test" button does, with nobody signed in,
    unless it was checked lately (a retry checks again) or another consumer is checking it now.
    Returns the provider error, if any; schedules a retry for a passing failure."""
    connection = Connection.objects.select_related("team").filter(pk=connection_id).first()
    if connection is None:
        return None  # removed meanwhile
    period = settings.TABLERO_CONNECTION_CHECK_INTERVAL
    checked = connection.last_checked_at
    if not retry and checked is not None and timezone.now() - checked < period / 2:
        return None  # a copy of this task, or someone on the page, was first
    with exclusive(f"connections:probe:{connection.pk}", ttl=task_deadline() + 60) as mine:
        if not mine:
            return None
        try:
            error = connection_test(connection=connection, user=None).error
        except ConnectionChanged:
            return None  # a new key came meanwhile: it was checked as it was saved
    _note_backoff(connection)
    if error is not None and error.kind in RETRY_KINDS and retry < len(RETRY_DELAYS):
        connection_check.schedule((str(connection.pk), retry + 1), delay=RETRY_DELAYS[retry])
    return error


@db_task()
def connection_check(connection_id: str, retry: int = 0) -> None:
    connection_check_run(connection_id=connection_id, retry=retry)


# --- what a page asked for -----------------------------------------------------------------------

# How long a page says "checking…" at most, when the task never comes (no consumer).
PROGRESS_TTL = timedelta(minutes=5)
# While another task probes the connection, a page's check waits this long and tries again.
BUSY_DELAY = timedelta(seconds=2)
BUSY_TRIES = 30


def check_key(pk: object) -> str:
    """The progress mark (lib.progress) of a "Test now" not done yet."""
    return f"connection-check:{pk}"


def models_key(pk: object) -> str:
    """The progress mark of a model list "Refresh" not done yet."""
    return f"connection-models:{pk}"


def _user(user_id: object) -> User | None:
    return User.objects.filter(pk=user_id).first() if user_id else None


def connection_check_queue(*, connection: Connection, user: User) -> None:
    """The page's "Test now": mark the check under way and queue it."""
    progress_mark(check_key(connection.pk), ttl=PROGRESS_TTL.total_seconds())
    connection_check_now(str(connection.pk), str(user.pk))


def connection_check_now_run(
    *, connection_id: UUID | str, user_id: object = None, tries: int = 0
) -> ProviderError | None:
    """Check the key as someone asked on its page, now (even if checked lately); after a
    check under way elsewhere when there is one. The outcome lands on the connection."""
    done = True
    try:
        connection = Connection.objects.select_related("team").filter(pk=connection_id).first()
        if connection is None:
            return None
        with exclusive(f"connections:probe:{connection.pk}", ttl=task_deadline() + 60) as mine:
            if not mine and tries < BUSY_TRIES:
                done = False
                connection_check_now.schedule(
                    (str(connection.pk), user_id, tries + 1), delay=BUSY_DELAY.total_seconds()
                )
                return None
            try:
                error = connection_test(connection=connection, user=_user(user_id)).error
            except ConnectionChanged:
                return None  # a new key came meanwhile: it was checked as it was saved
        _note_backoff(connection)
        return error
    finally:
        if done:
            progress_clear(check_key(connection_id))


@db_task()
def connection_check_now(connection_id: str, user_id: object = None, tries: int = 0) -> None:
    connection_check_now_run(connection_id=connection_id, user_id=user_id, tries=tries)


def models_refresh_queue(*, connection: Connection, user: User) -> None:
    """The models page's "Refresh": mark it under way and queue it."""
    progress_mark(models_key(connection.pk), ttl=PROGRESS_TTL.total_seconds())
    connection_models_refresh(str(connection.pk), str(user.pk))


def models_refresh_run(
    *, connection_id: UUID | str, user_id: object = None, record_error: bool = True
) -> None:
    """Fetch the model list again (it lands on the connection, or its failure does; into the
    error history too unless `record_error` is False)."""
    try:
        connection = Connection.objects.select_related("team").filter(pk=connection_id).first()
        if connection is None:
            return
        # A key replaced meanwhile: the new key's list was fetched as it was saved.
        with suppress(ConnectionChanged):
            models_refresh(connection=connection, user=_user(user_id), record_error=record_error)
    finally:
        progress_clear(models_key(connection_id))


@db_task()
def connection_models_refresh(
    connection_id: str, user_id: object = None, record_error: bool = True
) -> None:
    models_refresh_run(connection_id=connection_id, user_id=user_id, record_error=record_error)


def models_fetch_soon(*, connection: Connection) -> bool:
    """A page that offers the connection's models found no list ever fetched: queue a fetch
    (at most one per PROGRESS_TTL however often the page is opened), and mark it under way so
    the page says so. True while a fetch is queued or under way.

    Opening a page records no provider error: a connection whose last check failed is not
    asked (the page shows that failure), and a failure of this fetch lands on the connection
    (its health) but not in the error history, which holds what actions and checks met."""
    if connection.health not in (Health.OK, Health.UNCHECKED):
        return False
    if claim_once(
        f"connections:models-fetch-soon:{connection.pk}", ttl=PROGRESS_TTL.total_seconds()
    ):
        progress_mark(models_key(connection.pk), ttl=PROGRESS_TTL.total_seconds())
        connection_models_refresh(str(connection.pk), None, False)
    return progress_active(models_key(connection.pk))


# --- costs --------------------------------------------------------------------------------------


def _costs_fetched_at(month_spend: object) -> datetime | None:
    try:
        return datetime.fromisoformat(month_spend["fetched_at"])  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return None


def costs_due(*, now: datetime) -> list[UUID]:
    """The connections with an admin key whose hourly costs fetch falls due now (not fetched
    since their moment in the hour, nor in the last half hour) and is not queued yet."""
    due = []
    rows = (
        Connection.objects.exclude(admin_key_encrypted="")
        .values_list("pk", "month_spend")
        .order_by("pk")
    )
    for pk, month_spend in rows.iterator():
        slot = slot_start(key=f"connection-costs:{pk}", period=COSTS_INTERVAL, now=now)
        if now - slot >= SWEEP_WINDOW:
            continue
        fetched_at = _costs_fetched_at(month_spend)
        if fetched_at is not None and (fetched_at >= slot or now - fetched_at < COSTS_INTERVAL / 2):
            continue
        if claim_once(
            f"connections:costs-queued:{pk}:{slot.timestamp():.0f}",
            ttl=COSTS_INTERVAL.total_seconds(),
        ):
            due.append(pk)
    return due


@db_periodic_task(crontab(minute="*"))
def costs_refresh_sweep() -> None:
    """Every minute: queue the costs fetches that fall due."""
    for pk in costs_due(now=timezone.now()):
        connection_costs_refresh(str(pk))


def costs_key(pk: object) -> str:
    """The progress mark of a costs page's "Refresh" not done yet."""
    return f"connection-costs:{pk}"


def costs_refresh_queue(*, connection: Connection, group: str, user: User) -> None:
    """The costs page's "Refresh": mark it under way and queue the fetch of that grouping."""
    progress_mark(costs_key(connection.pk), ttl=PROGRESS_TTL.total_seconds())
    connection_costs_refresh(str(connection.pk), 0, group, str(user.pk))


def connection_costs_run(
    *,
    connection_id: UUID | str,
    retry: int = 0,
    group: str | None = None,
    user_id: object = None,
) -> ProviderError | None:
    """Fetch a connection's costs again: one grouping (a page's "Refresh", which marked it
    under way) or every grouping the costs page offers (the hourly fetch, with nobody signed
    in). Returns the provider error, if any."""
    try:
        connection = Connection.objects.select_related("team").filter(pk=connection_id).first()
        if connection is None or not connection.has_admin_key:
            return None
        groups = [costs.group_from(group)] if group else list(costs.GROUP_CHOICES)
        error = None
        ttl = task_deadline() * 2 + 60
        with exclusive(f"connections:costs:{connection.pk}", ttl=ttl) as mine:
            if not mine:
                return None  # another consumer is fetching them right now
            user = _user(user_id)
            for one in groups:
                error = costs.costs_refresh(connection=connection, group=one, user=user).error
                if error is not None:
                    break
        if error is not None and error.kind in RETRY_KINDS and retry < len(RETRY_DELAYS):
            connection_costs_refresh.schedule(
                (str(connection.pk), retry + 1, group, user_id), delay=RETRY_DELAYS[retry]
            )
        return error
    finally:
        if group and not retry:
            progress_clear(costs_key(connection_id))


@db_task()
def connection_costs_refresh(
    connection_id: str, retry: int = 0, group: str | None = None, user_id: object = None
) -> None:
    connection_costs_run(connection_id=connection_id, retry=retry, group=group, user_id=user_id)


# --- retention ----------------------------------------------------------------------------------


def error_events_prune(*, before: datetime) -> int:
    """Delete the provider errors recorded before `before`, a batch at a time (a short write
    each, so pages go on meanwhile). Returns how many were deleted."""
    deleted = 0
    old = ConnectionErrorEvent.objects.filter(created_at__lt=before)
    while batch := list(old.values_list("pk", flat=True)[:PRUNE_BATCH]):
        deleted += ConnectionErrorEvent.objects.filter(pk__in=batch).delete()[0]
    return deleted


@HUEY.signal(*FAILURE_SIGNALS)
def task_failure_record(signal: str, task, exc: BaseException | None = None) -> None:
    """Note any task that failed (raised, timed out, expired, interrupted) for the admin
    site, with ids only and keys masked (lib.taskqueue.failure_note). Never raises: failing
    to note a failure must not stop the consumer. Huey calls it outside the task's own
    `db_task` wrapper: it hands its connection back itself (`lib.dbwork`)."""
    try:
        with db_work():
            note = failure_note(signal, task, exc)
            TaskFailure.objects.create(**dataclasses.asdict(note))
    except Exception:
        logger.exception("Could not note the failure of task %s.", getattr(task, "id", "?"))


def task_failures_prune(*, before: datetime) -> int:
    """Delete the failed tasks noted before `before` (lib.taskqueue), a batch at a time."""
    deleted = 0
    old = TaskFailure.objects.filter(created_at__lt=before)
    while batch := list(old.values_list("pk", flat=True)[:PRUNE_BATCH]):
        deleted += TaskFailure.objects.filter(pk__in=batch).delete()[0]
    return deleted


@db_periodic_task(crontab(minute="17"))
def error_events_prune_old() -> None:
    """Every hour: forget provider errors and failed tasks older than
    TABLERO_ERROR_RETENTION."""
    before = timezone.now() - settings.TABLERO_ERROR_RETENTION
    deleted = error_events_prune(before=before)
    if deleted:
        logger.info("Deleted %d provider errors older than the retention period.", deleted)
    task_failures_prune(before=before)
