"""A team's connection to an OpenAI-compatible provider, and the errors it ran into.

The API key is stored encrypted (`connections.crypto`, bound to the row and field) and is only
ever shown masked (`sk-…abcd`) from a short non-secret prefix and the last four characters.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Team
from connections import crypto
from lib.choices import choice_label
from lib.severity import Severity
from provider.endpoint import Endpoint
from provider.errors import ErrorKind
from provider.secrets import last_four, mask

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# The unique index on (lower(name), team); a save that breaks it names it in its error.
NAME_CONSTRAINT = "connections_name_unique"


class Provider(models.TextChoices):
    OPENAI = "openai", _("OpenAI")
    AZURE = "azure", _("Azure OpenAI")
    COMPATIBLE = "compatible", _("OpenAI-compatible server")


class Health(models.TextChoices):
    UNCHECKED = "unchecked", _("Not checked yet")
    OK = "ok", _("Working")
    INVALID_KEY = "invalid_key", _("Invalid key")
    PERMISSION_DENIED = "permission_denied", _("Permission denied")
    NO_QUOTA = "no_quota", _("No quota left")
    RATE_LIMITED = "rate_limited", _("Rate limited")
    OVERLOADED = "overloaded", _("Provider overloaded")
    UNREACHABLE = "unreachable", _("Unreachable")
    KEY_UNREADABLE = "key_unreadable", _("Key unreadable")
    ERROR = "error", _("Error")


# Which health a failed check leaves a connection in.
HEALTH_FOR_KIND: dict[ErrorKind, Health] = {
    ErrorKind.INVALID_KEY: Health.INVALID_KEY,
    ErrorKind.PERMISSION_DENIED: Health.PERMISSION_DENIED,
    ErrorKind.NO_ORGANIZATION: Health.PERMISSION_DENIED,
    ErrorKind.WRONG_ORGANIZATION: Health.PERMISSION_DENIED,
    ErrorKind.IP_NOT_ALLOWED: Health.PERMISSION_DENIED,
    ErrorKind.QUOTA_EXHAUSTED: Health.NO_QUOTA,
    ErrorKind.RATE_LIMITED: Health.RATE_LIMITED,
    ErrorKind.OVERLOADED: Health.OVERLOADED,
    ErrorKind.TIMEOUT: Health.UNREACHABLE,
    ErrorKind.UNREACHABLE: Health.UNREACHABLE,
    ErrorKind.CONNECTION_DROPPED: Health.UNREACHABLE,
    ErrorKind.KEY_UNREADABLE: Health.KEY_UNREADABLE,
}


def health_for(kind: ErrorKind | str) -> Health:
    return HEALTH_FOR_KIND.get(ErrorKind(kind), Health.ERROR)


class RunApi(models.TextChoices):
    """The API through which assistants run on a connection: the one vocabulary of the admin's
    choice (`Connection.run_api`, which may also be AUTO), of what detection found
    (`Connection.detected_run_api`, UNKNOWN until then) and of a run's backend (`Run.backend`,
    one of the two APIs)."""

    AUTO = "auto", _("Detect automatically")
    UNKNOWN = "", _("Not detected yet")
    ASSISTANTS = "assistants", _("Assistants API")
    RESPONSES = "responses", _("Responses API")

    @classmethod
    def apis(cls) -> list["RunApi"]:
        """The two APIs themselves, without AUTO and UNKNOWN."""
        return [cls.ASSISTANTS, cls.RESPONSES]

    @classmethod
    def choices_of(cls, *members: "RunApi") -> list[tuple[str, str]]:
        return [(member.value, member.label) for member in members]


# What each field may hold, in the order its select offers it.
RUN_API_SETTINGS = (RunApi.AUTO, *RunApi.apis())
RUN_API_DETECTED = (RunApi.UNKNOWN, *RunApi.apis())


class RunApiReason(models.TextChoices):
    """Why the last detection of the run API ended as it did. `%(answer)s` is what the
    Assistants API answered ("HTTP 500", or "no answer")."""

    NONE = "", _("Not detected yet.")
    ASSISTANTS_ANSWERED = "assistants_answered", _("The Assistants API answered.")
    ASSISTANTS_NOT_OFFERED = (
        "assistants_not_offered",
        _("The Responses API answered; the Assistants API is not offered (%(answer)s)."),
    )
    ASSISTANTS_FAILED = (
        "assistants_failed",
        _("The Responses API answered; the Assistants API failed (%(answer)s)."),
    )
    RESPONSES_ASSUMED = (
        "responses_assumed",
        _(
            "The Assistants API is not offered (%(answer)s) and the Responses API gave no clear "
            "answer: the Responses API is assumed. Test the connection again to confirm."
        ),
    )
    NEITHER = (
        "neither",
        _(
            "Neither run API is offered: the Assistants API answered %(answer)s and the "
            "Responses API is not there either. Assistants cannot run on this server."
        ),
    )
    PENDING = (
        "pending",
        _(
            "Detection pending: the Assistants API gave no clear answer (%(answer)s). The "
            "previous detection is kept; test the connection again later."
        ),
    )


def _prefix_of(secret: str) -> str:
    """The non-secret part `mask` shows before the ellipsis (e.g. "sk-")."""
    return mask(secret).split("…", 1)[0][:20]


class Connection(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="connections")
    name = models.CharField(_("name"), max_length=100)
    provider = models.CharField(
        _("provider"), max_length=20, choices=Provider.choices, default=Provider.OPENAI
    )
    base_url = models.CharField(_("base URL"), max_length=500, default=DEFAULT_BASE_URL)
    organization_id = models.CharField(_("organization ID"), max_length=100, blank=True)
    project_id = models.CharField(_("project ID"), max_length=100, blank=True)
    api_version = models.CharField(_("API version"), max_length=40, blank=True)

    # Secrets: ciphertext only, never displayed, never in a form.
    api_key_encrypted = models.TextField(editable=False)
    api_key_prefix = models.CharField(max_length=20, blank=True, editable=False)
    api_key_last4 = models.CharField(max_length=4, blank=True, editable=False)
    admin_key_encrypted = models.TextField(blank=True, editable=False)
    admin_key_prefix = models.CharField(max_length=20, blank=True, editable=False)
    admin_key_last4 = models.CharField(max_length=4, blank=True, editable=False)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    health = models.CharField(
        _("health"), max_length=20, choices=Health.choices, default=Health.UNCHECKED
    )
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)
    last_error_kind = models.CharField(_("last error kind"), max_length=32, blank=True)

    run_api = models.CharField(
        _("run API"),
        max_length=20,
        choices=RunApi.choices_of(*RUN_API_SETTINGS),
        default=RunApi.AUTO,
    )
    detected_run_api = models.CharField(
        _("detected run API"),
        max_length=20,
        choices=RunApi.choices_of(*RUN_API_DETECTED),
        default=RunApi.UNKNOWN,
        blank=True,
    )
    # Why the last detection ended as it did, what the Assistants API answered then (its HTTP
    # status, or None for no answer), and when it ran.
    run_api_reason = models.CharField(
        _("run API detection"),
        max_length=32,
        choices=RunApiReason.choices,
        default=RunApiReason.NONE,
        blank=True,
    )
    run_api_status = models.PositiveSmallIntegerField(
        _("Assistants API answer"), null=True, blank=True
    )
    run_api_checked_at = models.DateTimeField(_("run API detected"), null=True, blank=True)

    # Last x-ratelimit-* headers seen (as RateLimit.as_dict()) plus "captured_at".
    rate_limit = models.JSONField(_("rate limit"), default=dict, blank=True)
    models_cache = models.JSONField(_("models"), default=list, blank=True)
    models_cached_at = models.DateTimeField(_("models fetched"), null=True, blank=True)
    # This month's spend as the costs page last fetched it with the admin key it names
    # ({"month": "2026-11", "amounts": {"usd": "12.34"}, "fetched_at": ISO 8601}), so the home
    # page knows it in every process and after a restart without asking the provider.
    month_spend = models.JSONField(_("spend this month"), default=dict, blank=True)

    class Meta:
        verbose_name = _("connection")
        verbose_name_plural = _("connections")
        ordering = ["name"]
        indexes = [
            # The connections list and every choice of a connection: the team's, by name.
            models.Index(fields=["team", "name"], name="connections_team_name"),
            # The team home's health counts (GROUP BY health within the team, from the index).
            models.Index(fields=["team", "health"], name="connections_team_health"),
        ]
        constraints = [
            # "Production" and "production" are one name, as the forms already say.
            models.UniqueConstraint(
                Lower("name"),
                "team",
                name=NAME_CONSTRAINT,
                violation_error_message=_("This team already has a connection with this name."),
            ),
            models.CheckConstraint(
                condition=models.Q(provider__in=Provider.values),
                name="connections_provider_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(health__in=Health.values), name="connections_health_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(run_api__in=RUN_API_SETTINGS), name="connections_run_api_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(detected_run_api__in=RUN_API_DETECTED),
                name="connections_detected_run_api_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(run_api_reason__in=RunApiReason.values),
                name="connections_run_api_reason_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    # --- secrets -------------------------------------------------------------------------

    def _context(self, field: str) -> str:
        return f"connections.Connection:{self.pk}:{field}"

    def api_key(self) -> str:
        """The decrypted API key. Raises crypto.DecryptionError; never returns ciphertext."""
        return crypto.decrypt(self.api_key_encrypted, context=self._context("api_key"))

    def admin_key(self) -> str:
        """The decrypted admin key ("" when none is stored). Raises crypto.DecryptionError."""
        if not self.admin_key_encrypted:
            return ""
        return crypto.decrypt(self.admin_key_encrypted, context=self._context("admin_key"))

    def set_api_key(self, key: str) -> None:
        self.api_key_encrypted = crypto.encrypt(key, context=self._context("api_key"))
        self.api_key_prefix = _prefix_of(key)
        self.api_key_last4 = last_four(key)

    def set_admin_key(self, key: str) -> None:
        self.month_spend = {}  # it was read with the key being replaced
        if not key:
            self.admin_key_encrypted = self.admin_key_prefix = self.admin_key_last4 = ""
            return
        self.admin_key_encrypted = crypto.encrypt(key, context=self._context("admin_key"))
        # OpenAI's admin keys all start "sk-admin-": showing it says which kind is stored.
        self.admin_key_prefix = "sk-admin-" if key.startswith("sk-admin-") else _prefix_of(key)
        self.admin_key_last4 = last_four(key)

    # Lists show these on every row (lib.choices: cheaper than Django's own).
    def get_provider_display(self) -> object:
        return choice_label(Provider, self.provider)

    def get_health_display(self) -> object:
        return choice_label(Health, self.health)

    @property
    def masked_key(self) -> str:
        return f"{self.api_key_prefix}…{self.api_key_last4}" if self.api_key_encrypted else ""

    @property
    def masked_admin_key(self) -> str:
        if not self.admin_key_encrypted:
            return ""
        return f"{self.admin_key_prefix}…{self.admin_key_last4}"

    @property
    def has_admin_key(self) -> bool:
        return bool(self.admin_key_encrypted)

    def endpoint(self, *, admin: bool = False) -> Endpoint:
        """What the client needs to reach the provider. Raises crypto.DecryptionError."""
        return Endpoint(
            base_url=self.base_url,
            api_key=self.admin_key() if admin else self.api_key(),
            provider=self.provider,
            organization=self.organization_id,
            project=self.project_id,
            api_version=self.api_version,
        )

    # --- display -------------------------------------------------------------------------

    @property
    def health_severity(self) -> Severity:
        """The badge colour for the health."""
        if self.health == Health.OK:
            return Severity.OK
        if self.health == Health.UNCHECKED:
            return Severity.MUTED
        if self.health in (Health.RATE_LIMITED, Health.OVERLOADED, Health.UNREACHABLE):
            return Severity.WARN
        return Severity.DANGER

    @property
    def effective_run_api(self) -> str:
        """The run API in use: the admin's choice, else the detected one ("" if unknown)."""
        return self.detected_run_api if self.run_api == RunApi.AUTO else self.run_api

    @property
    def run_api_explanation(self) -> str:
        """What the last run-API detection found and why, in the user's language."""
        if self.run_api_status:
            answer = _("HTTP %(status)s") % {"status": self.run_api_status}
        else:
            answer = _("no answer")
        return str(RunApiReason(self.run_api_reason).label) % {"answer": answer}

    @property
    def run_api_pending(self) -> bool:
        return self.run_api_reason in (RunApiReason.PENDING, RunApiReason.RESPONSES_ASSUMED)


