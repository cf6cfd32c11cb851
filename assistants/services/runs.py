"""Starting, refreshing (polling) and cancelling runs, and continuing a run's conversation
(a follow-up or a retry is a new run, the conversation's next turn: see assistants.models)."""

import contextlib
import uuid
from datetime import datetime, timedelta

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AuditAction, User
from accounts.services import audit_log
from assistants.backends import RunBackend, RunSnapshot, TurnContext, backend_for, run_api_for
from assistants.models import TERMINAL_STATUSES, Assistant, Run, RunStatus, SyncState
from assistants.services import run_api, shared, sync
from connections.models import ErrorOperation
from connections.outcome import Outcome
from lib import events
from provider.errors import ErrorKind, ProviderError
from provider.runapi import ASSISTANTS, RESPONSES

# The provider is asked about a run at most once per this interval, however many people watch.
POLL_INTERVAL = timedelta(seconds=1)

# `Run.last_error_code` of a run whose start was sent and never answered (its consumer was
# killed while it waited): Tablero's own code, explained by assistants.explanations.
START_LOST_CODE = "tablero_start_lost"
# `Run.last_error_code` of a turn the provider refused because the conversation's thread still
# had a run going (typically a turn Tablero had stopped waiting for): Tablero's own code, so
# that the page explains it plainly (assistants.explanations) rather than as a bad request.
THREAD_BUSY_CODE = "tablero_thread_busy"


class StartAlreadySent(Exception):
    """Another task sent this run's start meanwhile (`Run.start_sent_at` was set)."""


class FollowUpRefused(Exception):
    """The conversation cannot take a new turn now; `reason` says why, for the page."""

    TURN_RUNNING = "turn_running"  # its newest turn has not ended yet
    ASSISTANT_GONE = "assistant_gone"  # the assistant was deleted
    ASSISTANT_MOVED = "assistant_moved"  # the assistant now runs on another connection
    NOTHING_TO_RETRY = "nothing_to_retry"  # the newest turn did not fail

    def __init__(self, reason: str, latest: Run) -> None:
        super().__init__(reason)
        self.reason = reason
        self.latest = latest


def assistant_needs_push(assistant: Assistant, api: str) -> bool:
    """Whether a run on `api` must first bring its assistant to the provider (Assistants API,
    not in line there)."""
    return api == ASSISTANTS and (
        not assistant.remote_id or assistant.sync_state != SyncState.SYNCED
    )


def note_start_sent(run: Run) -> bool:
    """Note, committed before the start goes out, that it is being sent: a compare-and-swap on
    a run still queued with no provider id and no start sent, so that of two tasks only one
    sends it. False when another did (or the run is no longer waiting to start)."""
    now = timezone.now()
    noted = Run.objects.filter(
        pk=run.pk,
        status=RunStatus.QUEUED,
        remote_run_id="",
        response_id="",
        start_sent_at__isnull=True,
    ).update(start_sent_at=now)
    if noted:
        run.start_sent_at = now
    return bool(noted)


def run_start_lost(*, run: Run) -> bool:
    """A start was sent (`start_sent_at`) and its answer never read: whether the provider
    started the run cannot be told (neither API lists runs by a tag), and sending it again
    could run it twice. The run ends as failed, explained (START_LOST_CODE). False when the
    run moved on meanwhile (it is left as it is)."""
    now = timezone.now()
    values = {
        "status": RunStatus.FAILED,
        "last_error_kind": "",
        "last_error_code": START_LOST_CODE,
        "last_error_message": "",
        "completed_at": now,
        "updated_at": now,
    }
    updated = Run.objects.filter(
        pk=run.pk,
        status=RunStatus.QUEUED,
        remote_run_id="",
        response_id="",
        start_sent_at__isnull=False,
    ).update(**values)
    if not updated:
        run.refresh_from_db()
        return False
    for field, value in values.items():
        setattr(run, field, value)
    events.run_stored.send(Run, run_id=run.pk, team_id=run.team_id)
    events.run_failed.send(Run, run_id=run.pk)
    return True


def _copy_error(run: Run, error: ProviderError) -> None:
    run.last_error_kind = error.kind.value
    run.last_error_code = (error.code or "")[:100]
    run.last_error_message = (error.message or "")[:2000]


def _run_fail(run: Run, error: ProviderError) -> None:
    """A provider call that should have started the run failed: the run ends here."""
    _copy_error(run, error)
    _run_end_failed(run)


