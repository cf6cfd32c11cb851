"""The form that makes a gateway token. It offers what the person may choose (a viewer: the
models scope only; an admin: a service token too), and the services check it all again."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.forms import TeamChoiceField, TeamScopedForm, of_team
from accounts.models import Role, Team
from connections.models import Connection
from gateway import selectors
from gateway.models import TokenKind
from gateway.scopes import Scope
from gateway.services import DEFAULT_LIFETIME, MAX_LIFETIME, scopes_for_role

CUSTOM_DATE = "date"
LIFETIME_DAYS = (7, 30, 90, 180, 365)


def _lifetime_choices() -> list[tuple[str, Any]]:
    """Called each time the field is shown, so in the language of the page."""
    choices: list[tuple[str, Any]] = [
        (str(days), ngettext("%(count)d day", "%(count)d days", days) % {"count": days})
        for days in LIFETIME_DAYS
    ]
    return [*choices, (CUSTOM_DATE, _("Until a date…"))]


def end_of_day(day) -> datetime:
    """The moment `day` ends in the site's time zone (the first moment of the next day)."""
    return timezone.make_aware(
        datetime.combine(day + timedelta(days=1), time.min), timezone.get_current_timezone()
    )


class TokenCreateForm(TeamScopedForm):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("What it is for, e.g. “Notebook” or “Nightly report”."),
    )
    connection = TeamChoiceField(
        of_team(Connection, "name"),
        label=_("Connection"),
        empty_label=None,
        help_text=_("The token uses this connection's key, without ever showing it."),
    )
    kind = forms.ChoiceField(
        label=_("Belongs to"),
        choices=[
            (TokenKind.PERSONAL, _("Me (a personal token)")),
            (TokenKind.SERVICE, _("The team (a service token, for a shared program)")),
        ],
        initial=TokenKind.PERSONAL,
        required=False,  # left out: personal
        widget=forms.RadioSelect,
        help_text=_(
            "A personal token stops working when its owner leaves the team. A service token "
            "keeps working until it expires or an admin revokes it."
        ),
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("What programs may do with the token. Organization endpoints never."),
    )
    allowed_models = forms.MultipleChoiceField(
        label=_("Allowed models"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text=_(
            "Leave empty to allow every model of the connection. The list is the one Tablero "
            "last fetched; refresh the connection's models to see new ones."
        ),
    )
    lifetime = forms.ChoiceField(
        label=_("Expires after"),
        choices=_lifetime_choices,
        initial=str(DEFAULT_LIFETIME.days),
    )
    expires_on = forms.DateField(
        label=_("Expiry date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("With “Until a date…”: the token works until the end of this day."),
    )

    def __init__(self, *args, team: Team, role: Role, **kwargs) -> None:
        super().__init__(*args, team=team, **kwargs)
        self.role = Role(role)
        allowed = scopes_for_role(self.role)
        self.fields["scopes"].choices = [(s.value, s.label) for s in Scope if s in allowed]
        self.fields["scopes"].initial = [
            s.value for s in (Scope.MODELS, Scope.INFERENCE) if s in allowed
        ]
        if self.role == Role.VIEWER:
            self.fields["scopes"].help_text = _(
                "As a viewer you may hold tokens that list and look up models."
            )
        if not self.role.at_least(Role.ADMIN):
            del self.fields["kind"]
        choices = selectors.model_choices(team)
        self.fields["allowed_models"].choices = choices
        if not choices:
            self.fields["allowed_models"].help_text = _(
                "No model list fetched yet: the token may use every model of the connection. "
                "Refresh a connection's models to limit it."
            )

    @property
    def is_service(self) -> bool:
        return self.cleaned_data.get("kind") == TokenKind.SERVICE

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        connection = cleaned.get("connection")
        models = cleaned.get("allowed_models") or []
        if connection is not None and models:
            offered = selectors.cached_model_ids(connection)
            missing = [m for m in models if m not in offered]
            if missing:
                self.add_error(
                    "allowed_models",
                    _("Not among the models of “%(connection)s”: %(models)s.")
                    % {"connection": connection.name, "models": ", ".join(missing)},
                )
        choice = cleaned.get("lifetime")
        now = timezone.now()
        if choice == CUSTOM_DATE:
            day = cleaned.get("expires_on")
            today = timezone.localdate(now)
            if day is None:
                self.add_error("expires_on", _("Choose the day the token expires."))
            elif day < today:
                self.add_error("expires_on", _("Choose a day from today on."))
            elif day > today + timedelta(days=MAX_LIFETIME.days):
                self.add_error("expires_on", _("A token lives at most a year."))
            else:
                # The end of the day, or a year from now if that comes first.
                cleaned["expiry"] = {"expires_at": min(end_of_day(day), now + MAX_LIFETIME)}
        elif choice:
            cleaned["expiry"] = {"lifetime": timedelta(days=int(choice))}
        return cleaned

    def service_kwargs(self) -> dict[str, Any]:
        """What `services.token_create` takes from the form (all but who makes it)."""
        data = self.cleaned_data
        return {
            "connection": data["connection"],
            "name": data["name"],
            "scopes": data["scopes"],
            "allowed_models": data.get("allowed_models") or [],
            **data["expiry"],
        }
