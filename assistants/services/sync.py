"""The sync protocol: bringing an assistant's remote copy in line with its local record,
under a claim (see the package docstring)."""

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from accounts.models import User
from assistants.backends import RunBackend
from assistants.models import SYNC_CLAIM_TTL, Assistant, Run, SyncState
from assistants.services import run_api, shared
from connections.models import ErrorOperation
from connections.outcome import Outcome
from connections.services import error_summary
from provider.errors import ErrorKind, ProviderError
from provider.runapi import ASSISTANTS

# Failures after which a create may have reached the provider and made the remote copy though
# no answer said so: a 5xx, no answer in time, a dropped connection, an answer that could not
# be read. A clear refusal (4xx, rate limit, overloaded) made nothing. Every remote assistant
# Tablero creates carries the local record's id in its metadata (`backends.TAG_KEY`), so before
# it creates again after such a failure it looks for that copy and adopts it. A create that got
# no answer at all (its consumer was killed while it waited) left no error to read: the record's
# `create_sent_at`, committed before the create is sent (`note_create_sent`), says so instead.
UNCERTAIN_CREATE_KINDS = frozenset(
    {
        ErrorKind.SERVER_ERROR,
        ErrorKind.TIMEOUT,
        ErrorKind.UNREACHABLE,
        ErrorKind.CONNECTION_DROPPED,
        ErrorKind.BAD_RESPONSE,
    }
)


class Push(StrEnum):
    DONE = "done"  # the provider answered; success or failure is stored on the assistant
    BUSY = "busy"  # another request holds the sync claim: nothing was sent
    VANISHED = "vanished"  # the local record was deleted meanwhile (no remote copy is left)


def push_outcome(assistant: Assistant, push: Push, error: ProviderError | None) -> Outcome:
    """A push's result as the services give it: no value when the record is gone."""
    if push == Push.VANISHED:
        return Outcome(error=error)
    return Outcome(value=assistant, error=error)


def mark(
    assistant: Assistant,
    *,
    state: str,
    error: ProviderError | None = None,
    remote_id: str | None = None,
    claim: datetime | None = None,
) -> bool:
    """Store the outcome of a provider call on the assistant, in one UPDATE. Claims: releases
    `claim` by compare-and-swap, and a good push over settings saved since stays `pending`
    (package docstring). False when the record no longer exists."""
    now = timezone.now()
    values: dict[str, Any] = {
        "sync_state": state,
        "last_error_kind": error.kind.value if error else "",
        "last_error": error_summary(error) if error else "",
        "updated_at": now,
    }
    if remote_id is not None:
        values["remote_id"] = remote_id
        # A create's outcome is known: a copy made (its id), or a clear refusal made none.
        if remote_id or (error is not None and error.kind not in UNCERTAIN_CREATE_KINDS):
            values["create_sent_at"] = None
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
            absorb_imported_copy(assistant, remote_id)
            updated = Assistant.objects.filter(pk=assistant.pk).update(**values)
        if not updated:
            return False
        current = Assistant.objects.get(pk=assistant.pk)
    for field in (
        "sync_state",
        "last_error_kind",
        "last_error",
        "remote_id",
        "last_synced_at",
        "create_sent_at",
    ):
        setattr(assistant, field, getattr(current, field))
    assistant.sync_claimed_at = current.sync_claimed_at
    assistant.updated_at = current.updated_at
    return True


def absorb_imported_copy(assistant: Assistant, remote_id: str) -> None:
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


def take_claim(assistant: Assistant) -> datetime | None:
    """Claim the assistant for one push (package docstring: the sync claim). Returns the
    claim, or None when another request holds it or the record is gone."""
    now = timezone.now()
    claimed = (
        Assistant.objects.filter(pk=assistant.pk)
        .filter(Q(sync_claimed_at__isnull=True) | Q(sync_claimed_at__lte=now - SYNC_CLAIM_TTL))
        .update(sync_claimed_at=now)
    )
    return now if claimed else None


def release(assistant: Assistant, claim: datetime) -> None:
    Assistant.objects.filter(pk=assistant.pk, sync_claimed_at=claim).update(sync_claimed_at=None)
    if assistant.sync_claimed_at == claim:
        assistant.sync_claimed_at = None


def busy_or_vanished(assistant: Assistant) -> Push:
    row = Assistant.objects.filter(pk=assistant.pk).values("sync_claimed_at").first()
    if row is None:
        return Push.VANISHED
    assistant.sync_claimed_at = row["sync_claimed_at"]
    return Push.BUSY


def discard_remote(
    assistant: Assistant, backend: RunBackend, *, remote_id: str, user: User | None
) -> None:
    """Delete a remote copy made for a local record that was deleted while it was being made.
    Best effort: a failure is recorded on the connection's error history."""
    assistant.remote_id = remote_id
    try:
        backend.delete_assistant(assistant)
    except ProviderError as error:
        if error.kind != ErrorKind.NOT_FOUND:
            shared.record_error(
                assistant.connection, error, operation=ErrorOperation.ASSISTANT_DISCARD, user=user
            )


