"""Writes of the gateway: tokens made, revoked and noted as expired, every one audited.

The rules live here, not in the forms, so no caller (page, admin, command, another app's
signal) can skip one:

- a token belongs to one team and one of its connections, has a name and at least one scope;
- a viewer's token holds the models scope only; members, admins and owners may hold any;
  organization endpoints are no scope at all (`gateway.scopes`), so no token reaches them;
- a personal token is made by its owner, who is a member of the team; a service token (no
  owner) is made by an admin or owner of the team;
- it lives at most MAX_LIFETIME (DEFAULT_LIFETIME unless asked otherwise);
- anyone revokes their own tokens, an admin or owner anyone's in the team;
- a member removed from the team loses every token there, one lowered to viewer the tokens
  that hold more than the models scope (`tokens_revoke_for_member`, on
  `lib.events.member_standing_changed`).

A token's value is returned once by `token_create` and never stored: only its prefix and the
HMAC of its secret are. Every save of a token makes every process forget what it remembers of
it once the transaction commits (`gateway.signals`, which the admin's writes go through too).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from accounts.models import AuditAction, Membership, Role, Team, User
from accounts.services import audit_log
from connections.models import Connection
from gateway import tokens
from gateway.models import ApiToken, TokenKind
from gateway.scopes import READ_ONLY_SCOPES, Scope
from lib import events

__all__ = [
    "DEFAULT_LIFETIME",
    "MAX_LIFETIME",
    "MAX_MODELS",
    "scopes_for_role",
    "token_create",
    "token_revoke",
    "tokens_expire",
    "tokens_revoke_for_member",
]

DEFAULT_LIFETIME = timedelta(days=90)
MAX_LIFETIME = timedelta(days=365)
# How many models a token may be limited to (a list longer than that is a mistake).
MAX_MODELS = 200
MODEL_ID_MAX = 200


class RevokeReason:
    """Why a token was revoked without anyone asking for it (kept in the audit event)."""

    MEMBER_REMOVED = "member_removed"
    MEMBER_DEMOTED = "member_demoted"


def scopes_for_role(role: Role | str) -> frozenset[Scope]:
    """The scopes a token of someone with `role` may hold."""
    return READ_ONLY_SCOPES if Role(role) == Role.VIEWER else frozenset(Scope)


def _role_in(team: Team | Any, user: User | None) -> Role | None:
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    role = Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()
    return Role(role) if role is not None else None


def _audit_data(token: ApiToken, **extra: object) -> dict[str, object]:
    return {
        "prefix": token.display_prefix,
        "name": token.name,
        "kind": token.kind,
        "owner": token.owner.email if token.owner_id else "",
        "connection": token.connection.name,
        "scopes": list(token.scopes),
        "models": list(token.allowed_models),
        "expires_at": token.expires_at.isoformat(),
        **extra,
    }


def _clean_scopes(scopes: Iterable[Scope | str], *, owner_role: Role | None) -> list[str]:
    try:
        chosen = {Scope(s) for s in scopes}
    except ValueError:
        raise ValidationError(_("Choose scopes from the list."), code="scope") from None
    if not chosen:
        raise ValidationError(_("Choose at least one scope."), code="scope")
    if owner_role is not None and not chosen <= scopes_for_role(owner_role):
        raise ValidationError(
            _("A viewer's token can only list and look up models."), code="scope_role"
        )
    return sorted(s.value for s in chosen)


def _clean_models(allowed_models: Iterable[str]) -> list[str]:
    models = sorted({str(m).strip() for m in allowed_models} - {""})
    if len(models) > MAX_MODELS or any(len(m) > MODEL_ID_MAX for m in models):
        raise ValidationError(_("Too many models, or a model name too long."), code="models")
    return models


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
    expires_at: datetime | None = None,
) -> tuple[ApiToken, str]:
    """Make a token; returns it and its full value, which is never stored nor shown again.

    `owner` None makes a service token (the team's). It expires after `lifetime`, or at
    `expires_at` when given. `created_by` None is Tablero itself (a
    command, the demo); otherwise the rules above are checked again here, whatever the caller
    checked: PermissionDenied for a role too low, ValidationError for a wrong value."""
    if connection.team_id != team.pk:
        raise ValidationError(_("Choose one of this team's connections."), code="connection")
    name = (name or "").strip()
    if not name:
        raise ValidationError(_("Give the token a name."), code="name")
    now = timezone.now()
    if expires_at is not None:  # a moment, rather than a lifetime
        lifetime = expires_at - now
    if lifetime <= timedelta(0) or lifetime > MAX_LIFETIME:
        raise ValidationError(_("A token lives at most a year."), code="lifetime")

    creator_role = _role_in(team, created_by)
    if created_by is not None and creator_role is None:
        raise PermissionDenied
    owner_role: Role | None = None
    if owner is None:  # a service token: the team's, made by an admin
        if created_by is not None and not creator_role.at_least(Role.ADMIN):
            raise PermissionDenied
    else:
        owner_role = _role_in(team, owner)
        if owner_role is None:
            raise ValidationError(_("The token's owner is not a member of the team."))
        if created_by is not None and created_by.pk != owner.pk:
            raise PermissionDenied  # a personal token is made by the person it belongs to

    new = tokens.generate()
    token = ApiToken(
        team=team,
        connection=connection,
        name=name,
        kind=TokenKind.PERSONAL if owner is not None else TokenKind.SERVICE,
        owner=owner,
        created_by=created_by,
        prefix=new.prefix,
        secret_digest=new.secret_digest,
        scopes=_clean_scopes(scopes, owner_role=owner_role),
        allowed_models=_clean_models(allowed_models),
        created_at=now,
        expires_at=now + lifetime,
    )
    token.full_clean()
    token.save(force_insert=True)
    audit_log(
        team=team,
        actor=created_by,
        action=AuditAction.TOKEN_CREATE,
        target=token,
        data=_audit_data(token),
    )
    return token, new.value


def can_revoke(token: ApiToken, *, user: User, role: Role | str | None) -> bool:
    """Whether `user`, with `role` in the token's team, may revoke it."""
    if role is None:
        return False
    return Role(role).at_least(Role.ADMIN) or (
        token.owner_id is not None and token.owner_id == user.pk
    )


@transaction.atomic
def token_revoke(
    *,
    token: ApiToken,
    actor: User | None,
    reason: str = "",
    via: str = "",
    site_admin: bool = False,
) -> ApiToken:
    """Revoke a token at once (idempotent: a revoked token stays as it was, and is audited
    once). `actor` None is Tablero itself; anyone else revokes their own token, or is an admin
    or owner of its team (PermissionDenied otherwise), or is the admin site's staff
    (`site_admin`: the admin checked its own permission)."""
    token = (
        ApiToken.objects.select_for_update(of=("self",))
        .select_related("connection", "team", "owner")
        .get(pk=token.pk)
    )
    checked = actor is not None and actor.is_authenticated and not site_admin
    if checked and not can_revoke(token, user=actor, role=_role_in(token.team, actor)):
        raise PermissionDenied
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.revoked_by = actor if actor is not None and actor.is_authenticated else None
    token.save(update_fields=["revoked_at", "revoked_by"])
    extra = {key: value for key, value in (("reason", reason), ("via", via)) if value}
    audit_log(
        team=token.team,
        actor=actor,
        action=AuditAction.TOKEN_REVOKE,
        target=token,
        data=_audit_data(token, **extra),
    )
    return token


@transaction.atomic
def tokens_revoke_for_member(
    *, team_id: Any, user_id: Any, role: Role | str | None, actor: User | None, via: str = ""
) -> list[ApiToken]:
    """A member's standing in a team changed: revoke the personal tokens they may no longer
    use there (all of them when `role` is None: they left; as a viewer, those holding more than
    the models scope). Runs inside the transaction of the change, each revocation audited."""
    live = (
        ApiToken.objects.select_for_update(of=("self",))
        .select_related("connection", "team", "owner")
        .filter(team_id=team_id, owner_id=user_id, kind=TokenKind.PERSONAL)
        .filter(revoked_at__isnull=True)
        .order_by("pk")
    )
    if role is None:
        doomed, reason = list(live), RevokeReason.MEMBER_REMOVED
    else:
        allowed = scopes_for_role(role)
        doomed = [token for token in live if not set(token.scopes) <= allowed]
        reason = RevokeReason.MEMBER_DEMOTED
    now = timezone.now()
    actor = actor if actor is not None and actor.is_authenticated else None
    for token in doomed:
        token.revoked_at = now
        token.revoked_by = actor
        token.save(update_fields=["revoked_at", "revoked_by"])
        extra = {"reason": reason, **({"via": via} if via else {})}
        audit_log(
            team=token.team,
            actor=actor,
            action=AuditAction.TOKEN_REVOKE,
            target=token,
            data=_audit_data(token, **extra),
        )
    return doomed


EXPIRE_BATCH = 200


def tokens_expire(*, now: datetime | None = None) -> int:
    """Note, once each, the tokens that expired (and were not revoked): an audit event per
    token (TOKEN_EXPIRE), and every process forgets it. Returns how many were noted. A batch at
    a time, each in its own transaction; two consumers at once note each token once (the rows
    are locked, and a noted one is skipped)."""
    now = now or timezone.now()
    noted = 0
    while True:
        with transaction.atomic():
            batch = list(
                ApiToken.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("connection", "team", "owner")
                .filter(revoked_at__isnull=True, expiry_noted_at__isnull=True)
                .filter(expires_at__lte=now)
                .order_by("expires_at", "pk")[:EXPIRE_BATCH]
            )
            for token in batch:
                token.expiry_noted_at = now
                token.save(update_fields=["expiry_noted_at"])
                audit_log(
                    team=token.team,
                    actor=None,
                    action=AuditAction.TOKEN_EXPIRE,
                    target=token,
                    data=_audit_data(token),
                )
        noted += len(batch)
        if len(batch) < EXPIRE_BATCH:
            return noted


def _on_member_standing_changed(
    sender: object,
    *,
    team_id: Any,
    user_id: Any,
    role: Role | None,
    actor: User | None,
    via: str = "",
    **kwargs: Any,
) -> None:
    tokens_revoke_for_member(team_id=team_id, user_id=user_id, role=role, actor=actor, via=via)


def connect() -> None:
    """Listen to the lower apps' events (called once, from GatewayConfig.ready)."""
    events.member_standing_changed.connect(
        _on_member_standing_changed, dispatch_uid="gateway-member-standing"
    )
