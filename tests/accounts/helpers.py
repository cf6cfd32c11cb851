"""Small builders shared by the accounts tests."""

from datetime import timedelta

from django.utils import timezone

from accounts.models import Invitation, Membership, Role, Team, User

# `make_invitation`'s default inviter: one of the team's owners (made if it has none), since an
# invitation is only valid while someone who may give its role sent it.
TEAM_OWNER = object()


def _an_owner(team: Team) -> User:
    owner = Membership.objects.filter(team=team, role=Role.OWNER).order_by("created_at").first()
    if owner is not None:
        return owner.user
    user, _ = User.objects.get_or_create(email=f"inviter.{team.pk.hex[:8]}@example.com")
    Membership.objects.create(team=team, user=user, role=Role.OWNER)
    return user


def make_invitation(
    team: Team,
    *,
    email: str = "newcomer@example.com",
    role: Role = Role.VIEWER,
    invited_by: User | object | None = TEAM_OWNER,
    expires_in: timedelta = timedelta(days=3),
    **extra,
) -> Invitation:
    return Invitation.objects.create(
        team=team,
        email=email,
        role=role,
        invited_by=_an_owner(team) if invited_by is TEAM_OWNER else invited_by,
        expires_at=timezone.now() + expires_in,
        **extra,
    )
