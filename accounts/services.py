"""Writes for accounts and teams (HackSoft style: keyword-only, typed, atomic).

Business rules raise `ValidationError` (a message for the page) or `PermissionDenied` (a 403):
the views check roles first, and these functions check again so no caller can skip a rule.
"""

import re
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import (
    ROLE_RANK,
    AuditAction,
    AuditEvent,
    Invitation,
    Membership,
    Role,
    Team,
    User,
)
from lib import events

# Keys that must never be stored in an audit event's details, whatever their value, at any depth
# ("api_key", "Authorization", "clientSecret"...; "api_key_last4" is what may be shown).
_SECRET_WORDS = ("key", "secret", "password", "token", "authorization")
# A provider key pasted into any text ("sk-", "sk-proj-", "sk-admin-", "sk-svcacct-" and 20 or
# more key characters), but not the end of a word such as "task-…" or "desk-…".
_PROVIDER_KEY = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{20,}")


def _is_secret_name(name: object) -> bool:
    name = str(name).lower()
    return any(word in name for word in _SECRET_WORDS) and not name.endswith("_last4")


def _mask_keys(text: str) -> str:
    return _PROVIDER_KEY.sub(lambda match: f"sk-…{match.group()[-4:]}", text)


def audit_data_scrub(value: Any) -> Any:
    """`value` without secret-looking keys in any nested dict, and with every provider key in
    a string masked (`sk-…abcd`). Used when an event is written and again when it is shown."""
    if isinstance(value, dict):
        return {
            _mask_keys(k) if isinstance(k, str) else k: audit_data_scrub(v)
            for k, v in value.items()
            if not _is_secret_name(k)
        }
    if isinstance(value, list | tuple):
        return [audit_data_scrub(item) for item in value]
    if isinstance(value, str):
        return _mask_keys(value)
    return value


