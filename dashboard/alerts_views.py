"""The notifications page (each member's own alert choices) and the team's alert settings
(admins: the webhook, shown masked, and the monthly spend threshold)."""

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts.access import get_team_for_user
from accounts.models import Role
from dashboard.alerts_forms import NotificationsForm, TeamAlertSettingsForm
from dashboard.alerts_settings import (
    alert_preference_get,
    alert_preference_update,
    team_alert_settings_get,
    team_alert_settings_update,
)
from lib.forms import posted

form_page = require_http_methods(["GET", "HEAD", "POST"])


@login_required
@form_page
def notifications(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    preference = alert_preference_get(membership=access.membership)
    form = NotificationsForm(
        posted(request),
        is_admin=access.is_admin,
        can_run=access.can(Role.MEMBER),
        initial={
            "connection_alerts": preference.connection_alerts,
            "spend_alerts": preference.spend_alerts,
            "run_alerts": preference.run_alerts,
            "language": request.user.language,
        },
    )
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        alert_preference_update(
            membership=access.membership,
            # A choice not offered to this role keeps what it was.
            connection_alerts=data.get("connection_alerts", preference.connection_alerts),
            spend_alerts=data.get("spend_alerts", preference.spend_alerts),
            run_alerts=data.get("run_alerts", preference.run_alerts),
            language=data["language"],
        )
        messages.success(request, _("Your notification choices were saved."))
        return redirect("dashboard:notifications", team_id=access.team.pk)
    return render(request, "dashboard/notifications.html", {"form": form})


@login_required
@form_page
@sensitive_post_parameters("webhook_url")
def alert_settings(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    current = team_alert_settings_get(team=access.team)
    form = TeamAlertSettingsForm(
        posted(request), initial={"spend_threshold": current.spend_threshold}
    )
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        if data["remove_webhook"]:
            webhook_url: str | None = ""
        else:
            webhook_url = data["webhook_url"] or None
        team_alert_settings_update(
            team=access.team,
            actor=request.user,
            webhook_url=webhook_url,
            spend_threshold=data["spend_threshold"],
        )
        messages.success(request, _("Alert settings saved."))
        return redirect("dashboard:alert_settings", team_id=access.team.pk)
    context = {"form": form, "current": current}
    return render(request, "dashboard/alert_settings.html", context)
