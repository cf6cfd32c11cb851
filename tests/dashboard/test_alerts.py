"""Alerts: a revoked key found by the periodic check with nobody signed in mails each admin who
wants it (in their language) and posts once to the team's webhook; the same state found again
sends nothing; a recovery is alerted once; a failed run mails its starter once; the month's
spend crossing the team's threshold is alerted once. Huey runs in immediate mode, the provider
is the fake on loopback, the webhook a receiver on loopback."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Membership, Role
from assistants.models import Run, RunStatus
from assistants.services.runs import run_start
from assistants.tasks import runs_follow_sweep
from connections.models import Health
from connections.tasks import connections_check_sweep, costs_refresh_sweep
from dashboard.alerts_settings import team_alert_settings_update
from dashboard.models import AlertPreference
from fakeprovider import ADMIN_KEY_OK, KEY_OK, KEY_QUOTA
from tests.assistants.helpers import fake_connection, make_assistant
from tests.conftest import PINNED_NOW, _member
from tests.connections.helpers import make_connection
from tests.connections.test_tasks import REVOKED, at_its_slot, costs_slot
from tests.taskqueue import empty_queue, run_scheduled  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def checked(team, owner, fake_upstream):
    return make_connection(
        team,
        base_url=fake_upstream.base_url,
        key=KEY_OK,
        created_by=owner,
        health=Health.OK,
        last_checked_at=PINNED_NOW - timedelta(minutes=20),
    )


@pytest.fixture
def with_webhook(team, webhook):
    team_alert_settings_update(team=team, actor=None, webhook_url=webhook.url, spend_threshold=None)
    return webhook


def sweep(capture) -> None:
    """The periodic check, as the consumer runs it (its writes committed)."""
    with capture(execute=True):
        connections_check_sweep()


def test_a_revoked_key_is_alerted_once_to_each_admin_and_the_webhook_then_its_recovery(
    pinned_clock,
    checked,
    fake_upstream,
    owner,
    admin_user,
    member,
    viewer,
    with_webhook,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    owner.language = "es"
    owner.save(update_fields=["language"])
    fake_upstream.queue(REVOKED, times=10)
    moment = at_its_slot(pinned_clock, checked)

    sweep(django_capture_on_commit_callbacks)

    checked.refresh_from_db()
    assert checked.health == Health.INVALID_KEY
    assert sorted(mail.to[0] for mail in mailoutbox) == ["admin@example.com", "owner@example.com"]
    to_owner = next(mail for mail in mailoutbox if mail.to == ["owner@example.com"])
    to_admin = next(mail for mail in mailoutbox if mail.to == ["admin@example.com"])
    assert "Autenticación inválida (401)" in to_owner.subject
    assert "Qué hacer:" in to_owner.body
    assert "Invalid authentication (401)" in to_admin.subject
    assert "Create a new secret key" in to_admin.body
    assert "sk-test" not in to_owner.body + to_admin.body
    (text,) = with_webhook.texts
    assert "Production" in text and "Invalid authentication (401)" in text

    # The next check finds the key still refused: nothing more is sent.
    at_its_slot(pinned_clock, checked, after=moment + timedelta(minutes=1))
    sweep(django_capture_on_commit_callbacks)
    assert len(fake_upstream.requests_to("/v1/models", "GET")) == 2
    assert len(mailoutbox) == 2
    assert len(with_webhook.posts) == 1

    # The key is accepted again: one "works again", once.
    fake_upstream.reset()
    mailoutbox.clear()
    at_its_slot(pinned_clock, checked, after=moment + timedelta(minutes=16))
    sweep(django_capture_on_commit_callbacks)
    checked.refresh_from_db()
    assert checked.health == Health.OK
    assert sorted(mail.to[0] for mail in mailoutbox) == ["admin@example.com", "owner@example.com"]
    to_owner = next(mail for mail in mailoutbox if mail.to == ["owner@example.com"])
    assert "vuelve a funcionar" in to_owner.subject
    assert len(with_webhook.posts) == 2
    assert "works again" in with_webhook.texts[1]
    at_its_slot(pinned_clock, checked, after=moment + timedelta(minutes=31))
    sweep(django_capture_on_commit_callbacks)
    assert len(mailoutbox) == 2
    assert len(with_webhook.posts) == 2


def test_a_member_who_turned_connection_alerts_off_gets_none(
    pinned_clock,
    checked,
    fake_upstream,
    owner,
    admin_user,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    AlertPreference.objects.create(
        membership=Membership.objects.get(user=admin_user), connection_alerts=False
    )
    fake_upstream.queue(REVOKED, times=3)
    at_its_slot(pinned_clock, checked)

    sweep(django_capture_on_commit_callbacks)

    assert [mail.to for mail in mailoutbox] == [["owner@example.com"]]


def test_an_exhausted_quota_is_alerted(
    team, owner, fake_upstream, mailoutbox, django_capture_on_commit_callbacks
):
    from connections.services import connection_test

    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_QUOTA)
    with django_capture_on_commit_callbacks(execute=True):
        connection_test(connection=connection, user=None)
        connection_test(connection=connection, user=None)

    (mail,) = mailoutbox
    assert "quota" in mail.subject.lower()
    assert "Production" in mail.subject


def test_a_failed_run_mails_its_starter_once(
    team, owner, admin_user, member, fake_upstream, mailoutbox, django_capture_on_commit_callbacks
):
    fake_upstream.run_step_seconds = 0
    connection = fake_connection(team, fake_upstream, key=KEY_QUOTA, run_api="responses")
    assistant = make_assistant(team, connection)

    with django_capture_on_commit_callbacks(execute=True):
        run = run_start(assistant=assistant, user=member, message="Hi").value
    assert run.status == RunStatus.FAILED

    (mail,) = mailoutbox
    assert mail.to == ["member@example.com"]
    assert "Math Tutor" in mail.subject
    assert "quota" in mail.body.lower()

    # The same failure announced again (a second poll, a task run twice): no second mail.
    from dashboard.alerts import run_alert

    run_alert(str(run.pk))
    assert len(mailoutbox) == 1
    assert Run.objects.get().status == RunStatus.FAILED


def test_a_run_that_fails_at_the_provider_with_nobody_watching_mails_its_starter_once(
    pinned_clock, team, owner, member, fake_upstream, mailoutbox, django_capture_on_commit_callbacks
):
    fake_upstream.run_step_seconds = 30
    connection = fake_connection(team, fake_upstream, created_by=owner)
    assistant = make_assistant(team, connection, created_by=member, sync_state="pending")
    run = run_start(assistant=assistant, user=member, message="Hi [fail]").value
    assert not run.is_terminal

    with django_capture_on_commit_callbacks(execute=True):
        runs_follow_sweep()  # the consumer's sweep, nobody on any page
        run_scheduled(pinned_clock)

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    (mail,) = mailoutbox
    assert mail.to == ["member@example.com"]
    assert "server_error" in mail.body


def test_a_member_who_turned_run_alerts_off_gets_no_mail(
    team, member, fake_upstream, mailoutbox, django_capture_on_commit_callbacks
):
    AlertPreference.objects.create(membership=Membership.objects.get(user=member), run_alerts=False)
    connection = fake_connection(team, fake_upstream, key=KEY_QUOTA, run_api="responses")
    assistant = make_assistant(team, connection)

    with django_capture_on_commit_callbacks(execute=True):
        run_start(assistant=assistant, user=member, message="Hi")

    assert mailoutbox == []


def test_the_spend_threshold_is_alerted_once_a_month(
    pinned_clock,
    team,
    owner,
    member,
    checked,
    fake_upstream,
    with_webhook,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    checked.set_admin_key(ADMIN_KEY_OK)
    checked.save()
    team_alert_settings_update(
        team=team, actor=None, webhook_url=None, spend_threshold=Decimal("1.00")
    )
    slot = costs_slot(checked, PINNED_NOW) + timedelta(hours=1)
    pinned_clock.move_to(slot + timedelta(seconds=30))

    with django_capture_on_commit_callbacks(execute=True):
        costs_refresh_sweep()

    (mail,) = mailoutbox
    assert mail.to == ["owner@example.com"]
    assert "1.00 USD" in mail.subject
    assert len(with_webhook.posts) == 1

    # The next hour's fetch finds it still above: nothing more this month.
    pinned_clock.move_to(slot + timedelta(hours=1, seconds=30))
    with django_capture_on_commit_callbacks(execute=True):
        costs_refresh_sweep()
    assert len(fake_upstream.requests_to("/v1/organization/costs", "GET")) > 1
    assert len(mailoutbox) == 1
    assert len(with_webhook.posts) == 1


def test_under_the_threshold_nothing_is_sent(
    pinned_clock, team, owner, checked, mailoutbox, django_capture_on_commit_callbacks
):
    checked.set_admin_key(ADMIN_KEY_OK)
    checked.save()
    team_alert_settings_update(
        team=team, actor=None, webhook_url=None, spend_threshold=Decimal("999999")
    )
    pinned_clock.move_to(costs_slot(checked, PINNED_NOW) + timedelta(hours=1, seconds=30))

    with django_capture_on_commit_callbacks(execute=True):
        costs_refresh_sweep()

    assert mailoutbox == []


def test_a_viewer_gets_no_connection_alert_even_if_they_ask(
    pinned_clock, team, checked, fake_upstream, mailoutbox, django_capture_on_commit_callbacks
):
    viewer = _member(team, "watcher@example.com", Role.VIEWER)
    AlertPreference.objects.create(membership=Membership.objects.get(user=viewer))
    fake_upstream.queue(REVOKED, times=3)
    at_its_slot(pinned_clock, checked)

    sweep(django_capture_on_commit_callbacks)

    assert [mail.to for mail in mailoutbox] == [["owner@example.com"]]
    assert reverse("dashboard:team_home", args=[team.pk])


def test_once_only_alerts_are_forgotten_after_the_retention_but_not_within_two_months(
    pinned_clock, team, settings
):
    from dashboard.alerts import alerts_sent_prune_old
    from dashboard.models import AlertKind, AlertSent

    settings.TABLERO_ERROR_RETENTION = timedelta(days=1)
    old = AlertSent.objects.create(
        key="run-failed:old",
        team=team,
        kind=AlertKind.RUN_FAILED,
        sent_at=PINNED_NOW - timedelta(days=70),
    )
    recent = AlertSent.objects.create(
        key="spend:this-month",
        team=team,
        kind=AlertKind.SPEND_THRESHOLD,
        sent_at=PINNED_NOW - timedelta(days=20),
    )

    alerts_sent_prune_old()

    assert list(AlertSent.objects.values_list("key", flat=True)) == [recent.key]
    assert not AlertSent.objects.filter(pk=old.pk).exists()
