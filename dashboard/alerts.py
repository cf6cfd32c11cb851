"""Alerts: mail (and the team's Slack-compatible webhook) when something changed that a person
must act on.

The lower apps announce changes through `lib.events` (they cannot import this module); the
receivers here only queue a Huey task, so no page ever waits on a mail server or a webhook.
Each task reads the current state from the database and decides whether it is news:

- a connection: its health is remembered per connection (`ConnectionAlertState`) when alerted,
  so an invalid key or an exhausted quota is alerted once however many checks find it, and a
  connection that works again after one of those is alerted once as recovered; passing
  troubles (rate limits, an unreachable provider) are not alerted;
- a failed run and a month's spend crossing the team's threshold go out once per run and once
  per month (and threshold), claimed by a unique key (`AlertSent`).

Mail goes to each member who wants the kind (`wants`), in that member's language; the webhook
text is in the site's default language. The texts use the error catalogue of the pages.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from accounts.models import Membership, Role, Team, User
from assistants.models import Run, RunStatus
from connections import costs, crypto
from connections.explanations import explain
from connections.guard import url_guard
from connections.models import Connection, Health
from dashboard.gateway_words import budget_words, burst_words
from dashboard.models import (
    AlertKind,
    AlertPreference,
    AlertSent,
    ConnectionAlertState,
    TeamAlertSettings,
)
from lib import events
from provider.errors import ErrorKind
from provider.urlguard import GuardedTransport, URLRefused

logger = logging.getLogger(__name__)

# The healths that someone must act on, and the alert each one raises.
ALERTED_HEALTHS = {
    Health.INVALID_KEY: AlertKind.KEY_INVALID,
    Health.NO_QUOTA: AlertKind.QUOTA_EXHAUSTED,
}
EXPLAINED_BY = {
    Health.INVALID_KEY: ErrorKind.INVALID_KEY,
    Health.NO_QUOTA: ErrorKind.QUOTA_EXHAUSTED,
}
CONNECTION_KINDS = frozenset(
    {AlertKind.KEY_INVALID, AlertKind.QUOTA_EXHAUSTED, AlertKind.RECOVERED}
)
WEBHOOK_TIMEOUT = 5.0  # seconds, for connecting and for the answer
SPEND_CURRENCY = "usd"


# --- who wants what -----------------------------------------------------------------------------


def wants(membership: Membership, kind: AlertKind, preference: AlertPreference | None) -> bool:
    """Whether this member gets alerts of `kind`: connection and spend alerts need an admin
    (only admins see a connection's errors and costs), failed runs a member who can start
    them; then the member's own choice (all on by default)."""
    role = Role(membership.role)
    if kind in CONNECTION_KINDS:
        return role.at_least(Role.ADMIN) and (preference is None or preference.connection_alerts)
    if kind in (AlertKind.SPEND_THRESHOLD, AlertKind.BUDGET_THRESHOLD):
        return role.at_least(Role.ADMIN) and (preference is None or preference.spend_alerts)
    if kind == AlertKind.ERROR_BURST:
        return role.at_least(Role.ADMIN) and (preference is None or preference.connection_alerts)
    return role.at_least(Role.MEMBER) and (preference is None or preference.run_alerts)


def recipients(
    *, team: Team, kind: AlertKind, only: User | None = None, concerned: Any = None
) -> list[User]:
    """Who gets an alert of `kind`: those who want it (only `only`, when given), and the
    member it is about (`concerned`, a user id: their token's budget or errors), whatever
    their role, as long as they are still in the team and their account active."""
    memberships = Membership.objects.filter(team=team).select_related("user", "alert_preference")
    if only is not None:
        memberships = memberships.filter(user=only)
    found = []
    for membership in memberships:
        try:
            preference = membership.alert_preference
        except AlertPreference.DoesNotExist:
            preference = None
        about_them = concerned is not None and membership.user_id == concerned
        if membership.user.is_active and (about_them or wants(membership, kind, preference)):
            found.append(membership.user)
    return found


# --- the texts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """What to say, worded when sent (in each reader's language): `kind` and the facts."""

    team_id: UUID
    kind: AlertKind
    facts: dict[str, Any]


def _words(alert: Alert, team: Team) -> tuple[str, str]:
    """(subject, body) in the active language."""
    facts = alert.facts
    lines: list[str] = []
    if alert.kind in (AlertKind.KEY_INVALID, AlertKind.QUOTA_EXHAUSTED):
        entry = explain(facts["error_kind"])
        subject = _("%(connection)s: %(problem)s") % {
            "connection": facts["connection"],
            "problem": entry.title,
        }
        lines = [
            _("The connection “%(connection)s” of the team “%(team)s” stopped working.")
            % {"connection": facts["connection"], "team": team.name},
            "",
            str(entry.cause),
            "",
            _("What to do: %(next_step)s") % {"next_step": entry.next_step},
            entry.help_url,
        ]
    elif alert.kind == AlertKind.RECOVERED:
        subject = _("%(connection)s works again") % {"connection": facts["connection"]}
        lines = [
            _(
                "The connection “%(connection)s” of the team “%(team)s” works again: its key was "
                "accepted at the last check."
            )
            % {"connection": facts["connection"], "team": team.name}
        ]
    elif alert.kind == AlertKind.RUN_FAILED:
        subject = _("A run of %(assistant)s failed") % {"assistant": facts["assistant"]}
        lines = [
            _(
                "A run of the assistant “%(assistant)s” (team “%(team)s”), started "
                "%(started)s UTC, failed."
            )
            % {"assistant": facts["assistant"], "team": team.name, "started": facts["started"]}
        ]
        if facts.get("error_kind"):
            entry = explain(facts["error_kind"])
            lines += [
                "",
                str(entry.title),
                str(entry.cause),
                "",
                _("What to do: %(next_step)s") % {"next_step": entry.next_step},
            ]
        elif facts.get("error_code"):
            lines += ["", _("The provider said: %(code)s") % {"code": facts["error_code"]}]
    elif alert.kind == AlertKind.BUDGET_THRESHOLD:
        subject, lines = budget_words(facts, team)
    elif alert.kind == AlertKind.ERROR_BURST:
        subject, lines = burst_words(facts, team)
    else:
        subject = _("The month's spend passed %(threshold)s USD") % {
            "threshold": facts["threshold"]
        }
        lines = [
            _(
                "The team “%(team)s” has spent %(spent)s USD this month (%(month)s), more than the "
                "threshold of %(threshold)s USD its admins set."
            )
            % {
                "team": team.name,
                "spent": facts["spent"],
                "month": facts["month"],
                "threshold": facts["threshold"],
            }
        ]
    footer = _("You get this alert because of your notification choices in Tablero.")
    return f"[Tablero] {team.name}: {subject}", "\n".join([*lines, "", footer]) + "\n"


def alert_send(*, alert: Alert, only: User | None = None, concerned: Any = None) -> None:
    """Mail everyone who wants the alert (each in their language) and the member it concerns
    (a user id), and post it to the team's webhook if it has one (a task of its own, so a slow
    channel delays no mail)."""
    team = Team.objects.get(pk=alert.team_id)
    for user in recipients(team=team, kind=alert.kind, only=only, concerned=concerned):
        with translation.override(user.language or settings.LANGUAGE_CODE):
            subject, body = _words(alert, team)
        try:
            send_mail(subject, body, None, [user.email])
        except Exception:  # a mail server down must not stop the others' alerts
            logger.exception("Could not send an alert mail.")
    alert_settings = TeamAlertSettings.objects.filter(team=team).first()
    if alert_settings is not None and alert_settings.has_webhook:
        with translation.override(settings.LANGUAGE_CODE):
            subject, body = _words(alert, team)
        webhook_post(str(team.pk), f"*{subject}*\n{body}")


# --- the webhook --------------------------------------------------------------------------------


def webhook_validate(url: str) -> str:
    """The URL, normalised, or URLRefused (https only, no private address unless an operator
    allowed the host): the same guard as the connections'."""
    return url_guard().validate_base_url(url)


def webhook_deliver(*, url: str, text: str) -> int:
    """POST `{"text": …}` to the webhook through the guarded transport. Returns the status;
    raises httpx.HTTPError (or URLRefused) when it did not arrive."""
    guard = url_guard()
    client = httpx.Client(
        transport=GuardedTransport(guard=guard), timeout=WEBHOOK_TIMEOUT, follow_redirects=False
    )
    # Streamed and never read: whatever the receiver answers, only its status counts.
    with client, client.stream("POST", webhook_validate(url), json={"text": text}) as response:
        response.raise_for_status()
        return response.status_code


@db_task(retries=1, retry_delay=60)
def webhook_post(team_id: str, text: str) -> None:
    """Post to the team's webhook; a failure is tried once more a minute later, then dropped.
    The URL is read (and decrypted) here, so it never sits in the queue."""
    alert_settings = TeamAlertSettings.objects.filter(team_id=team_id).first()
    if alert_settings is None or not alert_settings.has_webhook:
        return
    try:
        url = crypto.decrypt(
            alert_settings.webhook_url_encrypted, context=alert_settings.webhook_context()
        )
    except crypto.DecryptionError:
        logger.warning("The alert webhook of a team does not decrypt; not sent.")
        return
    try:
        webhook_deliver(url=url, text=text)
    except URLRefused:
        logger.warning("The alert webhook of a team is refused by the URL guard; not sent.")
    except httpx.HTTPError as error:
        # Never the URL: it is the secret.
        logger.warning("The alert webhook did not take the alert (%s).", type(error).__name__)
        raise RuntimeError("webhook failed") from None


# --- deciding what is news ----------------------------------------------------------------------


def connection_alert_run(*, connection_id: UUID | str) -> AlertKind | None:
    """Alert the connection's current health if it is news. Returns the alert sent."""
    connection = Connection.objects.filter(pk=connection_id).first()
    if connection is None:
        return None
    health = Health(connection.health)
    state, _created = ConnectionAlertState.objects.get_or_create(connection=connection)
    before = state.alerted_health
    if health in ALERTED_HEALTHS and before != health:
        kind, after = ALERTED_HEALTHS[health], health
    elif health == Health.OK and before in ALERTED_HEALTHS:
        kind, after = AlertKind.RECOVERED, ""
    else:
        return None
    # Compare and swap: of two tasks that saw the same change, one alerts.
    claimed = ConnectionAlertState.objects.filter(
        connection=connection, alerted_health=before
    ).update(alerted_health=after, changed_at=timezone.now())
    if not claimed:
        return None
    facts: dict[str, Any] = {"connection": connection.name}
    if health in EXPLAINED_BY:
        facts["error_kind"] = EXPLAINED_BY[health].value
    alert_send(alert=Alert(team_id=connection.team_id, kind=kind, facts=facts))
    return kind


def alert_claim(*, key: str, team_id: UUID, kind: AlertKind) -> bool:
    try:
        with transaction.atomic():
            AlertSent.objects.create(key=key, team_id=team_id, kind=kind)
    except IntegrityError:
        return False
    return True


def _explained(kind: str) -> bool:
    """Whether the error catalogue has an entry for `kind`."""
    if not kind:
        return False
    try:
        explain(kind)
    except (ValueError, KeyError):
        return False
    return True


def run_alert_run(*, run_id: UUID | str) -> bool:
    """Mail the member who started a failed run, once per run. Whether it was sent."""
    run = Run.objects.select_related("assistant", "started_by").filter(pk=run_id).first()
    if run is None or run.status != RunStatus.FAILED or run.started_by is None:
        return False
    if not alert_claim(key=f"run-failed:{run.pk}", team_id=run.team_id, kind=AlertKind.RUN_FAILED):
        return False
    error_kind = run.last_error_kind if _explained(run.last_error_kind) else ""
    facts = {
        "assistant": run.assistant.name if run.assistant else "—",
        "started": f"{run.created_at:%Y-%m-%d %H:%M}",
        "error_kind": error_kind,
        "error_code": run.last_error_code,
    }
    alert_send(
        alert=Alert(team_id=run.team_id, kind=AlertKind.RUN_FAILED, facts=facts),
        only=run.started_by,
    )
    return True


def team_month_spend(*, team: Team) -> Decimal:
    """This month's spend of the team in USD, as the costs of its connections were last
    stored (no provider is asked)."""
    known = costs.month_spend_known(connections=Connection.objects.filter(team=team))
    return sum(
        (
            amount
            for spend in known.values()
            for currency, amount in spend.amounts.items()
            if currency.lower() == SPEND_CURRENCY
        ),
        Decimal(0),
    )


def spend_alert_run(*, connection_id: UUID | str) -> bool:
    """Alert the team once in a month when its spend reaches the threshold it set."""
    connection = Connection.objects.select_related("team").filter(pk=connection_id).first()
    if connection is None:
        return False
    team = connection.team
    alert_settings = TeamAlertSettings.objects.filter(team=team).first()
    if alert_settings is None or alert_settings.spend_threshold is None:
        return False
    threshold = alert_settings.spend_threshold
    spent = team_month_spend(team=team)
    if spent < threshold:
        return False
    month = f"{costs.utc_today():%Y-%m}"
    key = f"spend:{team.pk}:{month}:{threshold}"
    if not alert_claim(key=key, team_id=team.pk, kind=AlertKind.SPEND_THRESHOLD):
        return False
    facts = {"spent": f"{spent:.2f}", "threshold": f"{threshold:.2f}", "month": month}
    alert_send(alert=Alert(team_id=team.pk, kind=AlertKind.SPEND_THRESHOLD, facts=facts))
    return True


# --- the tasks and the receivers that queue them --------------------------------------------------


@db_task()
def connection_alert(connection_id: str) -> None:
    connection_alert_run(connection_id=connection_id)


@db_task()
def run_alert(run_id: str) -> None:
    run_alert_run(run_id=run_id)


@db_task()
def spend_alert(connection_id: str) -> None:
    spend_alert_run(connection_id=connection_id)


# A month's spend alert must be remembered for the whole month at least.
ALERT_RECORDS_KEPT_AT_LEAST = timedelta(days=62)


def alerts_sent_prune(*, before: datetime) -> int:
    """Forget the once-only alerts sent before `before`. Returns how many."""
    return AlertSent.objects.filter(sent_at__lt=before).delete()[0]


@db_periodic_task(crontab(minute="23", hour="3"))
def alerts_sent_prune_old() -> None:
    """Every night: forget the once-only alerts older than the error retention (and at
    least two months, so a month's threshold is never alerted twice)."""
    kept = max(settings.TABLERO_ERROR_RETENTION, ALERT_RECORDS_KEPT_AT_LEAST)
    alerts_sent_prune(before=timezone.now() - kept)


def _on_health(sender: object, *, connection_id: object, health: str, **kwargs: Any) -> None:
    # Only a health that may be news queues a task (most checks find a working connection
    # that was never alerted about; the task finds that out cheaply, but no task is cheaper).
    if health in ALERTED_HEALTHS or health == Health.OK:
        transaction.on_commit(lambda: connection_alert(str(connection_id)))


def _on_run_failed(sender: object, *, run_id: object, **kwargs: Any) -> None:
    transaction.on_commit(lambda: run_alert(str(run_id)))


def _on_month_spend(sender: object, *, connection_id: object, **kwargs: Any) -> None:
    transaction.on_commit(lambda: spend_alert(str(connection_id)))


def connect() -> None:
    events.connection_health_stored.connect(_on_health, dispatch_uid="alerts-health")
    events.run_failed.connect(_on_run_failed, dispatch_uid="alerts-run-failed")
    events.month_spend_stored.connect(_on_month_spend, dispatch_uid="alerts-month-spend")
