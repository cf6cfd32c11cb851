"""Writes for assistants and runs (HackSoft style: keyword-only, typed).

Local record first, provider second, and never a transaction open across a provider call:
each service saves what it knows in a short transaction, talks to the provider, then records
the outcome in another short transaction. A provider failure never raises out of a service
that a page calls to change something: it is stored on the record (`last_error_kind`,
explained on the page through the error catalogue) and in the connection's error history.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from accounts.models import Team, User
from accounts.services import audit_log
from assistants.backends import (
    ASSISTANTS,
    RESPONSES,
    TAG_KEY,
    AssistantsBackend,
    RunApiDetection,
    RunBackend,
    RunSnapshot,
    backend_for,
    detect_run_api,
    is_remote_id,
    normalise_remote_tools,
    remote_tag,
    run_api_for,
    says_not_offered,
)
from assistants.models import (
    METADATA_MAX_PAIRS,
    SYNC_CLAIM_TTL,
    TERMINAL_STATUSES,
    Assistant,
    Run,
    RunStatus,
    SyncState,
)
from connections import crypto
from connections.errors import ErrorKind, ProviderError
from connections.models import Connection, RunApi
from connections.outcome import Outcome
from connections.services import client_for, error_event_record, error_summary

ASSISTANT_FIELDS = (
    "name",
    "description",
    "instructions",
    "model",
    "tools",
    "temperature",
    "top_p",
    "metadata",
)
# Failures after which a create may have reached the provider and made the remote copy though
# no answer said so: a 5xx, no answer in time, a dropped connection, an answer that could not
# be read. A clear refusal (4xx, rate limit, overloaded) made nothing. Every remote assistant
# Tablero creates carries the local record's id in its metadata (`backends.TAG_KEY`), so before
# it creates again after such a failure it looks for that copy and adopts it.
UNCERTAIN_CREATE_KINDS = frozenset(
    {
        ErrorKind.SERVER_ERROR,
        ErrorKind.TIMEOUT,
        ErrorKind.UNREACHABLE,
        ErrorKind.CONNECTION_DROPPED,
        ErrorKind.BAD_RESPONSE,
    }
)
# The provider is asked about a run at most once per this interval, however many people watch.
POLL_INTERVAL = timedelta(seconds=1)

T = TypeVar("T")


class AlreadySubmitted(Exception):
    """The form with this one-time token was sent before; `target` is what it made then."""

    def __init__(self, target: Assistant | Run) -> None:
        super().__init__("already submitted")
        self.target = target


class SyncInProgress(Exception):
    """Another request is bringing this assistant to the provider right now."""


class _Push(StrEnum):
    DONE = "done"  # the provider answered; success or failure is stored on the assistant
    BUSY = "busy"  # another request holds the sync claim: nothing was sent
    VANISHED = "vanished"  # the local record was deleted meanwhile (no remote copy is left)


def _push_outcome(assistant: Assistant, push: _Push, error: ProviderError | None) -> Outcome:
    """A push's result as the services give it: no value when the record is gone."""
    if push == _Push.VANISHED:
        return Outcome(error=error)
    return Outcome(value=assistant, error=error)


def _record_error(
    connection: Connection, error: ProviderError, *, operation: str, user: User | None
) -> None:
    error_event_record(connection=connection, error=error, operation=operation, user=user)


def _with_backend(
    connection: Connection, operation: Callable[[RunBackend], T], *, api: str | None = None
) -> tuple[T, RunBackend]:
    """Run `operation` on the connection's backend.

    When the Assistants API answers that it is not offered (404, 501, a "not supported" 500 as
    LiteLLM gives) and the connection detects its run API by itself, detect it again
    (api.openai.com removed the Assistants API on 2026-08-26); if the Responses API answers,
    note that on the connection and run `operation` on the Responses API.
    """
    backend = backend_for(connection, api=api)
    try:
        return operation(backend), backend
    except ProviderError as error:
        if not (
            isinstance(backend, AssistantsBackend)
            and says_not_offered(error)
            and connection.run_api == RunApi.AUTO
            and api is None
        ):
            raise
        detection = detect_run_api(backend.client, previous=connection.detected_run_api)
        if detection.api != RESPONSES:
            raise
    connection_note_run_api(connection=connection, detection=detection)
    backend = backend_for(connection, api=RESPONSES, client=backend.client)
    return operation(backend), backend