def audit_log(
    *,
    team: Team | None,
    actor: User | None,
    action: AuditAction,
    target: Model | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to the team's audit log. Secret-looking keys in `data` are dropped and
    provider keys in its values masked, however deeply nested (`audit_data_scrub`)."""
    actor = actor if actor is not None and actor.is_authenticated else None
    event = AuditEvent(
        team=team,
        actor=actor,
        actor_email=actor.email if actor else "",
        action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:200] if target is not None else "",
        data=audit_data_scrub(data or {}),
    )
    event.full_clean()
    event.save()
    return event


# --- Role policy -----------------------------------------------------------------------------


def assignable_roles(actor_role: Role) -> list[Role]:
    """Roles someone with `actor_role` may give (by invitation or role change)."""
    if Role(actor_role) == Role.OWNER:
        return [Role.OWNER, Role.ADMIN, Role.MEMBER, Role.VIEWER]
    if Role(actor_role) == Role.ADMIN:
        return [Role.ADMIN, Role.MEMBER, Role.VIEWER]
    return []


def can_manage(actor_role: Role, target_role: Role) -> bool:
    """Whether `actor_role` may change or remove someone (or an invitation) at `target_role`."""
    actor_role, target_role = Role(actor_role), Role(target_role)
    if actor_role == Role.OWNER:
        return True
    return actor_role == Role.ADMIN and ROLE_RANK[target_role] < ROLE_RANK[Role.OWNER]


def invitation_inviter_can_grant(invitation: Invitation) -> bool:
    """Whether the person who sent `invitation` is still a member of its team whose role may
    give the invitation's role. An invitation is worth no more than its sender's say."""
    if invitation.invited_by_id is None:  # their account was deleted
        return False
    role = (
        Membership.objects.filter(team_id=invitation.team_id, user_id=invitation.invited_by_id)
        .values_list("role", flat=True)
        .first()
    )
    return role is not None and Role(invitation.role) in assignable_roles(Role(role))


INVITER_CANNOT_GRANT_MESSAGE = _("The person who invited you can no longer grant this role.")
# The code of the ValidationError raised with that message, for the views to tell it apart.
INVITER_CANNOT_GRANT = "inviter_cannot_grant"


def team_keeps_an_owner(
    *, team_id: UUID, losing: Iterable[UUID], gaining: Iterable[UUID] = ()
) -> bool:
    """Whether the team still has an owner after the memberships in `losing` stop being its
    owners (demoted, moved, deleted) and those in `gaining` become owners. A team that has no
    owner already is not refused. Locks the team's owners, like `_locked_owner_count`."""
    owners = set(
        Membership.objects.select_for_update()
        .filter(team_id=team_id, role=Role.OWNER)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return not owners or bool((owners - set(losing)) | set(gaining))


def _locked_owner_count(team_id: UUID) -> int:
    """Lock the team's owners and count them, so that two owners demoting or removing each other
    cannot leave the team ownerless. Called before any other membership row is locked, always
    in the same order: concurrent changes then wait for each other instead of deadlocking."""
    owners = Membership.objects.select_for_update().filter(team_id=team_id, role=Role.OWNER)
    return len(owners.order_by("pk").values("pk"))


def _locked_membership(membership: Membership) -> Membership:
    """The membership's row, locked and read afresh (after `_locked_owner_count`)."""
    locked = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("user", "team")
        .filter(pk=membership.pk)
        .first()
    )
    if locked is None:
        # Removed by someone else a moment ago (or a second click on "Remove").
        raise ValidationError(_("This person is no longer a member of the team."))
    return locked


LAST_OWNER = _("A team needs at least one owner. Make someone else owner first.")


# --- Users and first run ---------------------------------------------------------------------


def user_create(
    *,
    email: str,
    password: str,
    name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
) -> User:
    user = User(
        email=email.strip().lower(), name=name.strip(), is_staff=is_staff, is_superuser=is_superuser
    )
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


class SetupAlreadyDone(Exception):
    """Someone created the first account already."""


@transaction.atomic
def setup_first_owner(*, email: str, name: str, password: str, team_name: str) -> tuple[User, Team]:
    """Create the first user (a superuser, so they can use the admin site) and their team."""
    if connection.vendor == "postgresql":
        # Two first visits at once must not both create an owner: serialise them on the user
        # table. (On SQLite each transaction takes the database's write lock as it begins:
        # settings.DATABASES' transaction_mode.)
        table = connection.ops.quote_name(User._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
    if User.objects.exists():
        raise SetupAlreadyDone
    owner = user_create(email=email, password=password, name=name, is_staff=True, is_superuser=True)
    return owner, team_create(name=team_name, owner=owner)


# --- Teams -----------------------------------------------------------------------------------


@transaction.atomic
def team_create(*, name: str, owner: User) -> Team:
    team = Team(name=name.strip())
    team.full_clean()
    team.save()
    membership = Membership(team=team, user=owner, role=Role.OWNER)
    membership.full_clean()
    membership.save()
    audit_log(team=team, actor=owner, action=AuditAction.TEAM_CREATE, target=team)
    return team


@transaction.atomic
def team_rename(*, team: Team, name: str, actor: User | None) -> Team:
    old = team.name
    team.name = name.strip()
    team.full_clean()
    if team.name != old:
        team.save(update_fields=["name"])
        audit_log(
            team=team,
            actor=actor,
            action=AuditAction.TEAM_RENAME,
            target=team,
            data={"from": old, "to": team.name},
        )
    return team


@transaction.atomic
def team_delete(*, team: Team, actor: User | None) -> None:
    # The team's own events go with it; this one is kept, outside any team.
    audit_log(
        team=None,
        actor=actor,
        action=AuditAction.TEAM_DELETE,
        target=team,
        data={"name": team.name},
    )
    team.delete()


# --- Invitations -----------------------------------------------------------------------------


@transaction.atomic
def invitation_create(
    *, team: Team, email: str, role: Role, invited_by: User, actor_role: Role
) -> Invitation:
    """Invite `email` to the team; a pending invitation for the same address is replaced."""
    if Role(role) not in assignable_roles(actor_role):
        raise PermissionDenied
    email = email.strip().lower()
    if Membership.objects.filter(team=team, user__email__iexact=email).exists():
        raise ValidationError(
            _("%(email)s is already a member of this team."), params={"email": email}
        )
    now = timezone.now()
    pending = (
        Invitation.objects.select_for_update()
        .pending(now=now)
        .filter(team=team, email__iexact=email)
    )
    # Replacing an invitation revokes it: only someone who may revoke it may replace it.
    if any(not can_manage(actor_role, Role(old)) for old in pending.values_list("role", flat=True)):
        raise ValidationError(
            _("An owner invited %(email)s already; only an owner can replace that invitation."),
            params={"email": email},
        )
    pending.update(revoked_at=now)
    invitation = Invitation(
        team=team,
        email=email,
        role=role,
        invited_by=invited_by,
        created_at=now,
        expires_at=now + settings.INVITATION_MAX_AGE,
    )
    invitation.full_clean()
    invitation.save()
    audit_log(
        team=team,
        actor=invited_by,
        action=AuditAction.MEMBER_INVITE,
        target=invitation,
        data={"email": email, "role": str(role)},
    )
    return invitation


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User, actor_role: Role) -> None:
    if not can_manage(actor_role, invitation.role):
        raise PermissionDenied
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if not invitation.is_pending:
        raise ValidationError(_("This invitation is no longer pending."))
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_log(
        team=invitation.team,
        actor=actor,
        action=AuditAction.INVITATION_REVOKE,
        target=invitation,
        data={"email": invitation.email, "role": invitation.role},
    )


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Join the invitation's team with its role, once, as the invited address."""
    invitation = (
        Invitation.objects.select_for_update().select_related("team").filter(pk=invitation.pk)
    ).first()
    if invitation is None or not invitation.is_pending:
        raise ValidationError(_("This invitation is no longer valid."))
    if invitation.email.lower() != user.email.lower():
        raise PermissionDenied
    if not invitation_inviter_can_grant(invitation):
        raise ValidationError(INVITER_CANNOT_GRANT_MESSAGE, code=INVITER_CANNOT_GRANT)
    if Membership.objects.filter(team=invitation.team, user=user).exists():
        raise ValidationError(_("You are already a member of this team."))
    membership = Membership(team=invitation.team, user=user, role=invitation.role)
    membership.full_clean()
    membership.save()
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_log(
        team=invitation.team,
        actor=user,
        action=AuditAction.INVITATION_ACCEPT,
        target=invitation,
        data={"email": user.email, "role": invitation.role},
    )
    return membership


@transaction.atomic
def invitation_sign_up(*, invitation: Invitation, name: str, password: str) -> User:
    """Create the invited person's account and accept the invitation with it."""
    # Lock the invitation before creating the account: a second submission of the form waits
    # here and then finds the invitation used, instead of failing on the unique email.
    locked = Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
    if locked is None or not locked.is_pending:
        raise ValidationError(_("This invitation is no longer valid."))
    if not invitation_inviter_can_grant(locked):
        raise ValidationError(INVITER_CANNOT_GRANT_MESSAGE, code=INVITER_CANNOT_GRANT)
    user = user_create(email=invitation.email, password=password, name=name)
    invitation_accept(invitation=invitation, user=user)
    return user


def invitation_revoke_ungrantable(
    *,
    team: Team,
    inviter: User,
    role: Role | None,
    actor: User | None,
    reason: str,
    via: str = "",
) -> list[Invitation]:
    """Revoke the pending invitations `inviter` sent to the team that someone with `role` may
    not give (all of them when `role` is None: no longer a member). Called when a member is
    demoted or removed, in the same transaction, after their membership row was locked; it
    tells the apps above too (`lib.events.member_standing_changed`)."""
    events.member_standing_changed.send(
        sender=Membership,
        team_id=team.pk,
        user_id=inviter.pk,
        role=Role(role) if role is not None else None,
        actor=actor,
        via=via,
    )
    grantable = assignable_roles(Role(role)) if role is not None else []
    now = timezone.now()
    invitations = list(
        Invitation.objects.select_for_update()
        .pending(now=now)
        .filter(team=team, invited_by=inviter)
        .exclude(role__in=grantable)
        .order_by("pk")
    )
    for invitation in invitations:
        invitation.revoked_at = now
        invitation.save(update_fields=["revoked_at"])
        audit_log(
            team=team,
            actor=actor,
            action=AuditAction.INVITATION_REVOKE,
            target=invitation,
            data={
                "email": invitation.email,
                "role": invitation.role,
                "reason": reason,
                **({"via": via} if via else {}),
            },
        )
    return invitations


# --- Members ---------------------------------------------------------------------------------


@transaction.atomic
def member_role_change(
    *, membership: Membership, role: Role, actor: User, actor_role: Role
) -> Membership:
    role = Role(role)
    owners = _locked_owner_count(membership.team_id)
    membership = _locked_membership(membership)
    old = membership.role_enum
    if not can_manage(actor_role, old) or role not in assignable_roles(actor_role):
        raise PermissionDenied
    if old == role:
        return membership
    if old == Role.OWNER and owners <= 1:
        raise ValidationError(LAST_OWNER)
    membership.role = role
    membership.full_clean()
    membership.save(update_fields=["role"])
    audit_log(
        team=membership.team,
        actor=actor,
        action=AuditAction.MEMBER_ROLE_CHANGE,
        target=membership,
        data={"email": membership.user.email, "from": str(old), "to": str(role)},
    )
    invitation_revoke_ungrantable(
        team=membership.team,
        inviter=membership.user,
        role=role,
        actor=actor,
        reason="inviter_demoted",
    )
    return membership


@transaction.atomic
def member_remove(*, membership: Membership, actor: User, actor_role: Role) -> None:
    """Remove someone from the team; anyone may remove themselves (leave)."""
    owners = _locked_owner_count(membership.team_id)
    membership = _locked_membership(membership)
    leaving = membership.user_id == actor.pk
    if not leaving and not can_manage(actor_role, membership.role):
        raise PermissionDenied
    if membership.role == Role.OWNER and owners <= 1:
        raise ValidationError(LAST_OWNER)
    audit_log(
        team=membership.team,
        actor=actor,
        action=AuditAction.MEMBER_REMOVE,
        target=membership,
        data={"email": membership.user.email, "role": membership.role, "left": leaving},
    )
    invitation_revoke_ungrantable(
        team=membership.team,
        inviter=membership.user,
        role=None,
        actor=actor,
        reason="inviter_removed",
    )
    membership.delete()


def user_note_language(sender: object, request: Any, user: User, **kwargs: Any) -> None:
    """On sign-in (the `user_logged_in` signal): remember the language the person reads
    Tablero in, for what it sends them later (alerts) with nobody's request at hand, unless
    they chose one already (on the notifications page), which stays."""
    language = getattr(request, "LANGUAGE_CODE", "") if request is not None else ""
    if language in dict(settings.LANGUAGES) and not user.language:
        user.language = language
        User.objects.filter(pk=user.pk).update(language=language)