class ErrorOperation(models.TextChoices):
    """What Tablero was doing when the provider failed (`ConnectionErrorEvent.operation`). The
    value is stored; the label completes "Failed while …" on the pages that list errors."""

    CONNECTION_CREATE = "connection.create", _("adding the connection")
    CONNECTION_TEST = "connection.test", _("testing the connection")
    CONNECTION_REPLACE_KEY = "connection.replace_key", _("replacing the key")
    MODELS_LIST = "models.list", _("listing models")
    MODELS_RETRIEVE = "models.retrieve", _("reading a model")
    COSTS_LIST = "costs.list", _("fetching costs")
    ASSISTANT_CREATE = "assistant.create", _("creating an assistant")
    ASSISTANT_UPDATE = "assistant.update", _("saving an assistant")
    ASSISTANT_SYNC = "assistant.sync", _("syncing an assistant")
    ASSISTANT_DELETE = "assistant.delete", _("deleting an assistant")
    ASSISTANT_DISCARD = "assistant.discard", _("removing a stray remote copy")
    ASSISTANT_IMPORT = "assistant.import", _("importing assistants")
    RUN_START = "run.start", _("starting a run")
    RUN_REFRESH = "run.refresh", _("checking a run")
    RUN_CANCEL = "run.cancel", _("cancelling a run")


