"""Creating, renaming and deleting a team."""

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.access import SESSION_TEAM_KEY, get_team_for_user
from accounts.forms import TeamDeleteForm, TeamForm
from accounts.models import Role
from accounts.views.common import form_page
from lib.forms import posted


@login_required
@form_page
def team_create(request: HttpRequest) -> HttpResponse:
    form = TeamForm(posted(request))
    if form.is_bound and form.is_valid():
        team = services.team_create(name=form.cleaned_data["name"], owner=request.user)
        messages.success(request, _("Team “%(name)s” created.") % {"name": team.name})
        return redirect("dashboard:team_home", team_id=team.pk)
    return render(request, "accounts/team_create.html", {"form": form})


@login_required
@form_page
def team_settings(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    team = access.team
    form = TeamForm(posted(request), initial={"name": team.name})
    if form.is_bound and form.is_valid():
        services.team_rename(team=team, name=form.cleaned_data["name"], actor=request.user)
        messages.success(request, _("Team renamed."))
        return redirect("accounts:team_settings", team_id=team.pk)
    context = {"form": form}
    return render(request, "accounts/team_settings.html", context)


@login_required
@form_page
def team_delete(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.OWNER)
    team = access.team
    form = TeamDeleteForm(posted(request), team=team)
    if form.is_bound and form.is_valid():
        name = team.name
        services.team_delete(team=team, actor=request.user)
        request.session.pop(SESSION_TEAM_KEY, None)
        messages.success(request, _("Team “%(name)s” deleted.") % {"name": name})
        return redirect("home")
    context = {"form": form}
    return render(request, "accounts/team_delete.html", context)
