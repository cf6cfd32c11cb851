"""The team's usage page: runs and tokens of the last 30 days, from Tablero's own records."""

from uuid import UUID

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from accounts.access import get_team_for_user
from accounts.forms import TeamChoiceField, TeamScopedForm
from assistants import usage as usage_selectors
from assistants.forms import team_connections
from lib.pagination import paginate


class UsageFilterForm(TeamScopedForm):
    # A connection by its id (a link's ?connection=, kept as a hidden field) or by a part of
    # its name: a select of every connection would not stay small.
    connection = TeamChoiceField(team_connections, required=False, widget=forms.HiddenInput)
    connection_name = forms.CharField(label=_("Connection"), required=False, max_length=100)


@login_required
@require_safe
def usage(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    form = UsageFilterForm(request.GET or None, team=access.team)
    connection, name = None, ""
    if form.is_bound and form.is_valid():
        connection = form.cleaned_data["connection"]
        name = form.cleaned_data["connection_name"].strip()
    summary = usage_selectors.usage_summary(
        team=access.team, connection_id=connection.pk if connection else None, connection_name=name
    )
    return render(
        request,
        "assistants/usage.html",
        {
            "form": form,
            "connection": connection,
            "filtered": bool(connection or name),
            "usage": summary,
            "assistant_pages": paginate(request, summary.per_assistant, prefix="assistants_"),
            "member_pages": paginate(request, summary.per_member, prefix="members_"),
            "chart": usage_selectors.usage_chart(summary),
        },
    )
