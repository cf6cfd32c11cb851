"""Forms for connections. A key field never renders its value back into the page."""

from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.forms import TeamScopedForm
from accounts.models import Team
from connections.guard import url_guard
from connections.model_catalog import Purpose
from connections.models import DEFAULT_BASE_URL, RUN_API_SETTINGS, Connection, Provider, RunApi
from provider.urlguard import Refusal, URLRefused


def _key_field(label, help_text, *, required: bool = True) -> forms.CharField:
    return forms.CharField(
        label=label,
        help_text=help_text,
        required=required,
        strip=True,
        max_length=500,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
    )


def clean_key(value: str) -> str:
    if not value:
        return value
    if any(ch.isspace() for ch in value):
        raise ValidationError(_("A key has no spaces or line breaks. Paste the key alone."))
    if "…" in value or "*" in value:
        raise ValidationError(
            _("This looks like a masked key. Paste the full key from the provider.")
        )
    if len(value) < 8:
        raise ValidationError(_("This is too short to be an API key."))
    return value


def clean_header_id(value: str) -> str:
    """An organization or project ID: it travels in an HTTP header, so ASCII without spaces."""
    value = value.strip()
    if value and not all("!" <= ch <= "~" for ch in value):
        raise ValidationError(
            _(
                "An ID has only letters, digits and signs such as - or _, without spaces or "
                "accents. Copy it again from the provider's settings page."
            )
        )
    return value


# Refusals an operator can lift by allowing the host (a server on this machine or network).
OPERATOR_CAN_ALLOW = (Refusal.NOT_HTTPS, Refusal.LOCAL_NAME, Refusal.PRIVATE_ADDRESS)


