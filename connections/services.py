"""Writes for connections (HackSoft style: keyword-only, typed).

Provider calls happen outside any transaction: each service first talks to the provider, then
opens a short transaction for its writes. Keys flow through functions marked
`sensitive_variables()`, so an error report never shows them.

Every service here that calls the provider returns an `Outcome` (connections/outcome.py): what
it saved or fetched, and the provider's error, already stored on the connection (health,
`last_error`, error history) when it returns. Pages call these on purpose (a POST); background
work may call `models_refresh` and `connection_test` the same way. Pages that only look use the
selectors, which never write.
"""

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from accounts.models import AuditAction, Team, User
from accounts.services import audit_log
from connections import crypto
from connections.explanations import explain
from connections.guard import url_guard
from connections.models import (
    NAME_CONSTRAINT,
    Connection,
    ConnectionErrorEvent,
    ErrorOperation,
    Health,
    RunApi,
    RunApiReason,
    health_for,
)
from connections.outcome import Outcome
from lib import events
from provider.client import ProviderClient
from provider.errors import ErrorKind, ProviderError
from provider.runapi import ASSISTANTS, RESPONSES, RunApiDetection, detect_run_api
from provider.secrets import safe_identifier, safe_request_id
from provider.urlguard import URLRefused


@sensitive_variables()
def client_for(
    connection: Connection, *, admin: bool = False, deadline: float | None = None
) -> ProviderClient:
    """The one place that builds a provider client from a connection.

    Each call it makes is over within `deadline` seconds, retries included; by default the
    TABLERO_PROVIDER_DEADLINE setting, which keeps a page from waiting long on the provider.
    The client masks the connection's other key too (the admin key, or the API key when it
    calls with the admin key) in whatever the provider sends back.
    Raises crypto.DecryptionError when the stored key does not decrypt.
    """
    if deadline is None:
        deadline = settings.TABLERO_PROVIDER_DEADLINE
    endpoint = connection.endpoint(admin=admin)
    try:
        other = connection.api_key() if admin else connection.admin_key()
    except crypto.DecryptionError:
        other = ""  # not sent, so not echoed either
    return ProviderClient(
        replace(endpoint, other_secrets=(other,) if other else ()),
        guard=url_guard(),
        deadline=deadline,
    )


def unreadable_key_error() -> ProviderError:
    return ProviderError(ErrorKind.KEY_UNREADABLE)


# --- probing the provider ----------------------------------------------------------------------


@dataclass
class Probe:
    """What one GET /models told us about a connection, and with which key and URL."""

    checked_at: datetime
    models: list[dict[str, Any]] | None = None
    error: ProviderError | None = None
    rate_limit: dict[str, Any] | None = None
    # The stored (encrypted) key and the base URL as they were read for the call: the outcome
    # belongs to them, not to whatever the connection holds when the answer arrives.
    api_key_encrypted: str = ""
    base_url: str = ""


class ConnectionChanged(Exception):
    """The connection's key or base URL was replaced, or the connection removed, while the
    provider was being asked: the answer was about a key it no longer has, and nothing was
    stored. The connection passed in has been reloaded (unless `removed`)."""

    def __init__(self, *, removed: bool) -> None:
        super().__init__("removed" if removed else "key replaced")
        self.removed = removed