def connection_note_run_api(*, connection: Connection, detection: RunApiDetection) -> None:
    """Store a run-API detection on the connection: the API found (a detection without one,
    pending or finding neither, keeps the one noted before), why, and when; without touching
    its `updated_at`."""
    values: dict[str, Any] = {
        "run_api_reason": detection.reason,
        "run_api_status": detection.status
        if detection.status and 0 < detection.status < 1000
        else None,
        "run_api_checked_at": timezone.now(),
    }
    if detection.api in (ASSISTANTS, RESPONSES):
        values["detected_run_api"] = detection.api
    # Only while the key and server it was detected with are still the stored ones: a key
    # replaced meanwhile (perhaps with a new base URL) is detected on its own next test.
    updated = Connection.objects.filter(
        pk=connection.pk,
        api_key_encrypted=connection.api_key_encrypted,
        base_url=connection.base_url,
    ).update(**values)
    if updated:
        for field, value in values.items():
            setattr(connection, field, value)


def connection_detect_run_api(*, connection: Connection) -> RunApiDetection | None:
    """Ask which run API the connection's server offers and note the answer, and why, on the
    connection (`connections.services.connection_test` calls this after a successful check).
    None when the key does not decrypt (nothing is asked)."""
    try:
        client = client_for(connection)
    except crypto.DecryptionError:
        return None
    # Each question is asked once: an answer that says nothing clear makes the detection
    # pending (and is said so), and a "not supported" 500 is not worth asking three times.
    client.max_retries = 0
    detection = detect_run_api(client, previous=connection.detected_run_api)
    connection_note_run_api(connection=connection, detection=detection)
    return detection


# --- assistants -----------------------------------------------------------------------------


def _assistant_values(data: dict[str, Any]) -> dict[str, Any]:
    values = {field: data[field] for field in ASSISTANT_FIELDS if field in data}
    for field in ("name", "description", "instructions", "model"):
        if field in values:
            values[field] = (values[field] or "").strip()
    return values


def _assistant_mark(
    assistant: Assistant,
    *,
    state: str,
    error: ProviderError | None = None,
    remote_id: str | None = None,
    claim: datetime | None = None,
) -> bool:
    """Store the outcome of a provider call on the assistant, in one UPDATE, and release
    `claim` if it is still this request's. False when the record no longer exists.

    A push that ends well while someone saved new settings after its claim (their own push was
    refused as busy) leaves the record `pending`: what the provider has is not what is here."""
    now = timezone.now()
    values: dict[str, Any] = {
        "sync_state": state,
        "last_error_kind": error.kind.value if error else "",
        "last_error": error_summary(error) if error else "",
        "updated_at": now,
    }
    if remote_id is not None:
        values["remote_id"] = remote_id
    if state == SyncState.SYNCED:
        values["last_synced_at"] = now
        if claim is not None:
            values["sync_state"] = Case(
                When(updated_at__gt=claim, then=Value(SyncState.PENDING)),
                default=Value(SyncState.SYNCED),
            )
    if claim is not None:
        values["sync_claimed_at"] = Case(
            When(sync_claimed_at=claim, then=Value(None)), default=F("sync_claimed_at")
        )
    with transaction.atomic():
        try:
            with transaction.atomic():
                updated = Assistant.objects.filter(pk=assistant.pk).update(**values)
        except IntegrityError:
            if not remote_id:
                raise
            _assistant_absorb_imported_copy(assistant, remote_id)
            updated = Assistant.objects.filter(pk=assistant.pk).update(**values)
        if not updated:
            return False
        current = Assistant.objects.get(pk=assistant.pk)
    for field in ("sync_state", "last_error_kind", "last_error", "remote_id", "last_synced_at"):
        setattr(assistant, field, getattr(current, field))
    assistant.sync_claimed_at = current.sync_claimed_at
    assistant.updated_at = current.updated_at
    return True