def _run_end_failed(run: Run) -> None:
    """The run ends as failed, with the error its fields now hold."""
    run.status = RunStatus.FAILED
    run.completed_at = timezone.now()
    with transaction.atomic():
        run.save(
            update_fields=[
                "status",
                "last_error_kind",
                "last_error_code",
                "last_error_message",
                "completed_at",
                "updated_at",
            ]
        )
    events.run_failed.send(Run, run_id=run.pk)


def _thread_busy(error: ProviderError) -> bool:
    """The provider refused a new run on a thread because another run is still going on there
    ("Thread … already has an active run …"; "Can't add messages to thread … while a run … is
    active"): a 400 that only says the thread is not free yet."""
    message = (error.message or "").lower()
    return error.kind == ErrorKind.BAD_REQUEST and (
        "active run" in message or ("while a run" in message and "is active" in message)
    )


def _run_fail_thread_busy(run: Run, error: ProviderError) -> None:
    """The turn could not start: its thread still had a run going. Explained as such (its own
    code, no catalogue kind); the provider's message is kept beside it."""
    run.last_error_kind = ""
    run.last_error_code = THREAD_BUSY_CODE
    run.last_error_message = (error.message or "")[:2000]
    _run_end_failed(run)


def _cancel_given_up(run: Run, backend: RunBackend, thread_id: str) -> None:
    """Before a later turn goes on in `thread_id`: the provider takes no new run on a thread
    while one is going on there, and the thread's newest run may be one Tablero gave up on
    (`Run.stopped_checking`: it stopped asking while the provider still said it was going on).
    Then ask the provider to cancel it. Best effort, and nothing stored (the given-up turn
    keeps what the provider said when Tablero stopped asking): the start that follows tells
    whether the thread is free (a cancel can take a moment)."""
    newest = (
        Run.objects.filter(
            conversation_id=run.conversation_id, turn__lt=run.turn, thread_id=thread_id
        )
        .exclude(remote_run_id="")
        .order_by("-turn")
        .first()
    )
    if newest is None or not newest.stopped_checking:
        return
    # Refused when it already ended or is being cancelled: the start says whether it is free.
    with contextlib.suppress(ProviderError):
        backend.cancel_run(newest)


def _run_note_poll_error(run: Run, error: ProviderError) -> None:
    """Asking about the run failed; the run itself goes on (or not) at the provider."""
    _copy_error(run, error)
    run.last_polled_at = timezone.now()
    with transaction.atomic():
        run.save(
            update_fields=[
                "last_error_kind",
                "last_error_code",
                "last_error_message",
                "last_polled_at",
                "updated_at",
            ]
        )


def _run_apply(run: Run, snapshot: RunSnapshot, *, backend: str | None = None) -> None:
    """Copy what the provider said onto the run."""
    now = timezone.now()
    run.status = snapshot.status
    run.remote_status = snapshot.status
    run.last_polled_at = now
    fields = ["status", "remote_status", "last_polled_at", "updated_at", "last_error_kind"]
    if snapshot.lifetime is not None:
        run.poll_until = run.created_at + snapshot.lifetime
        fields.append("poll_until")
    run.last_error_kind = ""
    if backend is not None:
        run.backend = backend
        fields.append("backend")
    for field in ("thread_id", "remote_run_id", "response_id"):
        value = getattr(snapshot, field)
        if value:  # whole: the backend refuses an id too long to keep
            setattr(run, field, value)
            fields.append(field)
    if snapshot.usage is not None:
        run.input_tokens = snapshot.usage.input_tokens
        run.output_tokens = snapshot.usage.output_tokens
        run.total_tokens = snapshot.usage.total_tokens
        fields += ["input_tokens", "output_tokens", "total_tokens"]
    if snapshot.output_text:
        run.output_text = snapshot.output_text
        fields.append("output_text")
    run.last_error_code = snapshot.error_code
    run.last_error_message = snapshot.error_message
    fields += ["last_error_code", "last_error_message"]
    if run.is_terminal:
        run.completed_at = snapshot.completed_at or now
        fields.append("completed_at")
    with transaction.atomic():
        run.save(update_fields=fields)
    if run.status == RunStatus.FAILED:
        events.run_failed.send(Run, run_id=run.pk)


