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
run's chain, so a second chain started by mistake stops at its next step. A run's page
makes sure a chain follows the run it shows (`run_follow`), and never asks the provider itself.

Starting and cancelling a run are tasks too (`run_begin_task`, `run_cancel_task`): the page
records the run, or marks the cancel as under way (`cancel_key`, lib.progress), and answers at
once. Both hold one lock per run, so a cancel never crosses the start it would undo; a start is
made once per run (a marker in the cache, and the run must still be queued with no provider id
and no start sent: `Run.start_sent_at`, set by a compare-and-swap just before the start goes
out). A start task that died with its consumer (killed, or the task lost) is queued again by
the sweep once the run has waited RUN_START_STALE (`runs_restartable`); a run whose start was
sent and never answered is not started twice: it ends as failed, explained
(`services.run_start_lost`).
"""

import secrets
import time
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task

from accounts.models import User
from assistants.models import TERMINAL_STATUSES, Assistant, Run, RunStatus, SyncState
from assistants.services import (
    assistant_delete,
    assistant_import,
    assistant_needs_push,
    run_begin,
    run_cancel,
    run_refresh,
    run_start_lost,
    sync,
)
from connections.models import Connection
from lib.progress import progress_active, progress_clear, progress_mark
from lib.taskqueue import claim_once, exclusive, task_deadline
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


# A run still waiting to start this long after it was recorded lost its start task (a consumer
# killed, a queue flushed): the sweep queues its start again (at most once per this period).
RUN_START_STALE = timedelta(minutes=5)


def runs_restartable(*, now: datetime) -> list[tuple[UUID, Any]]:
    """The runs whose start task was lost, each claimed for one new start task: queued, no
    provider id, recorded more than RUN_START_STALE ago and still within their poll limit
    (later, the chain gives them up), and either never sent or sent so long ago that no
    consumer can still be waiting for the answer (then the start task ends them as lost)."""
    restartable = []
    runs = (
        Run.objects.filter(
            status=RunStatus.QUEUED,
            remote_run_id="",
            response_id="",
            created_at__lte=now - RUN_START_STALE,
            created_at__gt=now - settings.TABLERO_RUN_POLL_LIMIT,
        )
        .filter(Q(start_sent_at__isnull=True) | Q(start_sent_at__lte=now - start_send_window()))
        .values_list("pk", "started_by_id")
        .order_by("created_at")
    )
    for pk, user_id in runs.iterator():
        if claim_once(f"assistants:run-restart:{pk}", ttl=RUN_START_STALE.total_seconds()):
            restartable.append((pk, user_id))
    return restartable


@db_periodic_task(crontab(minute="*"))
def runs_follow_sweep() -> None:
    """Every minute: start following every unfinished run that nothing follows, and queue
    again the start of every run whose start task was lost."""
    for pk, chain in runs_unfollowed():
        run_poll(str(pk), chain)
    for pk, user_id in runs_restartable(now=timezone.now()):
        run_begin_task(str(pk), str(user_id) if user_id else None, "")


def run_follow(run: Run) -> bool:
    """Make sure a chain follows `run` (a page showing it calls this): start one unless the
    run ended or one follows it already. True when a chain was started."""
    if run.is_terminal:
        return False
    chain = secrets.token_hex(8)
    if not cache.add(_chain_key(run.pk), chain, timeout=CHAIN_SLACK.total_seconds()):
        return False
    run_poll(str(run.pk), chain)
    return True


# --- starting and cancelling --------------------------------------------------------------------

# While another task acts on the run (a start, a cancel), the second waits this long and tries
# again.
BUSY_DELAY = timedelta(seconds=2)
# While another push holds the assistant a lost run's start waits on (`sync.take_claim`).
ASSISTANT_BUSY_DELAY = timedelta(seconds=30)
# How long the page says "cancelling…" at most, when the cancel task never comes.
CANCEL_MARK_TTL = timedelta(minutes=5)


def _act_lock(pk: object) -> str:
    return f"assistants:run-act:{pk}"


def cancel_key(pk: object) -> str:
    """The progress mark (lib.progress) of a cancel asked for and not done yet."""
    return f"run-cancel:{pk}"


def cancel_failed_key(pk: object) -> str:
    """The mark of a cancel the provider refused lately (the run's page says so)."""
    return f"run-cancel-failed:{pk}"


def _user(user_id: Any) -> User | None:
    return User.objects.filter(pk=user_id).first() if user_id is not None else None


def start_send_window() -> timedelta:
    """How long a start task may wait on the provider, at most (the lock around it lasts as
    long): a start sent longer ago than this and still unanswered will never be."""
    return timedelta(seconds=task_deadline() * 3 + 60)


def run_begin_step(*, run_id: UUID | str, user_id: Any = None, claim: str = "") -> Run | None:
    """Start a recorded run at the provider (`services.run_begin`), once: a run that is no
    longer queued, or already has a provider id, or whose start was already made (a copy of
    this task), is left as it is. Then a chain follows it to its end.

    Queued again by the sweep (no `claim`: the task that had it died), it takes the assistant's
    sync claim itself when the assistant must first go to the provider (a claim left by a dead
    task has expired by then); and a start that was sent and never answered is not sent again:
    the run ends as lost (`services.run_start_lost`)."""
    with exclusive(_act_lock(run_id), ttl=start_send_window().total_seconds()) as mine:
        if not mine:  # a cancel is under way: start after it (and then find it cancelled)
            run_begin_task.schedule((str(run_id), user_id, claim), delay=BUSY_DELAY.total_seconds())
            return None
        run = Run.objects.select_related("connection", "team", "assistant").filter(pk=run_id)
        run = run.first()
        if run is None:
            return None
        taken = datetime.fromisoformat(claim) if claim else None
        fresh = run.status == RunStatus.QUEUED and not (run.remote_run_id or run.response_id)
        if fresh and run.start_sent_at is not None:
            # Sent, and the answer never read: the task that sent it died, unless it may
            # still be waiting (then the sweep comes back later).
            if run.start_sent_at <= timezone.now() - start_send_window():
                run_start_lost(run=run)
            if taken is not None and run.assistant is not None:
                sync.release(run.assistant, taken)
        elif fresh and claim_once(
            f"assistants:run-begun:{run.pk}", ttl=RUN_START_STALE.total_seconds() / 2
        ):
            assistant = run.assistant
            if (
                taken is None
                and assistant is not None
                and assistant_needs_push(assistant, run.backend)
            ):
                taken = sync.take_claim(assistant)
                if taken is None:  # another push of the assistant is under way: later
                    cache.delete(f"assistants:run-begun:{run.pk}")
                    run_begin_task.schedule(
                        (str(run_id), user_id, ""), delay=ASSISTANT_BUSY_DELAY.total_seconds()
                    )
                    return run
            run = run_begin(run=run, user=_user(user_id), claim=taken).value
        elif taken is not None and run.assistant is not None:
            sync.release(run.assistant, taken)  # cancelled before it started: free the assistant
    run_follow(run)
    return run


@db_task()
def run_begin_task(run_id: str, user_id: Any = None, claim: str = "") -> None:
    run_begin_step(run_id=run_id, user_id=user_id, claim=claim)


def run_begin_queue(*, run: Run, user: User, claim: datetime | None) -> None:
    """Queue the start of a run just recorded (`services.run_create`) at the provider."""
    run_begin_task(str(run.pk), str(user.pk), claim.isoformat() if claim else "")


def run_cancel_queue(*, run: Run, user: User) -> None:
    """Queue the cancel of `run`; its page says "cancelling…" until the task has asked."""
    progress_clear(cancel_failed_key(run.pk))
    progress_mark(cancel_key(run.pk), ttl=CANCEL_MARK_TTL.total_seconds())
    run_cancel_task(str(run.pk), str(user.pk))


def run_cancel_step(*, run_id: UUID | str, user_id: Any = None) -> Run | None:
    """Ask the provider to cancel the run (`services.run_cancel`), after any start under way;
    the outcome (or the provider's refusal) lands on the run. Then a chain follows it."""
    with exclusive(_act_lock(run_id), ttl=task_deadline() * 3 + 60) as mine:
        if not mine:  # its start is under way: cancel after it
            run_cancel_task.schedule((str(run_id), user_id), delay=BUSY_DELAY.total_seconds())
            return None
        try:
            run = Run.objects.select_related("connection", "team").filter(pk=run_id).first()
            if run is None:
                return None
            user = _user(user_id)
            if run.is_cancellable and user is not None:
                outcome = run_cancel(run=run, user=user)
                run = outcome.value
                if outcome.error is not None:  # stored on the run; the page says what failed
                    progress_mark(cancel_failed_key(run.pk), ttl=CANCEL_MARK_TTL.total_seconds())
        finally:
            progress_clear(cancel_key(run_id))
    run_follow(run)
    return run


@db_task()
def run_cancel_task(run_id: str, user_id: Any = None) -> None:
    run_cancel_step(run_id=run_id, user_id=user_id)


# --- pushing, deleting and importing assistants ---------------------------------------------
# A page saves the local change (services with `push=False`), marks the work as under way
# (lib.progress: "syncing…", "deleting…", "importing…") and queues one of these; the task does
# the provider's part under the sync claim (services package docstring) and clears the mark.

# How long a page says "syncing…" (or "deleting…", "importing…") at most when no task comes.
ASSISTANT_MARK_TTL = timedelta(minutes=5)
# How long a page says a delete or an import failed, after the task found so.
FAILED_MARK_TTL = timedelta(minutes=30)


def push_key(pk: object) -> str:
    """The mark of a push (create, save, retry) queued and not done yet."""
    return f"assistant-push:{pk}"


def delete_key(pk: object) -> str:
    """The mark of a delete queued and not done yet."""
    return f"assistant-delete:{pk}"


def delete_failed_key(pk: object) -> str:
    """The mark of a delete the provider refused lately (the assistant's page says so)."""
    return f"assistant-delete-failed:{pk}"


def import_key(pk: object) -> str:
    """The mark of an import from connection `pk` queued and not done yet."""
    return f"assistant-import:{pk}"


def pushing(assistant: Assistant) -> bool:
    """Whether a push or a delete of `assistant` is queued or under way (reads only)."""
    return progress_active(push_key(assistant.pk)) or progress_active(delete_key(assistant.pk))


def assistant_push_queue(*, assistant: Assistant, user: User, operation: str) -> None:
    """Queue the push of the local record saved just now to the provider."""
    progress_mark(push_key(assistant.pk), ttl=ASSISTANT_MARK_TTL.total_seconds())
    assistant_push_task(str(assistant.pk), str(user.pk), operation)


# While another push holds the assistant's sync claim, a push waits this long and tries again,
# this many times: together longer than SYNC_CLAIM_TTL, after which a claim left by a push
# that died is taken over.
PUSH_BUSY_DELAY = timedelta(seconds=5)
PUSH_BUSY_TRIES = 30


def assistant_push_step(
    *, assistant_id: UUID | str, user_id: Any = None, operation: str, tries: int = 0
) -> Assistant | None:
    """Bring the assistant's remote copy in line (`sync.bring_in_line`, under the claim). A
    push already under way makes this one send nothing: it is queued again a little later
    (the other may have sent settings older than the record's), and the page keeps saying
    "syncing…" until it has run; by then a record the other push left in line is left alone."""
    again = False
    try:
        assistant = Assistant.objects.select_related("connection", "team").filter(pk=assistant_id)
        assistant = assistant.first()
        if assistant is None:
            return None
        if tries and assistant.sync_state == SyncState.SYNCED and assistant.remote_id:
            return assistant  # the push that held the claim sent what the record says
        push, _error = sync.bring_in_line(assistant, user=_user(user_id), operation=operation)
        if push == sync.Push.BUSY and tries < PUSH_BUSY_TRIES:
            again = True
            progress_mark(push_key(assistant_id), ttl=ASSISTANT_MARK_TTL.total_seconds())
            assistant_push_task.schedule(
                (str(assistant_id), user_id, operation, tries + 1),
                delay=PUSH_BUSY_DELAY.total_seconds(),
            )
        return assistant
    finally:
        if not again:
            progress_clear(push_key(assistant_id))


@db_task()
def assistant_push_task(assistant_id: str, user_id: Any, operation: str, tries: int = 0) -> None:
    assistant_push_step(
        assistant_id=assistant_id, user_id=user_id, operation=operation, tries=tries
    )


def assistant_delete_queue(*, assistant: Assistant, user: User) -> None:
    """Queue the delete of `assistant` (remote copy first, then the local record)."""
    progress_clear(delete_failed_key(assistant.pk))
    progress_mark(delete_key(assistant.pk), ttl=ASSISTANT_MARK_TTL.total_seconds())
    assistant_delete_task(str(assistant.pk), str(user.pk))


def assistant_delete_step(*, assistant_id: UUID | str, user_id: Any = None) -> Assistant | None:
    """Delete the assistant (`services.assistant_delete`): a failure keeps the local record,
    marked `failed` with the error, and the page says the delete failed."""
    try:
        assistant = Assistant.objects.select_related("connection", "team").filter(pk=assistant_id)
        assistant = assistant.first()
        user = _user(user_id)
        if assistant is None or user is None:
            return None
        kept = assistant_delete(assistant=assistant, user=user).value
        if kept is not None:
            progress_mark(delete_failed_key(assistant_id), ttl=FAILED_MARK_TTL.total_seconds())
        return kept
    finally:
        progress_clear(delete_key(assistant_id))


@db_task()
def assistant_delete_task(assistant_id: str, user_id: Any) -> None:
    assistant_delete_step(assistant_id=assistant_id, user_id=user_id)


def _import_result_key(pk: object) -> str:
    return f"tablero.assistant-import-result:{pk}"


def import_result(connection_id: object) -> dict | None:
    """How the last import from the connection went, for a while after it ran (reads only):
    {"api", "added", "known", "skipped"}, or {"error": kind}. None when nothing is known."""
    try:
        found = HUEY.get(_import_result_key(connection_id), peek=True)
    except Exception:
        return None
    if not isinstance(found, dict) or found.get("until", 0) <= time.time():
        return None
    return found


def assistant_import_queue(*, connection: Connection, user: User) -> None:
    """Queue the import from `connection`; the list says "importing…" until it has run."""
    HUEY.delete(_import_result_key(connection.pk))
    progress_mark(import_key(connection.pk), ttl=ASSISTANT_MARK_TTL.total_seconds())
    assistant_import_task(str(connection.pk), str(user.pk))


def assistant_import_step(*, connection_id: UUID | str, user_id: Any = None) -> dict | None:
    """Import the connection's remote assistants; the counts (or the error kind) are kept a
    while for the list page to show."""
    try:
        connection = Connection.objects.select_related("team").filter(pk=connection_id).first()
        user = _user(user_id)
        if connection is None or user is None:
            return None
        outcome = assistant_import(team=connection.team, user=user, connection=connection)
        found: dict[str, Any] = {"until": time.time() + FAILED_MARK_TTL.total_seconds()}
        if outcome.error is not None:
            found["error"] = outcome.error.kind.value
        else:
            result = outcome.value
            found.update(
                api=result.api, added=result.added, known=result.known, skipped=result.skipped
            )
        HUEY.put(_import_result_key(connection_id), found)
        return found
    finally:
        progress_clear(import_key(connection_id))


@db_task()
def assistant_import_task(connection_id: str, user_id: Any) -> None:
    assistant_import_step(connection_id=connection_id, user_id=user_id)