class ConnectionErrorEvent(models.Model):
    """One failed call to the provider, kept for the connection page (admins only)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="error_events"
    )
    kind = models.CharField(
        _("kind"), max_length=32, choices=[(k.value, k.value) for k in ErrorKind]
    )
    code = models.CharField(_("code"), max_length=100, blank=True)
    status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    request_id = models.CharField(_("request ID"), max_length=200, blank=True)
    message = models.TextField(_("message"), blank=True)
    operation = models.CharField(_("operation"), max_length=64, choices=ErrorOperation.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("provider error")
        verbose_name_plural = _("provider errors")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["connection", "-created_at"], name="connections_error_recent"),
            # The error history groups a connection's events by operation, kind and code
            # (count, first and last seen), and then reads each group's latest event: both
            # from this index alone, without sorting the connection's events.
            models.Index(
                fields=["connection", "operation", "kind", "code", "created_at"],
                name="connections_error_groups",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=[k.value for k in ErrorKind]),
                name="connections_error_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.operation}: {self.kind}"


class CostSnapshot(models.Model):
    """The last costs report fetched for a connection and a grouping (connections.costs), kept
    where the web process and the task consumer both see it, so the costs page shows it
    without asking the provider. `key_digest` names the admin key it was read with: a
    replaced key never shows the old key's figures. A failed fetch keeps the report and
    notes the failure (`error_kind`, `error_at`) for the page to explain."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="cost_snapshots"
    )
    group = models.CharField(_("grouping"), max_length=32)
    key_digest = models.CharField(max_length=64, editable=False)
    report = models.JSONField(_("report"), null=True, blank=True)
    fetched_at = models.DateTimeField(_("fetched at"), null=True, blank=True)
    error_kind = models.CharField(_("last failure"), max_length=32, blank=True)
    # The provider's own message, keys masked (ProviderError.message), for admins only.
    error_message = models.TextField(_("provider's message"), blank=True)
    error_at = models.DateTimeField(_("failed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("costs report")
        verbose_name_plural = _("costs reports")
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "group"], name="connections_cost_snapshot_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}: {self.group}"


class TaskFailure(models.Model):
    """A background task that failed (raised, timed out, expired or was interrupted), noted by
    lib.taskqueue's signal handler for the admin site. Only what is safe to show: the task's
    name and id, its arguments where they are plain ids, the error's class and its message
    with anything shaped like a key masked. Deleted with the provider errors, after
    TABLERO_ERROR_RETENTION."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    task_name = models.CharField(_("task"), max_length=200)
    task_id = models.CharField(_("task ID"), max_length=64)
    arguments = models.TextField(_("arguments"), blank=True)
    signal = models.CharField(_("what happened"), max_length=32)
    error_class = models.CharField(_("error"), max_length=200, blank=True)
    message = models.TextField(_("message"), blank=True)
    retries_left = models.PositiveSmallIntegerField(_("retries left"), default=0)
    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("failed task")
        verbose_name_plural = _("failed tasks")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.task_name}: {self.error_class or self.signal}"