def _assistant_absorb_imported_copy(assistant: Assistant, remote_id: str) -> None:
    """An import that listed the remote copy this push has just made, before the push could
    record it, added a second local record for it. That record is merged into this one (its
    runs move here), so the remote copy keeps one local record and the UPDATE that records
    `remote_id` does not break the one-record-per-remote-copy rule."""
    copies = Assistant.objects.filter(
        connection_id=assistant.connection_id, remote_id=remote_id
    ).exclude(pk=assistant.pk)
    for copy in copies.select_for_update():
        Run.objects.filter(assistant=copy).update(assistant=assistant)
        copy.delete()


def _assistant_claim(assistant: Assistant) -> datetime | None:
    """Claim the assistant for one push to the provider: an atomic conditional UPDATE that
    only one request wins (a claim older than SYNC_CLAIM_TTL is taken over). None when another
    request holds it or the record is gone."""
    now = timezone.now()
    claimed = (
        Assistant.objects.filter(pk=assistant.pk)
        .filter(Q(sync_claimed_at__isnull=True) | Q(sync_claimed_at__lte=now - SYNC_CLAIM_TTL))
        .update(sync_claimed_at=now)
    )
    return now if claimed else None


def _assistant_release(assistant: Assistant, claim: datetime) -> None:
    Assistant.objects.filter(pk=assistant.pk, sync_claimed_at=claim).update(sync_claimed_at=None)
    if assistant.sync_claimed_at == claim:
        assistant.sync_claimed_at = None


def _assistant_busy_or_vanished(assistant: Assistant) -> _Push:
    row = Assistant.objects.filter(pk=assistant.pk).values("sync_claimed_at").first()
    if row is None:
        return _Push.VANISHED
    assistant.sync_claimed_at = row["sync_claimed_at"]
    return _Push.BUSY


def _assistant_discard_remote(
    assistant: Assistant, backend: RunBackend, *, remote_id: str, user: User | None
) -> None:
    """Delete a remote copy made for a local record that was deleted while it was being made.
    Best effort: a failure is recorded on the connection's error history."""
    assistant.remote_id = remote_id
    try:
        backend.delete_assistant(assistant)
    except ProviderError as error:
        if error.kind != ErrorKind.NOT_FOUND:
            _record_error(assistant.connection, error, operation="assistant.discard", user=user)


def _assistant_create_uncertain(assistant: Assistant) -> bool:
    """Whether the record's last create failed in a way that may have made the remote copy
    all the same (see UNCERTAIN_CREATE_KINDS)."""
    return not assistant.remote_id and assistant.last_error_kind in UNCERTAIN_CREATE_KINDS


def _tagged_copy_finder(assistant: Assistant) -> Callable[[RunBackend], str | None]:
    tag = str(assistant.pk)
    return lambda backend: backend.find_tagged_assistant(tag)


