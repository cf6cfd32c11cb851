"""Small builders shared by the accounts tests."""

from datetime import timedelta

from django.utils import timezone

from accounts.models import Invitation, Role, Team, User


def make_invitation(
    team: Team,
    *,
    email: str = "newcomer@example.com",
    role: Role = Role.VIEWER,
    invited_by: User | None = None,
    expires_in: timedelta = timedelta(days=3),
    **extra,
) -> Invitation:
    return Invitation.objects.create(
        team=team,
        email=email,
        role=role,
        invited_by=invited_by,
        expires_at=timezone.now() + expires_in,
        **extra,
    )
