"""Background work on runs (Huey tasks, run by `manage.py run_huey`): every run that has not
ended is followed until it ends or reaches its deadline (`Run.poll_deadline`), whether anyone
has its page open or not.

Each run is followed by one chain of `run_poll` tasks: each asks once (`run_refresh`, which
asks the provider at most once a second per run however many pages and tasks ask, and gives
the run up as expired past its deadline), then queues the next, later and later as the run
gets older: every 2 seconds at first, then a tenth of the run's age, at most every minute, and
every 5 minutes while the provider refuses for a lasting reason (a revoked key), until the
deadline ends it. A sweep every minute starts a chain for every unfinished run that has none
(after a restart, for a run started while no consumer ran); a marker in the cache names each
run's chain, so a second chain started by mistake stops at its next step.
"""

import secrets
from datetime import datetime, timedelta
from uuid import UUID

from django.core.cache import cache
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from assistants.models import TERMINAL_STATUSES, Run
from assistants.services import run_refresh
from provider.errors import TRANSIENT_KINDS, ErrorKind

POLL_DELAY_MIN = timedelta(seconds=2)
POLL_DELAY_MAX = timedelta(minutes=1)
# While the provider refuses to say for a lasting reason (a revoked key, no access).
POLL_DELAY_REFUSED = timedelta(minutes=5)
# How long a chain's marker outlives the step it waits for: a step this late (a busy queue, a
# stopped consumer) lets the next sweep start another chain, and the late one then stops.
CHAIN_SLACK = timedelta(minutes=2)


def _chain_key(pk: object) -> str:
    return f"assistants:run-poll-chain:{pk}"


def _refused_for_good(run: Run) -> bool:
    if not run.last_error_kind:
        return False
    try:
        return ErrorKind(run.last_error_kind) not in TRANSIENT_KINDS
    except ValueError:
        return False


def next_poll_delay(run: Run, *, now: datetime) -> timedelta:
    """How long to wait before asking about `run` again: longer as it gets older, never past
    its deadline (so the last check comes on time)."""
    if _refused_for_good(run):
        delay = POLL_DELAY_REFUSED
    else:
        delay = min(max((now - run.created_at) / 10, POLL_DELAY_MIN), POLL_DELAY_MAX)
    until_deadline = run.poll_deadline - now
    if until_deadline > timedelta(0):
        delay = min(delay, until_deadline + timedelta(seconds=1))
    return delay


def run_poll_step(*, run_id: UUID | str, chain: str) -> Run | None:
    """One step of a run's chain: ask about the run, then queue the next step unless the run
    ended. A step of a chain that is not the run's own (see CHAIN_SLACK) does nothing."""
    key = _chain_key(run_id)
    owner = cache.get(key)
    if owner is not None and owner != chain:
        return None
    run = Run.objects.select_related("connection", "team").filter(pk=run_id).first()
    if run is None or run.is_terminal:
        cache.delete(key)
        return run
    run = run_refresh(run=run).value
    if run.is_terminal:
        cache.delete(key)
        return run
    delay = next_poll_delay(run, now=timezone.now())
    cache.set(key, chain, timeout=(delay + CHAIN_SLACK).total_seconds())
    run_poll.schedule((str(run.pk), chain), delay=delay.total_seconds())
    return run


@db_task()
def run_poll(run_id: str, chain: str) -> None:
    run_poll_step(run_id=run_id, chain=chain)


def runs_unfollowed() -> list[tuple[UUID, str]]:
    """The unfinished runs that no chain follows, each with a new chain claimed for it."""
    started = []
    pks = Run.objects.exclude(status__in=TERMINAL_STATUSES).values_list("pk", flat=True)
    for pk in pks.order_by("created_at").iterator():
        chain = secrets.token_hex(8)
        if cache.add(_chain_key(pk), chain, timeout=CHAIN_SLACK.total_seconds()):
            started.append((pk, chain))
    return started


@db_periodic_task(crontab(minute="*"))
def runs_follow_sweep() -> None:
    """Every minute: start following every unfinished run that nothing follows."""
    for pk, chain in runs_unfollowed():
        run_poll(str(pk), chain)
