"""What the alerts remember: each member's choices, the team's alert settings (webhook, spend
threshold), the last state alerted per connection and the alerts already sent once."""

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Membership, Team
from connections.models import Connection


class AlertKind(models.TextChoices):
    KEY_INVALID = "key_invalid", _("A connection's key became invalid")
    QUOTA_EXHAUSTED = "quota_exhausted", _("A connection's quota is exhausted")
    RECOVERED = "recovered", _("A connection works again")
    RUN_FAILED = "run_failed", _("A run failed")
    SPEND_THRESHOLD = "spend_threshold", _("The month's spend crossed the threshold")
    BUDGET_THRESHOLD = "budget_threshold", _("A token or member used much of its monthly budget")
    ERROR_BURST = "error_burst", _("A token saw a burst of errors")


class AlertPreference(models.Model):
    """Which alerts one member wants in one team. No row means the defaults (all true): an
    admin or owner gets the connection and spend alerts, a member the failures of their runs;
    a member's role decides what they may get at all (`dashboard.alerts.wants`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    membership = models.OneToOneField(
        Membership, on_delete=models.CASCADE, related_name="alert_preference"
    )
    connection_alerts = models.BooleanField(
        _("connection alerts"),
        default=True,
        help_text=_("A key becomes invalid, the quota runs out, a connection works again."),
    )
    spend_alerts = models.BooleanField(
        _("spend alerts"),
        default=True,
        help_text=_("The team's spend this month crosses the threshold set by an admin."),
    )
    run_alerts = models.BooleanField(
        _("failed runs"), default=True, help_text=_("A run you started failed.")
    )

    class Meta:
        verbose_name = _("alert preference")
        verbose_name_plural = _("alert preferences")

    def __str__(self) -> str:
        return f"alerts of {self.membership}"


class TeamAlertSettings(models.Model):
    """The team's alert settings. The webhook URL is a secret (whoever has it can post to the
    channel): kept encrypted with the connections keyring and never shown back in full."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="alert_settings")
    webhook_url_encrypted = models.TextField(blank=True, editable=False)
    webhook_host = models.CharField(_("webhook host"), max_length=255, blank=True)
    spend_threshold = models.DecimalField(
        _("monthly spend threshold (USD)"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )

    class Meta:
        verbose_name = _("team alert settings")
        verbose_name_plural = _("team alert settings")

    def __str__(self) -> str:
        return f"alert settings of {self.team}"

    @property
    def has_webhook(self) -> bool:
        return bool(self.webhook_url_encrypted)

    @property
    def webhook_masked(self) -> str:
        return f"{self.webhook_host}/…" if self.webhook_host else ""

    def webhook_context(self) -> str:
        return f"dashboard.TeamAlertSettings:{self.team_id}:webhook_url"


class ConnectionAlertState(models.Model):
    """The last health a connection was alerted for ("" when none, or after a recovery), so
    each change of state is alerted once however many checks find it."""

    connection = models.OneToOneField(
        Connection, on_delete=models.CASCADE, primary_key=True, related_name="alert_state"
    )
    alerted_health = models.CharField(max_length=20, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.connection_id}: {self.alerted_health or 'ok'}"


class AlertSent(models.Model):
    """An alert that must go out once only (a run's failure, a month's threshold), by key."""

    key = models.CharField(max_length=200, unique=True)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    sent_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key


class ChecklistDismissal(models.Model):
    """The team's admins hid the getting-started checklist from its home page."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="checklist_dismissal")
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    dismissed_at = models.DateTimeField(_("dismissed"), default=timezone.now)

    class Meta:
        verbose_name = _("checklist dismissal")
        verbose_name_plural = _("checklist dismissals")

    def __str__(self) -> str:
        return f"checklist dismissed for {self.team}"
