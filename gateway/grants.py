"""What a presented token grants: found by its prefix, checked by its secret's HMAC.

`resolve` is the one door the gateway's pass-through uses. This first version reads the
database on every call; the gateway's cache (with shared invalidation) wraps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from accounts.models import Membership, Role
from connections.crypto import DecryptionError
from gateway import tokens
from gateway.models import ApiToken, TokenKind
from gateway.scopes import READ_ONLY_SCOPES, Scope
from provider.endpoint import Endpoint

__all__ = ["Grant", "forget", "forget_team", "resolve"]


@dataclass(frozen=True)
class Grant:
    token_id: UUID
    prefix: str
    team_id: UUID
    connection_id: UUID
    user_id: UUID | None  # None for a service token
    scopes: frozenset[Scope]
    allowed_models: frozenset[str]  # empty: any model
    expires_at: datetime
    endpoint: Endpoint

    def allows_model(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models


def _role_scopes(token: ApiToken) -> frozenset[Scope] | None:
    """The scopes the token's owner may still use through it (None: none at all)."""
    if token.kind == TokenKind.SERVICE:
        return frozenset(Scope)
    membership = (
        Membership.objects.filter(team_id=token.team_id, user_id=token.owner_id)
        .only("role")
        .first()
    )
    if membership is None:
        return None
    if membership.role == Role.VIEWER:
        return READ_ONLY_SCOPES
    return frozenset(Scope)


def resolve(value: str, *, now: datetime | None = None) -> Grant | None:
    """The grant of a presented token, or None when it is malformed, unknown, wrong, revoked,
    expired, or its owner left the team. Same answer, and no hint, for every refusal."""
    parts = tokens.split(value)
    if parts is None:
        return None
    prefix, secret = parts
    token = (
        ApiToken.objects.usable(now=now).select_related("connection").filter(prefix=prefix).first()
    )
    if token is None or not tokens.matches(secret, token.secret_digest):
        return None
    allowed = _role_scopes(token)
    if allowed is None:
        return None
    scopes = token.scope_set & allowed
    if not scopes:
        return None
    try:
        endpoint = token.connection.endpoint()
    except DecryptionError:
        return None
    return Grant(
        token_id=token.pk,
        prefix=token.prefix,
        team_id=token.team_id,
        connection_id=token.connection_id,
        user_id=token.owner_id,
        scopes=scopes,
        allowed_models=frozenset(token.allowed_models),
        expires_at=token.expires_at,
        endpoint=endpoint,
    )


def forget(prefix: str) -> None:
    """Drop what any process remembers of the token `prefix` (revoked, expired, changed).
    Called by the services after their transaction commits."""


def forget_team(team_id: UUID) -> None:
    """Drop what any process remembers of the team's tokens (a member left or changed role,
    a connection was removed or its key replaced)."""