def run_create(
    *,
    assistant: Assistant,
    user: User,
    message: str,
    submission_token: uuid.UUID | None = None,
) -> tuple[Run, datetime | None]:
    """Record the run (queued), fast, without asking the provider: `run_begin` (a task)
    starts it there. Returns the run and the sync claim taken for it, if any, which the caller
    hands on to `run_begin`.

    `submission_token` is the form's one-time token, kept on the run (unique per team): the
    same form sent again raises AlreadySubmitted with the run it started, and the provider is
    not asked twice. An assistant that must first be brought to the provider (Assistants API,
    not in line there) is claimed before the run is recorded (the sync claim, see the package
    docstring), so that while another request or task holds it this raises SyncInProgress
    and records nothing."""
    connection = assistant.connection
    team = assistant.team
    shared.raise_if_submitted(Run, team, submission_token)
    api = run_api_for(connection)
    claim = None
    if assistant_needs_push(assistant, api):
        claim = sync.take_claim(assistant)
        if claim is None:
            # Perhaps the request that holds it is this same form, sent a moment earlier.
            shared.raise_if_submitted(Run, team, submission_token)
            sync.busy_or_vanished(assistant)  # the page then shows the sync under way
            raise shared.SyncInProgress
    run = Run(
        team=team,
        assistant=assistant,
        assistant_name=assistant.name,
        connection=connection,
        backend=api,
        input=message.strip(),
        status=RunStatus.QUEUED,
        started_by=user,
        submission_token=submission_token,
    )
    try:
        with transaction.atomic():
            run.full_clean(exclude=["submission_token"])
            run.save()
            audit_log(
                team=run.team,
                actor=user,
                action=AuditAction.RUN_START,
                target=run,
                data={"assistant": assistant.name, "backend": api},
            )
    except (IntegrityError, ValidationError):
        if claim is not None:
            sync.release(assistant, claim)
        shared.raise_if_submitted(Run, team, submission_token)
        raise
    return run, claim


def run_begin(*, run: Run, user: User | None, claim: datetime | None = None) -> Outcome[Run]:
    """Start a recorded run at the provider: first bring its assistant there under `claim`
    (from `run_create`), then start the run. A failure ends the run as `failed` with the
    error, explained on the run's page (and in the outcome). The caller makes sure a run is
    begun once (see assistants.tasks.run_begin_step); the start itself is sent at most once
    (`note_start_sent`): when another task sent it meanwhile, nothing is sent and the run is
    returned as it is now."""
    connection = run.connection
    assistant = run.assistant
    if assistant is None:  # deleted meanwhile (its claim went with it): nothing left to run
        error = ProviderError(ErrorKind.NOT_FOUND)
        _run_fail(run, error)
        return Outcome(value=run, error=error)
    if claim is not None:
        push, error = sync.bring_in_line(
            assistant, user=user, operation=ErrorOperation.RUN_START, claim=claim
        )
        if push == sync.Push.VANISHED:  # deleted meanwhile: nothing left to run
            error = ProviderError(ErrorKind.NOT_FOUND)
            _run_fail(run, error)
            return Outcome(value=run, error=error)
        if assistant.sync_state != SyncState.SYNCED:
            error = error or ProviderError(
                ErrorKind(assistant.last_error_kind or ErrorKind.BAD_REQUEST)
            )
            _run_fail(run, error)
            return Outcome(value=run, error=error)

    noted = False

    def start(backend: RunBackend) -> RunSnapshot:
        nonlocal noted
        # Once per begin: a second call here follows a refusal that made nothing (the
        # Assistants API not offered, trying the Responses API).
        if not noted and not note_start_sent(run):
            raise StartAlreadySent
        noted = True
        if context.thread_id:
            _cancel_given_up(run, backend, context.thread_id)
        return backend.start_run(assistant, run.input, context=context)

    # A later turn goes on where its conversation is (its thread, or its last response): on
    # the run API the conversation began on, never detected again halfway.
    context = turn_context(run)
    pinned = run.backend if run.turn > 1 else None
    try:
        snapshot, backend = run_api.with_backend(connection, start, api=pinned)
    except StartAlreadySent:
        run.refresh_from_db()
        return Outcome(value=run)
    except ProviderError as error:
        if context.thread_id and _thread_busy(error):
            # Not the connection's fault: the conversation's previous run is still going on.
            _run_fail_thread_busy(run, error)
            return Outcome(value=run, error=error)
        shared.record_error(connection, error, operation=ErrorOperation.RUN_START, user=user)
        _run_fail(run, error)
        if (
            error.kind == ErrorKind.NOT_FOUND
            and run_api_for(connection) == ASSISTANTS
            and not context.thread_id
        ):
            # The server has the Assistants API but not this assistant any more (a later turn's
            # 404 may be its thread's instead).
            sync.mark(assistant, state=SyncState.GONE, error=error)
        return Outcome(value=run, error=error)
    _run_apply(run, snapshot, backend=backend.name)
    return Outcome(value=run)


