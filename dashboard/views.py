from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from accounts.access import get_team_for_user
from accounts.models import Role
from dashboard.checklist import checklist_dismiss, team_checklist
from dashboard.overview import team_overview


@login_required
@require_safe
def team_home(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    overview = team_overview(
        team=access.team,
        with_errors_of_connections=access.is_admin,
        with_costs=access.is_admin,
        gateway_user=None if access.is_admin else request.user,
    )
    context = {"overview": overview, "checklist": team_checklist(access=access)}
    return render(request, "dashboard/team_home.html", context)


@login_required
@require_POST
def checklist_dismiss_view(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    checklist_dismiss(team=access.team, actor=request.user)
    messages.success(request, _("The getting-started checklist is hidden for the whole team."))
    return redirect("dashboard:team_home", team_id=access.team.pk)
