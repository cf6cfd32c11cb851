"""The notifications page (each member's choices) and the team's alert settings (the webhook,
checked by the URL guard and never shown in full, and the spend threshold). Access for every
role is in tests/test_permission_matrix.py (tests/dashboard/matrix.py)."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditAction, AuditEvent
from connections import crypto
from dashboard.models import AlertPreference, TeamAlertSettings
from provider import urlguard
from tests.taskqueue import empty_queue, run_scheduled, scheduled_etas  # noqa: F401

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T0001/B0001/s3cr3tTok3nPart"


def notifications_url(team) -> str:
    return reverse("dashboard:notifications", args=[team.pk])


def settings_url(team) -> str:
    return reverse("dashboard:alert_settings", args=[team.pk])


@pytest.fixture
def public_dns(monkeypatch):
    """hooks.slack.com resolves to a public address (no test asks a real DNS server)."""
    monkeypatch.setattr(urlguard, "resolve_host", lambda host, port: ["34.203.10.10"])


def test_an_admin_sees_and_saves_every_choice(owner_client, owner, team):
    page = owner_client.get(notifications_url(team)).content.decode()
    assert "A connection&#x27;s key becomes invalid" in page or "key becomes invalid" in page
    assert "passes the threshold" in page
    assert "A run I started failed" in page

    response = owner_client.post(
        notifications_url(team), {"run_alerts": "on", "language": "es"}, follow=True
    )

    assert "Your notification choices were saved." in response.content.decode()
    preference = AlertPreference.objects.get(membership__user=owner)
    assert (preference.connection_alerts, preference.spend_alerts, preference.run_alerts) == (
        False,
        False,
        True,
    )
    owner.refresh_from_db()
    assert owner.language == "es"


def test_a_member_is_offered_only_the_failures_of_their_runs(member_client, member, team):
    page = member_client.get(notifications_url(team)).content.decode()
    assert "passes the threshold" not in page
    assert "A run I started failed" in page

    member_client.post(notifications_url(team), {"language": ""})

    preference = AlertPreference.objects.get(membership__user=member)
    assert preference.run_alerts is False
    assert preference.connection_alerts is True  # not theirs to change; never sent anyway


def test_sign_in_notes_the_language_of_the_page(client, owner):
    from tests.conftest import PASSWORD

    client.post(
        reverse("accounts:login"),
        {"username": owner.email, "password": PASSWORD},
        HTTP_ACCEPT_LANGUAGE="es",
    )

    owner.refresh_from_db()
    assert owner.language == "es"

    # A language noted (or chosen on the notifications page) stays, whatever the page's.
    Client().post(
        reverse("accounts:login"),
        {"username": owner.email, "password": PASSWORD},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    owner.refresh_from_db()
    assert owner.language == "es"


def test_the_webhook_is_stored_encrypted_and_shown_masked(owner_client, team, public_dns):
    response = owner_client.post(
        settings_url(team), {"webhook_url": SLACK_URL, "spend_threshold": "250"}, follow=True
    )

    page = response.content.decode()
    assert "Alert settings saved." in page
    assert "hooks.slack.com/…" in page
    assert "s3cr3tTok3nPart" not in page
    assert "/services/T0001" not in page
    stored = TeamAlertSettings.objects.get(team=team)
    assert "s3cr3tTok3nPart" not in stored.webhook_url_encrypted
    assert crypto.decrypt(stored.webhook_url_encrypted, context=stored.webhook_context()) == (
        SLACK_URL
    )
    assert str(stored.spend_threshold) == "250.00"
    event = AuditEvent.objects.get(action=AuditAction.TEAM_ALERT_SETTINGS)
    assert event.data == {
        "webhook": "set",
        "webhook_host": "hooks.slack.com",
        "spend_threshold": "250",
    }
    # Saving again without a URL keeps it; the form never carries it back.
    owner_client.post(settings_url(team), {"webhook_url": "", "spend_threshold": "300"})
    stored.refresh_from_db()
    assert stored.has_webhook and str(stored.spend_threshold) == "300.00"
    page = owner_client.get(settings_url(team)).content.decode()
    assert "s3cr3tTok3nPart" not in page and 'value="https' not in page

    owner_client.post(settings_url(team), {"remove_webhook": "on"})
    stored.refresh_from_db()
    assert not stored.has_webhook and stored.webhook_host == ""


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://10.0.0.5/hook", "private, local or reserved network address"),
        ("https://169.254.169.254/latest/meta-data", "private, local or reserved network address"),
        ("http://hooks.slack.com/services/T/B/x", "must start with https://"),
        ("https://localhost/hook", "is a local name"),
    ],
)
def test_a_private_or_plain_http_webhook_is_refused(owner_client, team, url, reason, public_dns):
    response = owner_client.post(settings_url(team), {"webhook_url": url})

    assert response.status_code == 200
    assert reason in response.content.decode()
    assert not TeamAlertSettings.objects.filter(team=team).exists()


def test_a_name_that_leads_to_a_private_address_is_refused(owner_client, team, monkeypatch):
    monkeypatch.setattr(urlguard, "resolve_host", lambda host, port: ["192.168.1.20"])

    response = owner_client.post(settings_url(team), {"webhook_url": SLACK_URL})

    assert "private, local or reserved network address" in response.content.decode()
    assert not TeamAlertSettings.objects.filter(team=team).exists()


def test_the_team_settings_page_links_to_the_alert_settings(owner_client, team):
    page = owner_client.get(reverse("accounts:team_settings", args=[team.pk])).content.decode()
    assert settings_url(team) in page


def test_a_webhook_that_fails_is_tried_once_more_then_dropped(pinned_clock, team, owner, webhook):
    from dashboard.alerts import webhook_post
    from dashboard.alerts_settings import team_alert_settings_update

    team_alert_settings_update(team=team, actor=None, webhook_url=webhook.url, spend_threshold=None)
    webhook.status = 500

    webhook_post(str(team.pk), "hello")
    assert webhook.texts == ["hello"]
    assert len(scheduled_etas()) == 1  # one retry, a minute later

    run_scheduled(pinned_clock)
    assert webhook.texts == ["hello", "hello"]
    assert scheduled_etas() == []  # and no more