def _allow_entry(url: str) -> str:
    """How the URL's host would be written in TABLERO_ALLOWED_UPSTREAM_HOSTS: host[:port]."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if host and port else host


def clean_url(value: str) -> str:
    value = value.strip()
    try:
        return url_guard().validate_base_url(value)
    except URLRefused as error:
        reasons = [error.reason]
        entry = _allow_entry(value)
        if error.refusal in OPERATOR_CAN_ALLOW and entry:
            reasons.append(
                _(
                    "If this is a server of your own (on this machine or your network), the "
                    "person who runs Tablero can allow it: add %(entry)s to "
                    "TABLERO_ALLOWED_UPSTREAM_HOSTS in Tablero's environment and restart it."
                )
                % {"entry": entry}
            )
        raise ValidationError(reasons) from None


class HeaderIdsMixin:
    """For forms with organization_id and project_id fields (the pages and the admin)."""

    cleaned_data: dict

    def clean_organization_id(self) -> str:
        return clean_header_id(self.cleaned_data["organization_id"])

    def clean_project_id(self) -> str:
        return clean_header_id(self.cleaned_data["project_id"])


def clean_connection_name(name: str, *, team: Team, instance: Connection | None = None) -> str:
    """`name` stripped, if no other connection of the team has it, whatever its case (the
    database says the same when saving; this says it in the form first)."""
    name = name.strip()
    others = Connection.objects.filter(team=team, name__iexact=name)
    if instance is not None:
        others = others.exclude(pk=instance.pk)
    if others.exists():
        raise ValidationError(_("This team already has a connection with this name."))
    return name


class _NameMixin:
    team: Team
    instance: Connection | None = None

    def clean_name(self) -> str:
        return clean_connection_name(
            self.cleaned_data["name"], team=self.team, instance=self.instance
        )


class ConnectionCreateForm(_NameMixin, HeaderIdsMixin, TeamScopedForm):
    # The key first: it is what the person came with; the rest has defaults.
    field_order = [
        "api_key",
        "name",
        "provider",
        "base_url",
        "api_version",
        "organization_id",
        "project_id",
        "save_anyway",
    ]
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("How your team will recognise it, e.g. “Production” or “Research”."),
    )
    provider = forms.ChoiceField(label=_("Provider"), choices=Provider.choices)
    base_url = forms.CharField(
        label=_("Base URL"),
        max_length=500,
        initial=DEFAULT_BASE_URL,
        help_text=_("Leave as it is for OpenAI. Other servers: their address ending in /v1."),
    )
    organization_id = forms.CharField(
        label=_("Organization ID"),
        max_length=100,
        required=False,
        help_text=_("Optional. Starts with “org-”; found in your OpenAI organization settings."),
    )
    project_id = forms.CharField(
        label=_("Project ID"),
        max_length=100,
        required=False,
        help_text=_("Optional. Starts with “proj_”."),
    )
    api_version = forms.CharField(
        label=_("API version"),
        max_length=40,
        required=False,
        help_text=_("Azure OpenAI only, e.g. 2024-10-21. Leave it empty for other providers."),
        # tablero.js hides the field unless the provider chosen is Azure.
        widget=forms.TextInput(attrs={"data-show-if": f"provider={Provider.AZURE}"}),
    )
    api_key = _key_field(
        _("API key"),
        _("Create one on the provider's API keys page. It is stored encrypted and never shown."),
    )
    save_anyway = forms.BooleanField(
        label=_("Save even if the check fails"),
        required=False,
        help_text=_("Tablero checks the key by listing the models before saving."),
    )

    def clean_base_url(self) -> str:
        return clean_url(self.cleaned_data["base_url"])

    def clean_api_key(self) -> str:
        return clean_key(self.cleaned_data["api_key"])

    def clean(self) -> dict:
        cleaned = super().clean()
        # Only Azure sends an API version; one left in the hidden field means nothing.
        if cleaned.get("provider") != Provider.AZURE:
            cleaned["api_version"] = ""
        return cleaned


class ConnectionEditForm(_NameMixin, HeaderIdsMixin, TeamScopedForm):
    name = forms.CharField(label=_("Name"), max_length=100)
    organization_id = forms.CharField(label=_("Organization ID"), max_length=100, required=False)
    project_id = forms.CharField(label=_("Project ID"), max_length=100, required=False)
    api_version = forms.CharField(
        label=_("API version"),
        max_length=40,
        required=False,
        help_text=_("Azure OpenAI only."),
    )
    run_api = forms.ChoiceField(
        label=_("Run assistants through"),
        choices=RunApi.choices_of(*RUN_API_SETTINGS),
        help_text=_(
            "“Detect automatically” uses what the last test found. The Assistants API is "
            "gone from api.openai.com; other servers may still offer it."
        ),
    )

    def __init__(self, *args, team: Team, instance: Connection, **kwargs) -> None:
        kwargs.setdefault(
            "initial",
            {
                "name": instance.name,
                "organization_id": instance.organization_id,
                "project_id": instance.project_id,
                "api_version": instance.api_version,
                "run_api": instance.run_api,
            },
        )
        super().__init__(*args, team=team, **kwargs)
        self.instance = instance
        if instance.provider != Provider.AZURE and not instance.api_version:
            del self.fields["api_version"]  # only Azure has one

    def clean(self) -> dict:
        cleaned = super().clean()
        cleaned.setdefault("api_version", self.instance.api_version)
        return cleaned


class ReplaceKeyForm(forms.Form):
    api_key = _key_field(
        _("New API key"), _("The old key is overwritten. It is stored encrypted and never shown.")
    )
    base_url = forms.CharField(
        label=_("Base URL"),
        max_length=500,
        required=False,
        help_text=_("Change it only if the key belongs to another server."),
    )
    save_anyway = forms.BooleanField(label=_("Save even if the check fails"), required=False)

    def __init__(self, *args, instance: Connection, **kwargs) -> None:
        kwargs.setdefault("initial", {"base_url": instance.base_url})
        super().__init__(*args, **kwargs)
        self.instance = instance

    def clean_api_key(self) -> str:
        return clean_key(self.cleaned_data["api_key"])

    def clean_base_url(self) -> str:
        value = self.cleaned_data["base_url"].strip()
        return clean_url(value) if value else self.instance.base_url


class BaseUrlChangeForm(ReplaceKeyForm):
    """The edit page's way to change the base URL: the same request as "Replace key" (posted
    to it), with the URL first and the key asked again for the new server."""

    field_order = ["base_url", "api_key", "save_anyway"]

    def __init__(self, *args, instance: Connection, **kwargs) -> None:
        super().__init__(*args, instance=instance, **kwargs)
        self.fields["base_url"].label = _("New base URL")
        self.fields["base_url"].help_text = _("The server's address, ending in /v1.")
        self.fields["api_key"].label = _("API key for this server")
        self.fields["api_key"].help_text = _(
            "The key the new server accepts (it may be the same key)."
        )


class ModelSearchForm(forms.Form):
    """The models page's search: a plain GET form (works without JavaScript)."""

    q = forms.CharField(label=_("Search models"), max_length=100, required=False)
    purpose = forms.ChoiceField(
        label=_("Used for"),
        choices=[("", _("Anything")), *Purpose.choices],
        required=False,
    )


ADMIN_KEY_PREFIX = "sk-admin-"


class AdminKeyForm(forms.Form):
    admin_key = _key_field(
        _("Admin key"),
        _("Starts with “sk-admin-”. It is stored encrypted and never shown again."),
    )

    def clean_admin_key(self) -> str:
        key = clean_key(self.cleaned_data["admin_key"])
        if not key.startswith(ADMIN_KEY_PREFIX):
            raise ValidationError(
                _(
                    "An admin key starts with “sk-admin-”. An ordinary API key cannot read "
                    "the organization's costs."
                )
            )
        return key