def turn_context(run: Run) -> TurnContext:
    """Where a turn goes on from: on the Assistants API the conversation's thread (the newest
    earlier turn that has one); on the Responses API the newest earlier turn that was answered
    (a failed turn's question is not carried on). A retry of a turn whose run reached the
    Assistants API does not add its message again: it is in the thread already."""
    if run.turn <= 1:
        return TurnContext()
    earlier = list(
        Run.objects.filter(conversation_id=run.conversation_id, turn__lt=run.turn)
        .order_by("-turn")
        .only("turn", "status", "thread_id", "remote_run_id", "response_id")
    )
    if run.backend == RESPONSES:
        answered = next(
            (
                turn
                for turn in earlier
                if turn.response_id and turn.status in (RunStatus.COMPLETED, RunStatus.INCOMPLETE)
            ),
            None,
        )
        return TurnContext(previous_response_id=answered.response_id if answered else "")
    thread = next((turn for turn in earlier if turn.thread_id), None)
    if thread is None:
        return TurnContext()
    previous = earlier[0]
    in_thread = run.is_retry and previous.thread_id == thread.thread_id and previous.remote_run_id
    return TurnContext(thread_id=thread.thread_id, add_message=not in_thread)


def conversation_latest(run: Run) -> Run:
    """The newest turn of `run`'s conversation."""
    return (
        Run.objects.filter(conversation_id=run.conversation_id, is_latest=True)
        .select_related("assistant", "connection", "started_by")
        .defer("connection__models_cache")
        .get()
    )


def run_follow_up(
    *,
    run: Run,
    user: User,
    message: str = "",
    retry: bool = False,
    submission_token: uuid.UUID | None = None,
) -> tuple[Run, datetime | None]:
    """Record the next turn of `run`'s conversation (queued, like `run_create`; `run_begin`
    starts it): `message`, or with `retry` the newest turn's own message sent again after it
    failed. Returns the new turn and the sync claim taken for it, if any.

    Refused (FollowUpRefused) while the newest turn has not ended (on the Assistants API a
    thread takes no new run while one is active, and an answer on the way would be lost on the
    Responses API), when the assistant was deleted or moved to another connection, or (a
    retry) when the newest turn did not fail. Two follow-ups sent at once: the database lets
    one be the next turn, and the other is refused as if the first were still running."""
    team = run.team
    shared.raise_if_submitted(Run, team, submission_token)
    latest = conversation_latest(run)
    assistant = latest.assistant
    if not latest.is_terminal:
        raise FollowUpRefused(FollowUpRefused.TURN_RUNNING, latest)
    if retry and not latest.is_retryable:
        raise FollowUpRefused(FollowUpRefused.NOTHING_TO_RETRY, latest)
    if assistant is None:
        raise FollowUpRefused(FollowUpRefused.ASSISTANT_GONE, latest)
    if assistant.connection_id != latest.connection_id:
        raise FollowUpRefused(FollowUpRefused.ASSISTANT_MOVED, latest)
    claim = None
    if assistant_needs_push(assistant, latest.backend):
        claim = sync.take_claim(assistant)
        if claim is None:
            shared.raise_if_submitted(Run, team, submission_token)
            sync.busy_or_vanished(assistant)
            raise shared.SyncInProgress
    turn = Run(
        team=team,
        assistant=assistant,
        assistant_name=assistant.name,
        connection=latest.connection,
        backend=latest.backend,
        input=latest.input if retry else message.strip(),
        status=RunStatus.QUEUED,
        started_by=user,
        submission_token=submission_token,
        conversation_id=latest.conversation_id,
        turn=latest.turn + 1,
        is_retry=retry,
    )
    try:
        with transaction.atomic():
            # The newest turn, still ended, gives way to this one (compare-and-swap: a
            # follow-up sent meanwhile took it first, or a retry started it again).
            handed_over = Run.objects.filter(
                pk=latest.pk, is_latest=True, status__in=TERMINAL_STATUSES
            ).update(is_latest=False)
            if not handed_over:
                raise FollowUpRefused(FollowUpRefused.TURN_RUNNING, latest)
            turn.full_clean(exclude=["submission_token", "conversation"])
            turn.save()
            audit_log(
                team=team,
                actor=user,
                action=AuditAction.RUN_START,
                target=turn,
                data={
                    "assistant": assistant.name,
                    "backend": turn.backend,
                    "turn": turn.turn,
                },
            )
    except (IntegrityError, ValidationError, FollowUpRefused) as refused:
        if claim is not None:
            sync.release(assistant, claim)
        shared.raise_if_submitted(Run, team, submission_token)
        if isinstance(refused, IntegrityError):  # another follow-up became this turn
            raise FollowUpRefused(FollowUpRefused.TURN_RUNNING, latest) from refused
        raise
    return turn, claim


