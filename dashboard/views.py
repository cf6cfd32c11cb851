from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from accounts.access import get_team_for_user
from dashboard.overview import team_overview


@login_required
@require_safe
def team_home(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    overview = team_overview(
        team=access.team,
        with_errors_of_connections=access.is_admin,
        with_costs=access.is_admin,
    )
    context = {"overview": overview}
    return render(request, "dashboard/team_home.html", context)
