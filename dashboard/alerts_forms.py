"""Forms of the notifications page and of the team's alert settings."""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from dashboard.alerts import webhook_validate
from provider.urlguard import URLRefused


class NotificationsForm(forms.Form):
    """A member's choices; the connection and spend choices are offered to admins only."""

    connection_alerts = forms.BooleanField(
        label=_("A connection's key becomes invalid, its quota runs out, or it works again"),
        required=False,
    )
    spend_alerts = forms.BooleanField(
        label=_("The team's spend this month passes the threshold"), required=False
    )
    run_alerts = forms.BooleanField(label=_("A run I started failed"), required=False)
    language = forms.ChoiceField(
        label=_("Language of the alerts"),
        choices=[("", _("The site's default")), *settings.LANGUAGES],
        required=False,
    )

    def __init__(self, *args, is_admin: bool, can_run: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not is_admin:
            del self.fields["connection_alerts"]
            del self.fields["spend_alerts"]
        if not can_run:
            del self.fields["run_alerts"]


class TeamAlertSettingsForm(forms.Form):
    webhook_url = forms.CharField(
        label=_("New webhook URL"),
        required=False,
        max_length=2000,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text=_(
            "A Slack-compatible incoming webhook (https). It is kept encrypted and never shown "
            "again; leave empty to keep the current one."
        ),
    )
    remove_webhook = forms.BooleanField(label=_("Remove the webhook"), required=False)
    spend_threshold = forms.DecimalField(
        label=_("Monthly spend threshold (USD)"),
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=2,
        help_text=_("Admins are alerted once a month when the team's spend reaches it."),
    )

    def clean_webhook_url(self) -> str:
        url = self.cleaned_data["webhook_url"].strip()
        if not url:
            return ""
        try:
            return webhook_validate(url)
        except URLRefused as refused:
            raise ValidationError(str(refused.reason)) from None