def _assistant_adopt(assistant: Assistant, remote_id: str) -> bool:
    """Record `remote_id`, the copy an uncertain create made after all, on the assistant
    (nothing else changes). False when the record no longer exists."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                updated = Assistant.objects.filter(pk=assistant.pk).update(remote_id=remote_id)
        except IntegrityError:
            _assistant_absorb_imported_copy(assistant, remote_id)
            updated = Assistant.objects.filter(pk=assistant.pk).update(remote_id=remote_id)
    if updated:
        assistant.remote_id = remote_id
    return bool(updated)


def _assistant_push(
    assistant: Assistant, *, user: User | None, operation: str, claim: datetime | None = None
) -> tuple[_Push, ProviderError | None]:
    """Bring the remote copy in line with the local record (create, or modify).

    A create that follows an uncertain one (see UNCERTAIN_CREATE_KINDS) first looks for the
    copy that one may have made, by its tag, and modifies it instead of making another; when
    the provider cannot be asked, nothing is created and the record stays as it was.

    Under the sync claim (see the module docstring): a second request gets BUSY and sends
    nothing. Returns how it went and the provider's error (also stored on the record)."""
    if claim is None:
        claim = _assistant_claim(assistant)
        if claim is None:
            return _assistant_busy_or_vanished(assistant), None
    try:
        # What another request did before the claim counts: its remote copy, its settings.
        assistant.refresh_from_db()
    except Assistant.DoesNotExist:
        return _Push.VANISHED, None
    creates = not assistant.remote_id or assistant.sync_state == SyncState.GONE
    connection = assistant.connection
    if creates and _assistant_create_uncertain(assistant):
        try:
            found, backend = _with_backend(connection, _tagged_copy_finder(assistant))
        except ProviderError as error:
            # Whether the earlier attempt made a copy cannot be told: nothing is created, and
            # the record stays as that attempt left it, to be tried again.
            _record_error(connection, error, operation=operation, user=user)
            _assistant_release(assistant, claim)
            if not Assistant.objects.filter(pk=assistant.pk).exists():
                return _Push.VANISHED, error
            return _Push.DONE, error
        if found:
            if not _assistant_adopt(assistant, found):
                _assistant_discard_remote(assistant, backend, remote_id=found, user=user)
                return _Push.VANISHED, None
            creates = False  # the adopted copy is brought in line with the record below

    def push(backend: RunBackend) -> str | None:
        if backend.name != ASSISTANTS:
            return None
        if not creates:
            return backend.update_assistant(assistant)
        return backend.create_assistant(assistant)

    try:
        remote_id, backend = _with_backend(connection, push)
    except ProviderError as error:
        _record_error(connection, error, operation=operation, user=user)
        gone = error.kind == ErrorKind.NOT_FOUND and not creates
        marked = _assistant_mark(
            assistant,
            state=SyncState.GONE if gone else SyncState.FAILED,
            error=error,
            # A failed create names no remote copy (not the one that went before it), so that
            # the next attempt knows to look for the copy this one may have made.
            remote_id="" if creates else None,
            claim=claim,
        )
        return (_Push.DONE if marked else _Push.VANISHED), error
    on_assistants = backend.name == ASSISTANTS
    if _assistant_mark(
        assistant,
        state=SyncState.SYNCED,
        remote_id=remote_id if on_assistants else None,
        claim=claim,
    ):
        return _Push.DONE, None
    if on_assistants and creates and remote_id:
        _assistant_discard_remote(assistant, backend, remote_id=remote_id, user=user)
    return _Push.VANISHED, None


def _raise_if_submitted(model: type[Assistant | Run], team: Team, token: uuid.UUID | None) -> None:
    """Raise AlreadySubmitted when the form with this one-time token already made a record."""
    if token is None:
        return
    existing = model.objects.filter(team=team, submission_token=token).first()
    if existing is not None:
        raise AlreadySubmitted(existing)


def assistant_create(
    *,
    team: Team,
    user: User,
    connection: Connection,
    data: dict[str, Any],
    submission_token: uuid.UUID | None = None,
) -> Outcome[Assistant]:
    """Save the assistant locally (pending), then create it remotely where the connection uses
    the Assistants API. A provider failure leaves the local record `failed` with the error, to
    be retried with `assistant_sync`; it never leaves a remote assistant without a record.

    `submission_token` is the form's one-time token: the local record carries it (unique per
    team), so the same form sent again raises AlreadySubmitted with the assistant it created,
    before anything reaches the provider. Without a token every call creates."""
    if connection.team_id != team.pk:
        raise ValueError("The connection belongs to another team.")
    _raise_if_submitted(Assistant, team, submission_token)
    assistant = Assistant(
        team=team,
        connection=connection,
        created_by=user,
        sync_state=SyncState.PENDING,
        submission_token=submission_token,
        **_assistant_values(data),
    )
    try:
        with transaction.atomic():
            # The token's uniqueness is the database's to check: only it sees the other
            # request that sent the same form a moment ago.
            assistant.full_clean(exclude=["submission_token"])
            assistant.save()
            audit_log(
                team=team,
                actor=user,
                action="assistant.create",
                target=assistant,
                data={"connection": connection.name, "model": assistant.model},
            )
    except IntegrityError:
        _raise_if_submitted(Assistant, team, submission_token)
        raise
    push, error = _assistant_push(assistant, user=user, operation="assistant.create")
    return _push_outcome(assistant, push, error)