def _sorted_models(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(models, key=lambda model: str(model.get("id", "")))


@sensitive_variables()
def _probe(connection: Connection) -> Probe:
    """List the models with the connection's key. Never raises for provider failures."""
    used = {"api_key_encrypted": connection.api_key_encrypted, "base_url": connection.base_url}
    checked_at = timezone.now()
    try:
        client = client_for(connection)
    except crypto.DecryptionError:
        return Probe(checked_at=checked_at, error=unreadable_key_error(), **used)
    try:
        models = client.list_models()
    except ProviderError as error:
        return Probe(checked_at=checked_at, error=error, rate_limit=_rate_limit(client), **used)
    return Probe(
        checked_at=checked_at,
        models=_sorted_models(models),
        rate_limit=_rate_limit(client),
        **used,
    )


def _rate_limit(client: ProviderClient) -> dict[str, Any] | None:
    rate_limit = client.last_rate_limit
    if rate_limit is None:
        return None
    return {**rate_limit.as_dict(), "captured_at": timezone.now().isoformat()}


def error_summary(error: ProviderError) -> str:
    """The short, key-free text kept in `last_error`: catalogue title and provider code."""
    with translation.override("en"):
        title = str(explain(error.kind).title)
    code = safe_identifier(error.code)
    return f"{title} ({code})"[:200] if code else title[:200]


def _probe_values(probe: Probe) -> dict[str, Any]:
    """The connection fields a probe's outcome sets, with their new values."""
    values: dict[str, Any] = {"last_checked_at": probe.checked_at}
    if probe.error is None:
        values.update(health=Health.OK, last_error="", last_error_kind="")
    else:
        values.update(
            health=health_for(probe.error.kind),
            last_error=error_summary(probe.error),
            last_error_kind=probe.error.kind.value,
        )
    if probe.rate_limit is not None:
        values["rate_limit"] = probe.rate_limit
    if probe.error is not None and probe.error.retry_after:
        # The wait the provider asked for, so a page shown later still says it.
        values["rate_limit"] = {
            **(probe.rate_limit or {}),
            "retry_after": round(float(probe.error.retry_after)),
        }
    if probe.models is not None:
        values.update(models_cache=probe.models, models_cached_at=probe.checked_at)
    return values


def _apply_probe(connection: Connection, probe: Probe) -> None:
    """Copy a probe's outcome onto the connection (not saved)."""
    for field, value in _probe_values(probe).items():
        setattr(connection, field, value)


def error_event_record(
    *, connection: Connection, error: ProviderError, operation: ErrorOperation, user: User | None
) -> ConnectionErrorEvent:
    event = ConnectionErrorEvent(
        connection=connection,
        kind=error.kind.value,
        # The client kept only codes and ids of a plain shape, without any key: checked again
        # here for errors built elsewhere.
        code=safe_identifier(error.code) or "",
        status=error.status if error.status and 0 < error.status < 1000 else None,
        request_id=safe_request_id(error.request_id) or "",
        message=(error.message or "")[:2000],
        operation=operation,
        user=user if user is not None and user.is_authenticated else None,
    )
    event.full_clean()
    event.save()
    return event


def _store_probe(
    connection: Connection,
    probe: Probe,
    *,
    operation: ErrorOperation,
    user: User | None,
    record_error: bool = True,
) -> None:
    """Save a probe's outcome without touching `updated_at` (which keys the models cache).

    Only while the connection still has the key and base URL the probe used: a key replaced
    during the call has its own check, and the old key's health, error or models must not
    land on it. Otherwise nothing is stored, `connection` is reloaded and ConnectionChanged
    raised.
    """
    values = _probe_values(probe)
    with transaction.atomic():
        updated = Connection.objects.filter(
            pk=connection.pk, api_key_encrypted=probe.api_key_encrypted, base_url=probe.base_url
        ).update(**values)
        if updated and probe.error is not None and record_error:
            error_event_record(
                connection=connection, error=probe.error, operation=operation, user=user
            )
    if not updated:
        try:
            connection.refresh_from_db()
        except Connection.DoesNotExist:
            raise ConnectionChanged(removed=True) from None
        raise ConnectionChanged(removed=False)
    for field, value in values.items():
        setattr(connection, field, value)
    events.connection_health_stored.send(
        Connection, connection_id=connection.pk, team_id=connection.team_id, health=values["health"]
    )


def _save(connection: Connection, *, update_fields: list[str] | None = None) -> None:
    """full_clean, then save (only `update_fields`, when given, so a change another request
    made to the rest of the row meanwhile, such as a new key, is never written back).

    Whether the name is free (ignoring case) is the database's to say, at the moment of
    saving: a name taken meanwhile by another request, in any case, becomes a ValidationError
    on `name` (on SQLite and PostgreSQL alike)."""
    connection.full_clean(validate_constraints=False)
    connection.validate_constraints(exclude={"name"})
    try:
        with transaction.atomic():
            if update_fields is None:
                connection.save()
            else:
                connection.save(update_fields=[*update_fields, "updated_at"])
    except IntegrityError as error:
        # SQLite names the index ("UNIQUE constraint failed: index '…'"), PostgreSQL the
        # constraint ("duplicate key value violates unique constraint "…""). Any other
        # integrity error is a bug, not the user's input.
        if NAME_CONSTRAINT not in str(error):
            raise
        raise ValidationError(
            {"name": _("This team already has a connection with this name.")}
        ) from None


def _audit_data(connection: Connection, **extra: Any) -> dict[str, Any]:
    return {
        "name": connection.name,
        "provider": connection.provider,
        "api_key_last4": connection.api_key_last4,
        **extra,
    }


# --- services ----------------------------------------------------------------------------------


@sensitive_variables()
def connection_create(
    *,
    team: Team,
    user: User,
    name: str,
    provider: str,
    base_url: str,
    organization_id: str = "",
    project_id: str = "",
    api_version: str = "",
    api_key: str,
    save_anyway: bool = False,
) -> Outcome[Connection]:
    """Check the key by listing the models, then save the connection.

    On a failed check nothing is saved unless `save_anyway`; then the connection is saved with
    the health the failure implies. A refused base URL is never saved. The outcome's value is
    the connection when it was saved.
    """
    try:
        base_url = url_guard().validate_base_url(base_url)
    except URLRefused as error:
        return Outcome(error=error)
    connection = Connection(
        team=team,
        name=name.strip(),
        provider=provider,
        base_url=base_url,
        organization_id=organization_id.strip(),
        project_id=project_id.strip(),
        api_version=api_version.strip(),
        created_by=user,
    )
    connection.set_api_key(api_key)
    connection.full_clean()

    probe = _probe(connection)
    if probe.error is not None and not save_anyway:
        return Outcome(error=probe.error)

    _apply_probe(connection, probe)
    with transaction.atomic():
        _save(connection)
        if probe.error is not None:
            error_event_record(
                connection=connection,
                error=probe.error,
                operation=ErrorOperation.CONNECTION_CREATE,
                user=user,
            )
        audit_log(
            team=team,
            actor=user,
            action=AuditAction.CONNECTION_CREATE,
            target=connection,
            data=_audit_data(connection, health=connection.health),
        )
    if probe.error is None:
        _detect_run_api(connection)
    return Outcome(value=connection, error=probe.error)


def _detect_run_api(connection: Connection) -> None:
    """Find out which run API the server offers (Assistants or Responses) and note it, and
    why, on the connection: after a check whose key worked, so that a new assistant runs on an
    API the server has."""
    connection_detect_run_api(connection=connection)


def connection_detect_run_api(*, connection: Connection) -> RunApiDetection | None:
    """Ask which run API the connection's server offers (`provider.runapi`) and note the
    answer, and why, on the connection. None when the key does not decrypt (nothing is
    asked)."""
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


def connection_test(*, connection: Connection, user: User | None) -> Outcome[Connection]:
    """List the models with the stored key and record the outcome (health, rate limits,
    models, error history). A key that does not decrypt makes no call.

    A person's test is always audited; a background check (no user) only when it changed the
    connection's health, so a check every few minutes does not bury the audit log.

    Raises ConnectionChanged, having stored nothing, when the key was replaced (or the
    connection removed) during the call.
    """
    health_before = connection.health
    probe = _probe(connection)
    _store_probe(connection, probe, operation=ErrorOperation.CONNECTION_TEST, user=user)
    if probe.error is None:
        _detect_run_api(connection)
    if user is not None or connection.health != health_before:
        audit_log(
            team=connection.team,
            actor=user,
            action=AuditAction.CONNECTION_TEST,
            target=connection,
            data=_audit_data(connection, health=connection.health),
        )
    return Outcome(value=connection, error=probe.error)


def models_refresh(
    *, connection: Connection, user: User | None, record_error: bool = True
) -> Outcome[list[dict[str, Any]]]:
    """Fetch the model list again (one provider call) and store it on the connection, with
    its health and rate limits; a failure keeps the list fetched before and goes into the
    error history (unless `record_error` is False: a fetch queued by opening a page). The
    outcome's value is the new list (None on failure).

    Raises ConnectionChanged, having stored nothing, when the key was replaced (or the
    connection removed) during the call; the reloaded connection then has the new key's list.
    """
    probe = _probe(connection)
    _store_probe(
        connection,
        probe,
        operation=ErrorOperation.MODELS_LIST,
        user=user,
        record_error=record_error,
    )
    return Outcome(value=probe.models, error=probe.error)


@sensitive_variables()
def connection_replace_key(
    *,
    connection: Connection,
    user: User,
    api_key: str,
    base_url: str | None = None,
    save_anyway: bool = False,
) -> Outcome[Connection]:
    """Replace the key (and, with it, optionally the base URL) after checking the new pair.

    A new base URL is only ever accepted together with a key, and removes the stored admin
    key (it would otherwise be sent to the new server). On a failed check nothing changes
    unless `save_anyway`; a refused URL never. The outcome's value is the connection when it
    was saved.
    """
    if not api_key:
        raise ValueError("A new key is required.")
    new_url = connection.base_url
    if base_url:
        try:
            new_url = url_guard().validate_base_url(base_url)
        except URLRefused as error:
            return Outcome(error=error)
    url_changed = new_url != connection.base_url

    candidate = Connection(
        pk=connection.pk,
        team=connection.team,
        name=connection.name,
        provider=connection.provider,
        base_url=new_url,
        organization_id=connection.organization_id,
        project_id=connection.project_id,
        api_version=connection.api_version,
    )
    candidate.set_api_key(api_key)
    probe = _probe(candidate)
    if probe.error is not None and not save_anyway:
        return Outcome(error=probe.error)

    admin_key_removed = url_changed and connection.has_admin_key
    with transaction.atomic():
        connection.base_url = new_url
        connection.set_api_key(api_key)
        forget_key_state(connection, url_changed=url_changed)
        if url_changed:
            # The admin key was entered for the old server: it must not follow the URL to a
            # new one nobody entered it for (the same rule as for the API key).
            connection.set_admin_key("")
        _apply_probe(connection, probe)
        _save(connection)
        if probe.error is not None:
            error_event_record(
                connection=connection,
                error=probe.error,
                operation=ErrorOperation.CONNECTION_REPLACE_KEY,
                user=user,
            )
        audit_log(
            team=connection.team,
            actor=user,
            action=AuditAction.CONNECTION_REPLACE_KEY,
            target=connection,
            data=_audit_data(
                connection,
                base_url_changed=url_changed,
                costs_access_removed=admin_key_removed,
                health=connection.health,
            ),
        )
    if probe.error is None and url_changed:  # a new server: its run API is not known yet
        _detect_run_api(connection)
    return Outcome(value=connection, error=probe.error)


def forget_key_state(connection: Connection, *, url_changed: bool) -> None:
    """Forget (not saved) what Tablero knew about the key being replaced: its health, error,
    rate limits and model list, and, with a new base URL, the server's run API. Every path
    that replaces a key (this module, the admin site) calls it."""
    connection.health = Health.UNCHECKED
    connection.last_error = connection.last_error_kind = ""
    connection.last_checked_at = None
    connection.rate_limit = {}
    connection.models_cache = []
    connection.models_cached_at = None
    if url_changed:
        connection.detected_run_api = RunApi.UNKNOWN
        connection.run_api_reason = RunApiReason.NONE
        connection.run_api_status = connection.run_api_checked_at = None


# What the provider lists depends on these: a change asks for the model list again.
LISTING_FIELDS = frozenset({"organization_id", "project_id", "api_version"})


def connection_update(
    *,
    connection: Connection,
    user: User,
    name: str,
    organization_id: str,
    project_id: str,
    api_version: str,
    run_api: str,
) -> Outcome[Connection]:
    """Change the settings that need no new key. The base URL changes only with a key.

    A new organization, project or API version may change which models the key sees: the
    list is fetched again (`models_refresh`, after the save); the outcome's error is that
    fetch's. Raises ValidationError when the name is taken.
    """
    values = {
        "name": name.strip(),
        "organization_id": organization_id.strip(),
        "project_id": project_id.strip(),
        "api_version": api_version.strip(),
        "run_api": run_api,
    }
    changed = sorted(
        field for field, value in values.items() if getattr(connection, field) != value
    )
    with transaction.atomic():
        for field, value in values.items():
            setattr(connection, field, value)
        _save(connection, update_fields=list(values))
        audit_log(
            team=connection.team,
            actor=user,
            action=AuditAction.CONNECTION_UPDATE,
            target=connection,
            data=_audit_data(connection, changed=changed),
        )
    if not LISTING_FIELDS.intersection(changed):
        return Outcome(value=connection)
    try:
        refreshed = models_refresh(connection=connection, user=user)
    except ConnectionChanged:  # a new key meanwhile: its own check keeps its list
        return Outcome(value=connection)
    return Outcome(value=connection, error=refreshed.error)


@transaction.atomic
def connection_delete(*, connection: Connection, user: User | None) -> None:
    """Remove the connection; its encrypted keys go with the row."""
    audit_log(
        team=connection.team,
        actor=user,
        action=AuditAction.CONNECTION_DELETE,
        target=connection,
        data=_audit_data(connection),
    )
    connection.delete()


@sensitive_variables()
@transaction.atomic
def connection_set_admin_key(*, connection: Connection, user: User, admin_key: str) -> None:
    """Store (or, with "", remove) the admin key used to read costs."""
    connection.set_admin_key(admin_key)
    connection.full_clean(validate_constraints=False)
    # Only the admin key's fields: a key replaced by another request meanwhile stays replaced.
    connection.save(
        update_fields=[
            "admin_key_encrypted",
            "admin_key_prefix",
            "admin_key_last4",
            "month_spend",
            "updated_at",
        ]
    )
    audit_log(
        team=connection.team,
        actor=user,
        action=AuditAction.CONNECTION_SET_ADMIN_KEY
        if admin_key
        else AuditAction.CONNECTION_REMOVE_ADMIN_KEY,
        target=connection,
        data={"name": connection.name, "admin_key_last4": connection.admin_key_last4},
    )
