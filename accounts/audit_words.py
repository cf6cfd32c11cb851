"""An audit event's details in words, in the reader's language: "Role: Admin", not
`role: admin`. The stored data stays as recorded (the CSV export keeps it as is)."""

from datetime import date, datetime

from django.utils import formats
from django.utils.translation import gettext_lazy as _

from accounts.models import Role

# What each key of an event's data is, in words. A key not listed is shown in plain words.
LABELS = {
    "email": _("Email"),
    "role": _("Role"),
    "from": _("Before"),
    "to": _("After"),
    "name": _("Name"),
    "left": _("Left by themselves"),
    "via": _("Done in"),
    "connection": _("Connection"),
    "assistant": _("Assistant"),
    "model": _("Model"),
    "models": _("Models"),
    "backend": _("Run API"),
    "state": _("State"),
    "remote_id": _("ID at the provider"),
    "admin_key_last4": _("Admin key ends in"),
    "prefix": _("Token"),
    "kind": _("Kind"),
    "owner": _("Owner"),
    "scopes": _("Scopes"),
    "expires_at": _("Expires"),
    "currency": _("Currency"),
    "input_per_million": _("Input, per million tokens"),
    "cached_input_per_million": _("Cached input, per million tokens"),
    "output_per_million": _("Output, per million tokens"),
    "effective_from": _("From"),
    "changes": _("Changed"),
    "changed": _("Changed"),
    "reason": _("Reason"),
    "since": _("Since"),
    "until": _("Until"),
    "notes": _("Notes"),
    "webhook": _("Webhook"),
    "webhook_host": _("Webhook host"),
    "spend_threshold": _("Monthly spend threshold"),
    "added": _("Added"),
    "known": _("Already known"),
    "skipped": _("Skipped"),
    "attached": _("Attached"),
}
VALUES = {
    "admin": _("the admin site"),
    "assistants": _("Assistants API"),
    "responses": _("Responses API"),
    "service": _("service token"),
    "personal": _("personal token"),
}
ROLE_KEYS = {"role", "from", "to"}


def _words(key: str, value: object) -> str:
    if value is True:
        return str(_("yes"))
    if value is False:
        return str(_("no"))
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        return ", ".join(_words(key, item) for item in value)
    if isinstance(value, dict):
        return ", ".join(str(LABELS.get(str(k), str(k).replace("_", " "))) for k in value)
    text = str(value)
    if key in ROLE_KEYS and text in Role.values:
        return str(Role(text).label)
    if key in ("via", "backend", "kind") and text in VALUES:
        return str(VALUES[text])
    if key in ("expires_at", "since", "until", "effective_from"):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text
        if isinstance(moment, datetime) and (moment.hour, moment.minute) != (0, 0):
            return formats.date_format(moment, "DATETIME_FORMAT")
        return formats.date_format(date(moment.year, moment.month, moment.day), "DATE_FORMAT")
    return text


def audit_details(data: dict) -> list[tuple[str, str]]:
    """(label, value) pairs, in the order recorded."""
    return [
        (str(LABELS.get(key, key.replace("_", " ").capitalize())), _words(key, value))
        for key, value in (data or {}).items()
    ]