def assistant_update(
    *, assistant: Assistant, user: User, data: dict[str, Any]
) -> Outcome[Assistant]:
    """Change the local record, then the remote copy; a failure marks it `failed`. While
    another request is syncing the assistant the change is saved here only (the assistant's
    `sync_in_progress` then says so, and it ends up `pending`, to be synced again)."""
    values = _assistant_values(data)
    changed = sorted(field for field, value in values.items() if getattr(assistant, field) != value)
    with transaction.atomic():
        for field, value in values.items():
            setattr(assistant, field, value)
        if assistant.sync_state == SyncState.SYNCED:
            assistant.sync_state = SyncState.PENDING
        assistant.full_clean(exclude=["submission_token"])
        assistant.save(update_fields=[*ASSISTANT_FIELDS, "sync_state", "updated_at"])
        audit_log(
            team=assistant.team,
            actor=user,
            action="assistant.update",
            target=assistant,
            data={"changed": changed},
        )
    push, error = _assistant_push(assistant, user=user, operation="assistant.update")
    return _push_outcome(assistant, push, error)


def assistant_sync(*, assistant: Assistant, user: User) -> Outcome[Assistant]:
    """Try again to bring the remote copy in line ("Retry sync"). An assistant gone remotely
    is created anew. While another request is syncing it nothing is sent (the assistant's
    `sync_in_progress` then says so), so a double click never creates two remote copies. No
    value when the record was deleted meanwhile."""
    audit_log(
        team=assistant.team,
        actor=user,
        action="assistant.sync",
        target=assistant,
        data={"state": assistant.sync_state},
    )
    push, error = _assistant_push(assistant, user=user, operation="assistant.sync")
    return _push_outcome(assistant, push, error)


# A delete that finds a new remote copy recorded meanwhile deletes that one too; a sync started
# before it can add at most one (the delete's claim refuses later ones).
DELETE_ATTEMPTS = 3
_DELETED: Outcome[Assistant] = Outcome()


def assistant_delete(*, assistant: Assistant, user: User) -> Outcome[Assistant]:
    """Delete the remote copy first (already gone counts as done), then the local record. The
    outcome has no value once the record is deleted.

    Any other failure keeps the local record, marked `failed` with the error, and returns it
    as the value: a local record is never dropped while its remote copy may still exist.

    A sync in progress does not stop it. The delete takes the sync claim over, so no new sync
    starts meanwhile; the local record is deleted only if it still names the remote copy just
    deleted (else that newer copy is deleted too); and a sync that creates a remote copy for a
    record deleted meanwhile deletes that copy itself. A record already deleted by someone
    else counts as deleted."""
    connection = assistant.connection
    claim = timezone.now()
    if not Assistant.objects.filter(pk=assistant.pk).update(sync_claimed_at=claim):
        return _DELETED
    try:
        assistant.refresh_from_db()
    except Assistant.DoesNotExist:
        return _DELETED
    if _assistant_create_uncertain(assistant):
        # Its create may have made a remote copy whose answer was lost: that copy goes too.
        try:
            found, _backend = _with_backend(
                connection, _tagged_copy_finder(assistant), api=ASSISTANTS
            )
        except ProviderError as error:
            if error.kind != ErrorKind.NOT_FOUND:  # 404: the server has no Assistants API
                _record_error(connection, error, operation="assistant.delete", user=user)
                _assistant_release(assistant, claim)
                if not Assistant.objects.filter(pk=assistant.pk).exists():
                    return _DELETED
                return Outcome(value=assistant, error=error)
            found = None
        if found and not _assistant_adopt(assistant, found):
            return _DELETED
    for _attempt in range(DELETE_ATTEMPTS):
        seen_remote_id = assistant.remote_id
        if seen_remote_id and assistant.sync_state != SyncState.GONE:
            try:
                # The remote copy lives on the Assistants API, whichever run API the connection
                # uses now (an admin may have switched it to Responses since): a server without
                # that API (404, or LiteLLM's "not supported" 500) counts it as gone.
                _with_backend(
                    connection,
                    lambda backend: backend.delete_assistant(assistant),
                    api=ASSISTANTS,
                )
            except ProviderError as error:
                if error.kind != ErrorKind.NOT_FOUND and not says_not_offered(error):
                    _record_error(connection, error, operation="assistant.delete", user=user)
                    # Deleted meanwhile by someone else, whose delete reached the provider.
                    if not _assistant_mark(
                        assistant, state=SyncState.FAILED, error=error, claim=claim
                    ):
                        return _DELETED
                    return Outcome(value=assistant, error=error)
        with transaction.atomic():
            _total, deleted = Assistant.objects.filter(
                pk=assistant.pk, remote_id=seen_remote_id
            ).delete()
            if deleted.get(Assistant._meta.label):
                audit_log(
                    team=assistant.team,
                    actor=user,
                    action="assistant.delete",
                    target=assistant,
                    data={"connection": connection.name, "remote_id": seen_remote_id},
                )
                return _DELETED
        try:
            # A sync recorded a new remote copy meanwhile: that one goes too.
            assistant.refresh_from_db()
        except Assistant.DoesNotExist:
            return _DELETED
    _assistant_release(assistant, claim)
    return Outcome(value=assistant)


