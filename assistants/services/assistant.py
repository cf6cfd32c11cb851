"""Creating, changing, syncing and deleting assistants (local record first, provider second)."""

import uuid
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import AuditAction, Team, User
from accounts.services import audit_log
from assistants.models import Assistant, SyncState
from assistants.services import run_api, shared, sync
from connections.models import Connection, ErrorOperation
from connections.outcome import Outcome
from provider.errors import ErrorKind, ProviderError
from provider.runapi import ASSISTANTS, says_not_offered

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


def _assistant_values(data: dict[str, Any]) -> dict[str, Any]:
    values = {field: data[field] for field in ASSISTANT_FIELDS if field in data}
    for field in ("name", "description", "instructions", "model"):
        if field in values:
            values[field] = (values[field] or "").strip()
    return values


def assistant_create(
    *,
    team: Team,
    user: User,
    connection: Connection,
    data: dict[str, Any],
    submission_token: uuid.UUID | None = None,
    push: bool = True,
) -> Outcome[Assistant]:
    """Save the assistant locally (pending), then create it remotely where the connection uses
    the Assistants API. A provider failure leaves the local record `failed` with the error, to
    be retried with `assistant_sync`; it never leaves a remote assistant without a record.

    `submission_token` is the form's one-time token: the local record carries it (unique per
    team), so the same form sent again raises AlreadySubmitted with the assistant it created,
    before anything reaches the provider. Without a token every call creates.

    With `push=False` only the local record is saved (fast, for a page): the push is left to
    a task (`assistants.tasks.assistant_push_queue`)."""
    if connection.team_id != team.pk:
        raise ValueError("The connection belongs to another team.")
    shared.raise_if_submitted(Assistant, team, submission_token)
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
                action=AuditAction.ASSISTANT_CREATE,
                target=assistant,
                data={"connection": connection.name, "model": assistant.model},
            )
    except IntegrityError:
        shared.raise_if_submitted(Assistant, team, submission_token)
        raise
    if not push:
        return Outcome(value=assistant)
    done, error = sync.bring_in_line(
        assistant, user=user, operation=ErrorOperation.ASSISTANT_CREATE
    )
    return sync.push_outcome(assistant, done, error)


def assistant_update(
    *, assistant: Assistant, user: User, data: dict[str, Any], push: bool = True
) -> Outcome[Assistant]:
    """Change the local record, then the remote copy; a failure marks it `failed`. While
    another request is syncing the assistant the change is saved here only (the assistant's
    `sync_in_progress` then says so, and it ends up `pending`, to be synced again). With
    `push=False` only the local record changes (the push is a task's)."""
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
            action=AuditAction.ASSISTANT_UPDATE,
            target=assistant,
            data={"changed": changed},
        )
    if not push:
        return Outcome(value=assistant)
    done, error = sync.bring_in_line(
        assistant, user=user, operation=ErrorOperation.ASSISTANT_UPDATE
    )
    return sync.push_outcome(assistant, done, error)


def assistant_sync(*, assistant: Assistant, user: User, push: bool = True) -> Outcome[Assistant]:
    """Try again to bring the remote copy in line ("Retry sync"). An assistant gone remotely
    is created anew. While another request is syncing it nothing is sent (the assistant's
    `sync_in_progress` then says so), so a double click never creates two remote copies. No
    value when the record was deleted meanwhile. With `push=False` only the request is
    recorded (the audit entry); the push is a task's."""
    audit_log(
        team=assistant.team,
        actor=user,
        action=AuditAction.ASSISTANT_SYNC,
        target=assistant,
        data={"state": assistant.sync_state},
    )
    if not push:
        return Outcome(value=assistant)
    done, error = sync.bring_in_line(assistant, user=user, operation=ErrorOperation.ASSISTANT_SYNC)
    return sync.push_outcome(assistant, done, error)


# A delete that finds a new remote copy recorded meanwhile deletes that one too; a sync started
# before it can add at most one (the delete's claim refuses later ones).
DELETE_ATTEMPTS = 3
_DELETED: Outcome[Assistant] = Outcome()


def assistant_delete(*, assistant: Assistant, user: User) -> Outcome[Assistant]:
    """Delete the remote copy first (already gone counts as done), then the local record. The
    outcome has no value once the record is deleted.

    Any other failure keeps the local record, marked `failed` with the error, and returns it
    as the value: a local record is never dropped while its remote copy may still exist.

    Claims: takes the sync claim over, and deletes the record only if it still names the copy
    just deleted (compare-and-swap on `remote_id`; package docstring). A record already deleted
    by someone else counts as deleted."""
    connection = assistant.connection
    claim = timezone.now()
    if not Assistant.objects.filter(pk=assistant.pk).update(sync_claimed_at=claim):
        return _DELETED
    try:
        assistant.refresh_from_db()
    except Assistant.DoesNotExist:
        return _DELETED
    if sync.create_uncertain(assistant):
        # Its create may have made a remote copy whose answer was lost: that copy goes too.
        try:
            found, _backend = run_api.with_backend(
                connection, sync.tagged_copy_finder(assistant), api=ASSISTANTS
            )
        except ProviderError as error:
            if error.kind != ErrorKind.NOT_FOUND:  # 404: the server has no Assistants API
                shared.record_error(
                    connection, error, operation=ErrorOperation.ASSISTANT_DELETE, user=user
                )
                sync.release(assistant, claim)
                if not Assistant.objects.filter(pk=assistant.pk).exists():
                    return _DELETED
                return Outcome(value=assistant, error=error)
            found = None
        if found and not sync.adopt(assistant, found):
            return _DELETED
    for _attempt in range(DELETE_ATTEMPTS):
        seen_remote_id = assistant.remote_id
        if seen_remote_id and assistant.sync_state != SyncState.GONE:
            try:
                # The remote copy lives on the Assistants API, whichever run API the connection
                # uses now (an admin may have switched it to Responses since): a server without
                # that API (404, or LiteLLM's "not supported" 500) counts it as gone.
                run_api.with_backend(
                    connection,
                    lambda backend: backend.delete_assistant(assistant),
                    api=ASSISTANTS,
                )
            except ProviderError as error:
                if error.kind != ErrorKind.NOT_FOUND and not says_not_offered(error):
                    shared.record_error(
                        connection, error, operation=ErrorOperation.ASSISTANT_DELETE, user=user
                    )
                    # Deleted meanwhile by someone else, whose delete reached the provider.
                    if not sync.mark(assistant, state=SyncState.FAILED, error=error, claim=claim):
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
                    action=AuditAction.ASSISTANT_DELETE,
                    target=assistant,
                    data={"connection": connection.name, "remote_id": seen_remote_id},
                )
                return _DELETED
        try:
            # A sync recorded a new remote copy meanwhile: that one goes too.
            assistant.refresh_from_db()
        except Assistant.DoesNotExist:
            return _DELETED
    sync.release(assistant, claim)
    return Outcome(value=assistant)
