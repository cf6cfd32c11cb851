"""The access helper every team-scoped view starts with.

    access = get_team_for_user(request, team_id, min_role=Role.MEMBER)
    connection = get_object_or_404(Connection, pk=connection_id, team=access.team)

A team the user is not a member of is a 404 (its existence is not revealed), a role too low is
a 403. Anonymous users never get here: team views are wrapped in `login_required`.
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from accounts.models import ROLE_RANK, Membership, Role, Team

SESSION_TEAM_KEY = "tablero_team_id"


@dataclass(frozen=True)
class TeamAccess:
    team: Team
    membership: Membership

    @property
    def role(self) -> Role:
        return Role(self.membership.role)

    def can(self, min_role: Role) -> bool:
        """Whether this user's role in the team is `min_role` or higher."""
        return ROLE_RANK[self.role] >= ROLE_RANK[Role(min_role)]

    @property
    def is_member(self) -> bool:
        return self.can(Role.MEMBER)

    @property
    def is_admin(self) -> bool:
        return self.can(Role.ADMIN)

    @property
    def is_owner(self) -> bool:
        return self.can(Role.OWNER)


def get_team_for_user(request: HttpRequest, team_id, *, min_role: Role = Role.VIEWER) -> TeamAccess:
    """Return the team and the user's standing in it, or refuse (404 outsider, 403 low role)."""
    user = request.user
    if not user.is_authenticated:
        raise Http404
    membership = (
        Membership.objects.select_related("team").filter(team_id=team_id, user=user).first()
    )
    if membership is None:
        raise Http404
    access = TeamAccess(team=membership.team, membership=membership)
    if not access.can(min_role):
        raise PermissionDenied
    if request.session.get(SESSION_TEAM_KEY) != str(membership.team_id):
        request.session[SESSION_TEAM_KEY] = str(membership.team_id)
    request.team_access = access
    return access
