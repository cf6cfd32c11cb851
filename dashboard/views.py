from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from accounts.access import TeamAccess, get_team_for_user
from accounts.models import Role
from connections import tasks as connection_tasks
from connections.models import Connection, Health
from dashboard.checklist import checklist_dismiss, team_checklist
from dashboard.home_fragments import admin_names, home_sections, kept_page
from dashboard.overview import connection_row, team_overview
from lib.progress import progress_active


@login_required
@require_safe
def team_home(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    return kept_page(
        request=request, access=access, render=lambda extra: _team_home(request, access, extra)
    )


def _team_home(request: HttpRequest, access: TeamAccess, extra: dict[str, Any]) -> HttpResponse:
    overview = team_overview(
        team=access.team,
        with_errors_of_connections=access.is_admin,
        with_costs=access.is_admin,
        gateway_user=None if access.is_admin else request.user,
    )
    # Whom a reader is told to ask, from the cache (the page and its kept sections name them).
    admins = SimpleLazyObject(lambda: admin_names(team=access.team))
    sections = home_sections(
        request=request,
        access=access,
        context=lambda: {"overview": overview, "team_admins": admins},
    )
    context = {
        "overview": overview,
        "checklist": team_checklist(access=access),
        "sections": sections,
        "team_admins": admins,
        **extra,
    }
    return render(request, "dashboard/team_home.html", context)


def _row(request: HttpRequest, access: TeamAccess, connection_id: UUID) -> HttpResponse:
    try:
        row = connection_row(
            team=access.team, connection_id=connection_id, with_costs=access.is_admin
        )
    except Connection.DoesNotExist:
        raise Http404 from None
    context = {
        "row": row,
        "show_spend": request.GET.get("spend") == "1" or request.POST.get("spend") == "1",
        "checking": progress_active(connection_tasks.check_key(row.connection.pk)),
    }
    return render(request, "dashboard/partials/connection_row.html", context)


@login_required
@require_safe
def connection_row_view(request: HttpRequest, team_id: UUID, connection_id: UUID) -> HttpResponse:
    """One row of the home's connections table as it is now (htmx polls it while a check is
    under way). Reads only."""
    access = get_team_for_user(request, team_id)
    return _row(request, access, connection_id)


@login_required
@require_POST
def connection_test(request: HttpRequest, team_id: UUID, connection_id: UUID) -> HttpResponse:
    """The home's "Test again": queue a check of the key. With htmx, answer with the row
    (which keeps asking for news while the check is under way); without, come back to the
    home page with a message."""
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    connection = Connection.objects.filter(team=access.team, pk=connection_id).first()
    if connection is None:
        raise Http404
    connection_tasks.connection_check_queue(connection=connection, user=request.user)
    if request.headers.get("HX-Request") == "true":
        return _row(request, access, connection.pk)
    if progress_active(connection_tasks.check_key(connection.pk)):
        messages.info(
            request,
            _("Testing %(name)s: its row shows the outcome when the provider has answered.")
            % {"name": connection.name},
        )
    else:
        connection.refresh_from_db(fields=["health", "last_error_kind"])
        if connection.health == Health.OK:
            messages.success(request, _("%(name)s works.") % {"name": connection.name})
        else:
            messages.warning(
                request,
                _("The test of %(name)s failed: %(health)s.")
                % {"name": connection.name, "health": connection.get_health_display()},
            )
    return redirect("dashboard:team_home", team_id=access.team.pk)


@login_required
@require_POST
def checklist_dismiss_view(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    checklist_dismiss(team=access.team, actor=request.user)
    messages.success(request, _("The getting-started checklist is hidden for the whole team."))
    return redirect("dashboard:team_home", team_id=access.team.pk)
