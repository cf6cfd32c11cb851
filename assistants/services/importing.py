"""Importing the remote assistants of a connection that Tablero does not know yet."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AuditAction, Team, User
from accounts.services import audit_log
from assistants.backends import (
    TAG_KEY,
    is_remote_id,
    normalise_remote_tools,
    remote_tag,
)
from assistants.models import METADATA_MAX_PAIRS, SYNC_CLAIM_TTL, Assistant, SyncState
from assistants.services import run_api, shared, sync
from connections.models import Connection, ErrorOperation
from connections.outcome import Outcome
from provider.errors import ProviderError
from provider.runapi import ASSISTANTS


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
        remotes, backend = run_api.with_backend(
            connection, lambda backend: list(backend.list_remote_assistants())
        )
    except ProviderError as error:
        shared.record_error(connection, error, operation=ErrorOperation.ASSISTANT_IMPORT, user=user)
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
            action=AuditAction.ASSISTANT_IMPORT,
            target=connection,
            data={"added": added, "known": known, "skipped": skipped, "attached": len(attached)},
        )
    for pk in attached:
        # The copy holds the settings of the create that made it: send the record's own.
        found = Assistant.objects.filter(pk=pk).first()
        if found is not None:
            sync.bring_in_line(found, user=user, operation=ErrorOperation.ASSISTANT_IMPORT)
    return Outcome(value=ImportResult(api=ASSISTANTS, added=added, known=known, skipped=skipped))