@dataclass(frozen=True)
class ImportResult:
    api: str  # the run API the connection uses; nothing to import on "responses"
    added: int = 0
    known: int = 0
    skipped: int = 0

    @property
    def found(self) -> int:
        return self.added + self.known + self.skipped


def _metadata_from_remote(value: Any) -> dict[str, str]:
    """The user's metadata of a remote assistant: Tablero's own tag is not theirs."""
    if not isinstance(value, dict):
        return {}
    tagged = remote_tag({"metadata": value}) is not None
    pairs = [
        (key, item)
        for key, item in value.items()
        if isinstance(key, str) and isinstance(item, str) and len(key) <= 64 and len(item) <= 512
        if not (tagged and key == TAG_KEY)
    ]
    return dict(pairs[:METADATA_MAX_PAIRS])


def _number_in(value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if low <= value <= high else None


def _assistant_from_remote(
    remote: dict[str, Any], *, team: Team, user: User, connection: Connection
) -> Assistant:
    def text(key: str, limit: int) -> str:
        value = remote.get(key)
        return value.strip()[:limit] if isinstance(value, str) else ""

    return Assistant(
        team=team,
        connection=connection,
        created_by=user,
        name=text("name", 256) or remote["id"][:256],
        description=text("description", 512),
        instructions=text("instructions", 256000),
        # Whole: a model id longer than Tablero keeps fails full_clean and is skipped.
        model=remote["model"].strip() if isinstance(remote.get("model"), str) else "",
        tools=normalise_remote_tools(remote.get("tools")),
        temperature=_number_in(remote.get("temperature"), 0, 2),
        top_p=_number_in(remote.get("top_p"), 0, 1),
        metadata=_metadata_from_remote(remote.get("metadata")),
        remote_id=remote["id"],
        sync_state=SyncState.SYNCED,
        last_synced_at=timezone.now(),
    )


def _known_remote_ids(connection: Connection) -> set[str]:
    return set(
        Assistant.objects.filter(connection=connection)
        .exclude(remote_id="")
        .values_list("remote_id", flat=True)
    )


class _Tagged(StrEnum):
    ATTACHED = "attached"  # the copy an uncertain create made for a record here, now recorded
    KNOWN = "known"  # that record's push is under way: it finds the copy itself
    SKIPPED = "skipped"  # a copy made for a record that has another one, or lives elsewhere
    UNKNOWN = "unknown"  # no record of that id exists: imported like any other assistant


def _import_tagged(remote: dict[str, Any], tag: str, *, connection: Connection) -> _Tagged:
    """What an import does with a remote assistant Tablero tagged with a record's id.

    A record of this connection that names no remote copy (its create was uncertain) or one
    gone remotely gets this copy, unless a push holds it (that push finds the copy by itself).
    A record that names another copy keeps it: this one is an extra, never a new record. A
    record of another connection or team is never attached to, nor copied here."""
    record = Assistant.objects.filter(pk=tag).values("connection_id").first()
    if record is None:
        return _Tagged.UNKNOWN
    if record["connection_id"] != connection.pk:
        return _Tagged.SKIPPED
    now = timezone.now()
    candidates = (
        Assistant.objects.filter(pk=tag, connection=connection)
        .filter(Q(remote_id="") | Q(sync_state=SyncState.GONE))
        .filter(Q(sync_claimed_at__isnull=True) | Q(sync_claimed_at__lte=now - SYNC_CLAIM_TTL))
    )
    try:
        with transaction.atomic():
            attached = candidates.update(
                remote_id=remote["id"],
                sync_state=SyncState.PENDING,
                last_error_kind="",
                last_error="",
                updated_at=now,
            )
    except IntegrityError:  # another import recorded this copy meanwhile
        return _Tagged.KNOWN
    if attached:
        return _Tagged.ATTACHED
    busy = Assistant.objects.filter(
        pk=tag, sync_claimed_at__gt=now - SYNC_CLAIM_TTL, remote_id=""
    ).exists()
    return _Tagged.KNOWN if busy else _Tagged.SKIPPED


def assistant_import(*, team: Team, user: User, connection: Connection) -> Outcome[ImportResult]:
    """Add a local record for every remote assistant of the connection not known yet (all
    pages, following `after`). When the list cannot be read nothing is added (the outcome's
    error says why).

    A remote assistant tagged with the id of a local record (Tablero made it for that record,
    see UNCERTAIN_CREATE_KINDS) never becomes a new record: it is attached to a record of this
    connection that lacks it, and then brought in line with that record."""
    if connection.team_id != team.pk:
        raise ValueError("The connection belongs to another team.")
    try:
        remotes, backend = _with_backend(
            connection, lambda backend: list(backend.list_remote_assistants())
        )
    except ProviderError as error:
        _record_error(connection, error, operation="assistant.import", user=user)
        return Outcome(error=error)
    if backend.name != ASSISTANTS:
        return Outcome(value=ImportResult(api=backend.name))
    known_ids = _known_remote_ids(connection)
    added = skipped = known = 0
    attached: list[str] = []
    with transaction.atomic():
        for remote in remotes:
            if remote["id"] in known_ids:
                known += 1
                continue
            if not is_remote_id(remote["id"]):  # could never be synced nor deleted
                skipped += 1
                continue
            tag = remote_tag(remote)
            outcome = _import_tagged(remote, tag, connection=connection) if tag else None
            if outcome == _Tagged.ATTACHED:
                attached.append(tag)
                known_ids.add(remote["id"])
            if outcome in (_Tagged.ATTACHED, _Tagged.KNOWN):
                known += 1
                continue
            if outcome == _Tagged.SKIPPED:
                skipped += 1
                continue
            assistant = _assistant_from_remote(remote, team=team, user=user, connection=connection)
            try:
                # The check constraints hold by construction; uniqueness is left to the
                # database, which alone sees another import of this connection (a double
                # click) that added the same assistant meanwhile.
                assistant.full_clean(validate_constraints=False)
            except ValidationError:  # a remote assistant Tablero cannot represent (no model)
                skipped += 1
                continue
            try:
                with transaction.atomic():
                    assistant.save()
            except IntegrityError:  # the other import added it first
                known += 1
                continue
            known_ids.add(assistant.remote_id)
            added += 1
        audit_log(
            team=team,
            actor=user,
            action="assistant.import",
            target=connection,
            data={"added": added, "known": known, "skipped": skipped, "attached": len(attached)},
        )
    for pk in attached:
        # The copy holds the settings of the create that made it: send the record's own.
        found = Assistant.objects.filter(pk=pk).first()
        if found is not None:
            _assistant_push(found, user=user, operation="assistant.import")
    return Outcome(value=ImportResult(api=ASSISTANTS, added=added, known=known, skipped=skipped))


# --- runs -----------------------------------------------------------------------------------


def _copy_error(run: Run, error: ProviderError) -> None:
    run.last_error_kind = error.kind.value
    run.last_error_code = (error.code or "")[:100]
    run.last_error_message = (error.message or "")[:2000]


def _run_fail(run: Run, error: ProviderError) -> None:
    """A provider call that should have started the run failed: the run ends here."""
    run.status = RunStatus.FAILED
    _copy_error(run, error)
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


def run_start(
    *,
    assistant: Assistant,
    user: User,
    message: str,
    submission_token: uuid.UUID | None = None,
) -> Outcome[Run]:
    """Record the run (queued), then start it at the provider. A failure ends the run as
    `failed` with the error, explained on the run's page (and in the outcome).

    `submission_token` is the form's one-time token, kept on the run (unique per team): the
    same form sent again raises AlreadySubmitted with the run it started, and the provider is
    not asked twice. An assistant that must first be brought to the provider, while another
    request is doing that, raises SyncInProgress and records nothing."""
    connection = assistant.connection
    team = assistant.team
    _raise_if_submitted(Run, team, submission_token)
    api = run_api_for(connection)
    claim = None
    if api == ASSISTANTS and (not assistant.remote_id or assistant.sync_state != SyncState.SYNCED):
        # Not on the provider yet (or out of date): it is brought there first, under a claim
        # taken before the run is recorded, so that a busy assistant records no run.
        claim = _assistant_claim(assistant)
        if claim is None:
            # Perhaps the request that holds it is this same form, sent a moment earlier.
            _raise_if_submitted(Run, team, submission_token)
            _assistant_busy_or_vanished(assistant)  # the page then shows the sync under way
            raise SyncInProgress
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
                action="run.start",
                target=run,
                data={"assistant": assistant.name, "backend": api},
            )
    except (IntegrityError, ValidationError):
        if claim is not None:
            _assistant_release(assistant, claim)
        _raise_if_submitted(Run, team, submission_token)
        raise

    if claim is not None:
        push, error = _assistant_push(assistant, user=user, operation="run.start", claim=claim)
        if push == _Push.VANISHED:  # deleted meanwhile: nothing left to run
            error = ProviderError(ErrorKind.NOT_FOUND)
            _run_fail(run, error)
            return Outcome(value=run, error=error)
        if assistant.sync_state != SyncState.SYNCED:
            error = error or ProviderError(
                ErrorKind(assistant.last_error_kind or ErrorKind.BAD_REQUEST)
            )
            _run_fail(run, error)
            return Outcome(value=run, error=error)

    def start(backend: RunBackend) -> RunSnapshot:
        return backend.start_run(assistant, run.input)

    try:
        snapshot, backend = _with_backend(connection, start)
    except ProviderError as error:
        _record_error(connection, error, operation="run.start", user=user)
        _run_fail(run, error)
        if error.kind == ErrorKind.NOT_FOUND and run_api_for(connection) == ASSISTANTS:
            # The server has the Assistants API but not this assistant any more.
            _assistant_mark(assistant, state=SyncState.GONE, error=error)
        return Outcome(value=run, error=error)
    _run_apply(run, snapshot, backend=backend.name)
    return Outcome(value=run)


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
        _record_error(run.connection, error, operation="run.refresh", user=None)
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
        action="run.cancel",
        target=run,
        data={"assistant": run.assistant_name, "backend": run.backend},
    )
    if not (run.remote_run_id or run.response_id):
        _run_apply(run, RunSnapshot(status=RunStatus.CANCELLED))
        return Outcome(value=run)
    try:
        snapshot = backend_for(run.connection, api=run.backend).cancel_run(run)
    except ProviderError as error:
        _record_error(run.connection, error, operation="run.cancel", user=user)
        _run_note_poll_error(run, error)
        return Outcome(value=run, error=error)
    _run_apply(run, snapshot)
    return Outcome(value=run)