def run_start(
    *,
    assistant: Assistant,
    user: User,
    message: str,
    submission_token: uuid.UUID | None = None,
) -> Outcome[Run]:
    """`run_create` and `run_begin` at once, in the caller's process (the page queues
    `run_begin` as a task instead; the demo and tests start runs this way)."""
    run, claim = run_create(
        assistant=assistant, user=user, message=message, submission_token=submission_token
    )
    return run_begin(run=run, user=user, claim=claim)


def poll_lock_key(run: Run) -> str:
    return f"assistants:run-poll:{run.pk}"


def _run_give_up(run: Run) -> None:
    """The run's deadline (`Run.poll_deadline`) has passed and the last check found it still
    going: Tablero stops asking and calls it expired. `remote_status` keeps what the provider
    last said, so the page can tell this from a run the provider itself expired. A run that
    ended meanwhile (a cancel, another request's last check) is left as it is."""
    now = timezone.now()
    values = {
        "status": RunStatus.EXPIRED,
        # A run never started at the provider keeps the status Tablero gave it.
        "remote_status": run.remote_status or run.status,
        "completed_at": now,
        "updated_at": now,
    }
    updated = Run.objects.filter(pk=run.pk).exclude(status__in=TERMINAL_STATUSES).update(**values)
    if updated:
        for field, value in values.items():
            setattr(run, field, value)
        events.run_stored.send(Run, run_id=run.pk, team_id=run.team_id)
    else:
        run.refresh_from_db()


def run_refresh(*, run: Run) -> Outcome[Run]:
    """Bring the run's status up to date, asking the provider at most about once a second per
    run however many pages poll it: within the interval, or while another request holds the
    run's lock, the stored status is returned. Ended runs are never asked about again.

    Past its deadline (the provider's own `expires_at`, at most TABLERO_RUN_POLL_LIMIT after
    the start) the provider is asked one last time; a run still going then is marked expired,
    so its page stops polling and nobody asks about it again. The outcome's error is this
    check's failure (also stored on the run); background work may call this the same way."""
    if run.is_terminal:
        return Outcome(value=run)
    now = timezone.now()
    overdue = now >= run.poll_deadline
    if not (run.remote_run_id or run.response_id):
        # Never started at the provider (the request that started it died): nothing to ask.
        if overdue:
            _run_give_up(run)
        return Outcome(value=run)
    if run.last_polled_at and now - run.last_polled_at < POLL_INTERVAL:
        return Outcome(value=run)
    if not cache.add(poll_lock_key(run), "1", timeout=POLL_INTERVAL.total_seconds()):
        run.refresh_from_db()
        return Outcome(value=run)
    # The cache lock is one process's own with the local-memory cache: claim the poll in the
    # database too, so that one request across every process asks the provider.
    claimed = (
        Run.objects.filter(pk=run.pk)
        .exclude(status__in=TERMINAL_STATUSES)
        .filter(Q(last_polled_at__isnull=True) | Q(last_polled_at__lte=now - POLL_INTERVAL))
        .update(last_polled_at=now)
    )
    if not claimed:
        run.refresh_from_db()
        return Outcome(value=run)
    run.last_polled_at = now
    try:
        snapshot = backend_for(run.connection, api=run.backend).get_run(run)
    except ProviderError as error:
        shared.record_error(run.connection, error, operation=ErrorOperation.RUN_REFRESH, user=None)
        _run_note_poll_error(run, error)
        if overdue:
            _run_give_up(run)
        return Outcome(value=run, error=error)
    _run_apply(run, snapshot)
    if overdue and not run.is_terminal:
        _run_give_up(run)
    return Outcome(value=run)


def run_cancel(*, run: Run, user: User) -> Outcome[Run]:
    """Ask the provider to cancel a queued or running run. On a provider error (also stored
    on the run) the run's status stays what it was."""
    if not run.is_cancellable:
        return Outcome(value=run)
    audit_log(
        team=run.team,
        actor=user,
        action=AuditAction.RUN_CANCEL,
        target=run,
        data={"assistant": run.assistant_name, "backend": run.backend},
    )
    if not (run.remote_run_id or run.response_id):
        _run_apply(run, RunSnapshot(status=RunStatus.CANCELLED))
        return Outcome(value=run)
    try:
        snapshot = backend_for(run.connection, api=run.backend).cancel_run(run)
    except ProviderError as error:
        shared.record_error(run.connection, error, operation=ErrorOperation.RUN_CANCEL, user=user)
        _run_note_poll_error(run, error)
        return Outcome(value=run, error=error)
    _run_apply(run, snapshot)
    return Outcome(value=run)
