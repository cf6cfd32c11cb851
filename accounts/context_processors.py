from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.access import SESSION_TEAM_KEY
from accounts.selectors import switcher_memberships, team_admin_names


def navigation(request: HttpRequest) -> dict:
    """The team switcher and the current team for the page frame (from the cache, or one query;
    only if the page uses them)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def memberships():
        return switcher_memberships(user_id=user.pk)

    lazy_memberships = SimpleLazyObject(memberships)

    def current():
        access = getattr(request, "team_access", None)
        if access is not None:
            return access.membership
        wanted = None
        match = getattr(request, "resolver_match", None)
        if match is not None:
            wanted = match.kwargs.get("team_id")
        wanted = str(wanted or request.session.get(SESSION_TEAM_KEY, ""))
        for membership in lazy_memberships:
            if str(membership.team_id) == wanted:
                return membership
        return lazy_memberships[0] if lazy_memberships else None

    return {"nav_memberships": lazy_memberships, "current_membership": SimpleLazyObject(current)}


def team_access(request: HttpRequest) -> dict:
    """`team` and `access` (accounts.access.TeamAccess) on every page of a team, as the view's
    access helper found them: views never put them in their context themselves. A view that
    names another `team` (an invitation's) still wins. And `team_admins`: the names a viewer
    or member is told to ask when a fix needs an admin."""
    access = getattr(request, "team_access", None)
    if access is None:
        return {}
    # Whom to ask when something needs an admin (one query, only if a page names them).
    admins = SimpleLazyObject(lambda: team_admin_names(team=access.team))
    return {"access": access, "team": access.team, "team_admins": admins}
