"""Writes of the gateway: tokens made and revoked, every one audited."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts.models import AuditAction, Team, User
from accounts.services import audit_log
from connections.models import Connection
from gateway import grants, tokens
from gateway.models import ApiToken, TokenKind
from gateway.scopes import Scope

__all__ = ["DEFAULT_LIFETIME", "MAX_LIFETIME", "token_create", "token_revoke"]

DEFAULT_LIFETIME = timedelta(days=90)
MAX_LIFETIME = timedelta(days=365)


def _audit_data(token: ApiToken) -> dict[str, object]:
    return {
        "prefix": token.display_prefix,
        "kind": token.kind,
        "connection": token.connection.name,
        "scopes": list(token.scopes),
        "models": list(token.allowed_models),
        "expires_at": token.expires_at.isoformat(),
    }


@sensitive_variables("new")
@transaction.atomic
def token_create(
    *,
    team: Team,
    connection: Connection,
    name: str,
    created_by: User | None,
    owner: User | None,
    scopes: Iterable[Scope | str],
    allowed_models: Iterable[str] = (),
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> tuple[ApiToken, str]:
    """Make a token; returns it and its full value, which is never stored nor shown again.
    `owner` None makes a service token (the team's). The caller has checked the roles."""
    if connection.team_id != team.pk:
        raise ValueError("The connection belongs to another team.")
    lifetime = min(lifetime, MAX_LIFETIME)
    new = tokens.generate()
    token = ApiToken.objects.create(
        team=team,
        connection=connection,
        name=name,
        kind=TokenKind.PERSONAL if owner is not None else TokenKind.SERVICE,
        owner=owner,
        created_by=created_by,
        prefix=new.prefix,
        secret_digest=new.secret_digest,
        scopes=sorted({Scope(s).value for s in scopes}),
        allowed_models=sorted(set(allowed_models)),
        expires_at=timezone.now() + lifetime,
    )
    audit_log(
        team=team,
        actor=created_by,
        action=AuditAction.TOKEN_CREATE,
        target=token,
        data=_audit_data(token),
    )
    return token, new.value


@transaction.atomic
def token_revoke(*, token: ApiToken, actor: User | None) -> ApiToken:
    """Revoke a token at once (idempotent: a revoked token stays as it was)."""
    token = ApiToken.objects.select_for_update().select_related("connection").get(pk=token.pk)
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.revoked_by = actor if actor is not None and actor.is_authenticated else None
    token.save(update_fields=["revoked_at", "revoked_by"])
    transaction.on_commit(lambda: grants.forget(token.prefix))
    audit_log(
        team=token.team,
        actor=actor,
        action=AuditAction.TOKEN_REVOKE,
        target=token,
        data=_audit_data(token),
    )
    return token
