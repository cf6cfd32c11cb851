"""Team-scoped URLs of the accounts app, for tests/test_permission_matrix.py."""

from datetime import timedelta

from django.utils import timezone

from accounts.models import Invitation, Membership, Role
from tests.conftest import make_user
from tests.matrix import Case, World, team_kwargs


def _invitation(world: World) -> Invitation:
    return Invitation.objects.create(
        team=world.team,
        email="invited@example.com",
        role=Role.VIEWER,
        invited_by=world.users["owner"],
        expires_at=timezone.now() + timedelta(days=1),
    )


def _extra_membership(world: World) -> Membership:
    """Someone else to act on, so no visitor acts on themselves."""
    return Membership.objects.create(
        team=world.team, user=make_user("extra@example.com"), role=Role.VIEWER
    )


BUILDERS = {"invitation": _invitation, "extra_membership": _extra_membership}


def _invitation_kwargs(world: World) -> dict:
    return {**team_kwargs(world), "invitation_id": world.objects["invitation"].pk}


def _membership_kwargs(world: World) -> dict:
    return {**team_kwargs(world), "membership_id": world.objects["extra_membership"].pk}


CASES = [
    Case("accounts:members", team_kwargs, Role.VIEWER, bad_uuid="team_id"),
    Case(
        "accounts:member_invite",
        team_kwargs,
        Role.ADMIN,
        method="post",
        data=lambda world: {"email": "new@example.com", "role": Role.VIEWER},
        bad_uuid="team_id",
    ),
    Case(
        "accounts:invitation_revoke",
        _invitation_kwargs,
        Role.ADMIN,
        method="post",
        bad_uuid="invitation_id",
        needs=("invitation",),
    ),
    Case(
        "accounts:member_role",
        _membership_kwargs,
        Role.ADMIN,
        method="post",
        data=lambda world: {"role": Role.MEMBER},
        bad_uuid="membership_id",
        needs=("extra_membership",),
    ),
    Case(
        "accounts:member_remove",
        _membership_kwargs,
        Role.ADMIN,
        bad_uuid="membership_id",
        needs=("extra_membership",),
    ),
    Case(
        "accounts:member_remove",
        _membership_kwargs,
        Role.ADMIN,
        method="post",
        bad_uuid="membership_id",
        needs=("extra_membership",),
    ),
    Case("accounts:team_settings", team_kwargs, Role.ADMIN, bad_uuid="team_id"),
    Case(
        "accounts:team_settings",
        team_kwargs,
        Role.ADMIN,
        method="post",
        data=lambda world: {"name": "Renamed"},
        bad_uuid="team_id",
    ),
    Case("accounts:team_delete", team_kwargs, Role.OWNER, bad_uuid="team_id"),
    Case(
        "accounts:team_delete",
        team_kwargs,
        Role.OWNER,
        method="post",
        data=lambda world: {"confirm": world.team.name},
        bad_uuid="team_id",
    ),
    Case("accounts:audit", team_kwargs, Role.ADMIN, bad_uuid="team_id"),
    Case("accounts:audit_export", team_kwargs, Role.ADMIN, bad_uuid="team_id"),
]
