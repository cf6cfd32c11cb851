import ipaddress
from collections.abc import Callable

from django import forms
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db.models import Model, QuerySet
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

from accounts import selectors
from accounts.models import ROLE_DESCRIPTIONS, AuditAction, Membership, Role, Team, User
from accounts.services import assignable_roles


def _password_help() -> str:
    return " ".join(str(text) for text in password_validation.password_validators_help_texts())


# Plain sentences (not Django's HTML list), in the language of the request that shows them.
password_help = lazy(_password_help, str)


class TeamChoiceField(forms.ModelChoiceField):
    """A choice among one team's objects: `scope(team)` gives them, once the form knows its
    team (see TeamScopedForm). Until then the field offers nothing."""

    def __init__(self, scope: Callable[[Team], QuerySet], **kwargs) -> None:
        self.scope = scope
        super().__init__(queryset=None, **kwargs)


def of_team(model: type[Model], *order_by: str) -> Callable[[Team], QuerySet]:
    """The scope of a model with a `team` foreign key, in the given order."""
    return lambda team: model.objects.filter(team=team).order_by(*order_by)


class TeamScopedForm(forms.Form):
    """A form built for one team: `Form(data, team=team)` keeps `self.team` and makes each
    TeamChoiceField offer that team's objects only, so another team's object is refused as
    "not one of the available choices" and never shown."""

    def __init__(self, *args, team: Team, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.team = team
        for field in self.fields.values():
            if isinstance(field, TeamChoiceField):
                field.queryset = field.scope(team)


class EmailAuthenticationForm(auth_forms.AuthenticationForm):
    """Django's sign-in form, asking for the email address."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["username"]
        field.label = _("Email")
        field.widget = forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
        # Django sets max_length after the field is built, so nothing checks it on the server:
        # a megabyte-long address went on to the database lookup (a 500 on SQLite).
        field.validators.append(MaxLengthValidator(field.max_length))


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = password_help()


class SetPasswordForm(auth_forms.SetPasswordForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].help_text = password_help()


class NewAccountForm(forms.Form):
    """Email, name and a password typed twice, checked by Django's password validators."""

    email = forms.EmailField(
        label=_("Email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )
    name = forms.CharField(
        label=_("Name"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )
    password1 = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_help(),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError(_("An account with this email address already exists."))
        return email

    def clean(self):
        cleaned = super().clean()
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", _("The two passwords differ."))
        elif password2:
            person = User(email=cleaned.get("email") or "", name=cleaned.get("name") or "")
            try:
                password_validation.validate_password(password2, user=person)
            except ValidationError as error:
                self.add_error("password2", error)
        return cleaned


class SetupForm(NewAccountForm):
    team_name = forms.CharField(
        label=_("Team name"),
        max_length=100,
        help_text=_("You can create more teams later."),
    )


class InvitationSignUpForm(NewAccountForm):
    """A new account for an invited address: the email is the invitation's and cannot change."""

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, initial={"email": email}, **kwargs)
        self.fields["email"].disabled = True
        self.fields["email"].help_text = _("The address this invitation was sent to.")


class TeamForm(forms.Form):
    name = forms.CharField(label=_("Team name"), max_length=100)


class TeamDeleteForm(TeamScopedForm):
    confirm = forms.CharField(label=_("Type the team's name to confirm"), max_length=100)

    def clean_confirm(self) -> str:
        confirm = self.cleaned_data["confirm"].strip()
        if confirm != self.team.name:
            raise ValidationError(_("That is not the team's name."))
        return confirm


def _role_choices(actor_role: Role) -> list[tuple[str, str]]:
    return [(role.value, role.label) for role in assignable_roles(actor_role)]


class InviteForm(TeamScopedForm):
    email = forms.EmailField(label=_("Email"), max_length=254)
    role = forms.ChoiceField(label=_("Role"), initial=Role.VIEWER)

    def __init__(self, *args, team: Team, actor_role: Role, **kwargs):
        super().__init__(*args, team=team, **kwargs)
        self.fields["role"].choices = _role_choices(actor_role)

    def role_descriptions(self) -> list[tuple[str, str]]:
        """What each role offered here may do: (label, sentence)."""
        return [
            (label, ROLE_DESCRIPTIONS[Role(value)]) for value, label in self.fields["role"].choices
        ]

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if Membership.objects.filter(team=self.team, user__email__iexact=email).exists():
            raise ValidationError(_("This person is already a member of the team."))
        return email


class RoleForm(forms.Form):
    """Any role; whether the actor may give it is the service's decision (refused with a 403)."""

    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


class _UserChoiceField(TeamChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return f"{obj.name} <{obj.email}>" if obj.name else obj.email


def _team_users(team: Team) -> QuerySet[User]:
    return selectors.team_user_list(team=team)


class AuditFilterForm(TeamScopedForm):
    """The audit log's filters, bounded whatever the size of the team: a member and a
    connection are chosen from the log's own rows (links that set ?actor= and ?connection=,
    kept here as hidden fields) or found by a plain text search; actions are the fixed list."""

    actor = _UserChoiceField(_team_users, required=False, widget=forms.HiddenInput)
    who = forms.CharField(label=_("Member"), required=False, max_length=254)
    action = forms.ChoiceField(label=_("Action"), required=False)
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    target = forms.CharField(label=_("Target"), required=False, max_length=200)
    connection = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    connection_name = ""  # the chosen connection's name in the log, once valid

    def __init__(self, *args, team: Team, **kwargs):
        super().__init__(*args, team=team, **kwargs)
        named = sorted(AuditAction.choices, key=lambda choice: str(choice[1]))
        self.fields["action"].choices = [("", _("Any action")), *named]

    def clean_connection(self) -> str:
        value = self.cleaned_data["connection"].strip()
        if value:
            name = selectors.audit_connection_name(team=self.team, target_id=value)
            if name is None:
                raise ValidationError(_("Select a valid choice."), code="invalid_choice")
            self.connection_name = name
        return value

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", _("The end date is before the start date."))
        return cleaned

    def filters(self) -> dict:
        """Keyword arguments for selectors.audit_event_list from the valid fields."""
        data = getattr(self, "cleaned_data", {})
        actor = data.get("actor")
        return {
            "actor_id": actor.pk if actor else None,
            "who": (data.get("who") or "").strip(),
            "action": data.get("action") or None,
            "since": data.get("since"),
            "until": data.get("until"),
            "target": (data.get("target") or "").strip(),
            "connection_id": data.get("connection") or None,
        }


def axes_username(request, credentials: dict | None) -> str:
    """The address a sign-in attempt was for, as django-axes counts it (AXES_USERNAME_CALLABLE).

    Sign-in is case-insensitive, so the count is too: otherwise every capitalisation of an
    address would get its own allowance of attempts.
    """
    # Django's authenticate() passes the form's "username"; axes' own backend files the same
    # value under USERNAME_FIELD ("email"); the request has it as the posted "username".
    source = credentials or getattr(request, "data", None) or request.POST
    value = source.get("username") or source.get(User.USERNAME_FIELD) or ""
    return str(value).strip().lower()


def axes_client_ip(request) -> str | None:
    """The address a sign-in attempt came from, as django-axes counts it (AXES_CLIENT_IP_CALLABLE).

    Without a proxy that is REMOTE_ADDR, and X-Forwarded-For is ignored (anyone can send it).
    Behind `TABLERO_PROXY_COUNT` reverse proxies REMOTE_ADDR is the nearest proxy, the same for
    everyone: a stranger's failures would lock the user out from everywhere. Each proxy appends
    the address it was reached from to X-Forwarded-For, so the client is the entry that many
    places from the right; whatever stands further left came from the client and is not trusted.
    """
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.TABLERO_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [hop for hop in forwarded if hop]
    if len(forwarded) < proxies:
        return remote
    try:
        return str(ipaddress.ip_address(forwarded[-proxies]))
    except ValueError:
        return remote