def create_uncertain(assistant: Assistant) -> bool:
    """Whether the record's last create may have made a remote copy that the record does not
    name: it was sent and no outcome was recorded (`create_sent_at`), or it failed in a way
    that may have made the copy all the same (see UNCERTAIN_CREATE_KINDS)."""
    if assistant.create_sent_at is not None:
        return True
    return not assistant.remote_id and assistant.last_error_kind in UNCERTAIN_CREATE_KINDS


def note_create_sent(assistant: Assistant) -> None:
    """Note, committed before the create goes out, that a create is being sent: whoever comes
    next (this task run again after its consumer was killed) then looks for its copy by the tag
    before creating another. Called outside any transaction (no task holds one across a
    provider call), so the UPDATE commits at once."""
    now = timezone.now()
    Assistant.objects.filter(pk=assistant.pk).update(create_sent_at=now)
    assistant.create_sent_at = now


def tagged_copy_finder(assistant: Assistant) -> Callable[[RunBackend], str | None]:
    tag = str(assistant.pk)
    return lambda backend: backend.find_tagged_assistant(tag)


def adopt(assistant: Assistant, remote_id: str) -> bool:
    """Record `remote_id`, the copy an uncertain create made after all, on the assistant
    (nothing else changes). False when the record no longer exists."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                updated = Assistant.objects.filter(pk=assistant.pk).update(
                    remote_id=remote_id, create_sent_at=None
                )
        except IntegrityError:
            absorb_imported_copy(assistant, remote_id)
            updated = Assistant.objects.filter(pk=assistant.pk).update(
                remote_id=remote_id, create_sent_at=None
            )
    if updated:
        assistant.remote_id = remote_id
        assistant.create_sent_at = None
    return bool(updated)


def bring_in_line(
    assistant: Assistant, *, user: User | None, operation: str, claim: datetime | None = None
) -> tuple[Push, ProviderError | None]:
    """Bring the remote copy in line with the local record (create, or modify).

    A create that follows an uncertain one (see UNCERTAIN_CREATE_KINDS) first looks for the
    copy that one may have made, by its tag, and modifies it instead of making another; when
    the provider cannot be asked, nothing is created and the record stays as it was.

    Under the sync claim (see the package docstring): a second request gets BUSY and sends
    nothing. Returns how it went and the provider's error (also stored on the record)."""
    if claim is None:
        claim = take_claim(assistant)
        if claim is None:
            return busy_or_vanished(assistant), None
    try:
        # What another request did before the claim counts: its remote copy, its settings.
        assistant.refresh_from_db()
    except Assistant.DoesNotExist:
        return Push.VANISHED, None
    creates = not assistant.remote_id or assistant.sync_state == SyncState.GONE
    connection = assistant.connection
    if creates and create_uncertain(assistant):
        try:
            found, backend = run_api.with_backend(connection, tagged_copy_finder(assistant))
        except ProviderError as error:
            # Whether the earlier attempt made a copy cannot be told: nothing is created, and
            # the record stays as that attempt left it, to be tried again.
            shared.record_error(connection, error, operation=operation, user=user)
            release(assistant, claim)
            if not Assistant.objects.filter(pk=assistant.pk).exists():
                return Push.VANISHED, error
            return Push.DONE, error
        if found:
            if not adopt(assistant, found):
                discard_remote(assistant, backend, remote_id=found, user=user)
                return Push.VANISHED, None
            creates = False  # the adopted copy is brought in line with the record below

    def push(backend: RunBackend) -> str | None:
        if backend.name != ASSISTANTS:
            return None
        if not creates:
            return backend.update_assistant(assistant)
        note_create_sent(assistant)
        return backend.create_assistant(assistant)

    try:
        remote_id, backend = run_api.with_backend(connection, push)
    except ProviderError as error:
        shared.record_error(connection, error, operation=operation, user=user)
        gone = error.kind == ErrorKind.NOT_FOUND and not creates
        marked = mark(
            assistant,
            state=SyncState.GONE if gone else SyncState.FAILED,
            error=error,
            # A failed create names no remote copy (not the one that went before it), so that
            # the next attempt knows to look for the copy this one may have made.
            remote_id="" if creates else None,
            claim=claim,
        )
        return (Push.DONE if marked else Push.VANISHED), error
    on_assistants = backend.name == ASSISTANTS
    if mark(
        assistant,
        state=SyncState.SYNCED,
        remote_id=remote_id if on_assistants else None,
        claim=claim,
    ):
        return Push.DONE, None
    if on_assistants and creates and remote_id:
        discard_remote(assistant, backend, remote_id=remote_id, user=user)
    return Push.VANISHED, None
