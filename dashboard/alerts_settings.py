"""Writes and reads for the alert choices: each member's (the notifications page) and the
team's (webhook and spend threshold, on the team's alert settings page, admins only)."""

from decimal import Decimal

import httpx
from django.db import transaction

from accounts.models import AuditAction, Membership, Team, User
from accounts.services import audit_log
from connections import crypto
from dashboard.alerts import webhook_validate
from dashboard.models import AlertPreference, TeamAlertSettings


def alert_preference_get(*, membership: Membership) -> AlertPreference:
    """The member's choices (unsaved defaults when they never chose)."""
    found = AlertPreference.objects.filter(membership=membership).first()
    return found or AlertPreference(membership=membership)


@transaction.atomic
def alert_preference_update(
    *,
    membership: Membership,
    connection_alerts: bool,
    spend_alerts: bool,
    run_alerts: bool,
    language: str,
) -> AlertPreference:
    preference = alert_preference_get(membership=membership)
    preference.connection_alerts = connection_alerts
    preference.spend_alerts = spend_alerts
    preference.run_alerts = run_alerts
    preference.full_clean()
    preference.save()
    user: User = membership.user
    if language != user.language:
        user.language = language
        User.objects.filter(pk=user.pk).update(language=language)
    return preference


def team_alert_settings_get(*, team: Team) -> TeamAlertSettings:
    found = TeamAlertSettings.objects.filter(team=team).first()
    return found or TeamAlertSettings(team=team)


@transaction.atomic
def team_alert_settings_update(
    *,
    team: Team,
    actor: User | None,
    webhook_url: str | None,
    spend_threshold: Decimal | None,
) -> TeamAlertSettings:
    """Save the threshold, and the webhook URL: None keeps the one stored, "" removes it, a
    URL replaces it (already validated by the form through `webhook_validate`; checked
    again here)."""
    alert_settings = team_alert_settings_get(team=team)
    alert_settings.spend_threshold = spend_threshold
    if webhook_url == "":
        alert_settings.webhook_url_encrypted = ""
        alert_settings.webhook_host = ""
    elif webhook_url is not None:
        url = webhook_validate(webhook_url)
        alert_settings.webhook_url_encrypted = crypto.encrypt(
            url, context=alert_settings.webhook_context()
        )
        alert_settings.webhook_host = httpx.URL(url).host[:255]
    alert_settings.full_clean()
    alert_settings.save()
    # Never the URL (a secret): only its host, and whether it changed.
    webhook = {None: "kept", "": "removed"}.get(webhook_url, "set")
    audit_log(
        team=team,
        actor=actor,
        action=AuditAction.TEAM_ALERT_SETTINGS,
        data={
            "webhook": webhook,
            "webhook_host": alert_settings.webhook_host,
            "spend_threshold": str(spend_threshold) if spend_threshold is not None else "",
        },
    )
    return alert_settings
