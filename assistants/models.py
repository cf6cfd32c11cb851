"""Assistants (local records, mirrored remotely where the Assistants API still exists) and runs
(local records of remote runs or background responses).

On delete:
- `Assistant.connection` CASCADE: an assistant belongs to one connection (its remote copy, if
  any, lives on that provider account). Deleting the connection removes the local records;
  remote assistants stay on the provider, and the connection's delete page says so.
- `Run.assistant` SET_NULL: a run is history (who ran what, what it cost, what it said); it
  outlives its assistant and keeps the assistant's name in `assistant_name`.
- `Run.connection` CASCADE: without the connection a run can neither be polled nor cancelled.
- `Run.conversation` CASCADE: a run is one turn of a conversation, and points at the
  conversation's first turn (the first turn at itself); the turns go with it.

Conversations. A run page can be continued with a follow-up message: each follow-up is a new
`Run` (a turn: its own status, tokens, errors and timing, started and followed by the same
tasks as any run), in the same conversation, numbered on (`turn`). On the Assistants API a
follow-up is a new run on the conversation's thread; on the Responses API a new response whose
`previous_response_id` is the last answered turn's. Only the newest turn of a conversation has
`is_latest` (a database constraint): the lists show a conversation once, by its newest turn.
"""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_init
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Team
from connections.models import Connection, RunApi
from lib.choices import choice_label
from lib.severity import Severity


class SyncState(models.TextChoices):
    PENDING = "pending", _("Pending")
    SYNCED = "synced", _("Synced")
    FAILED = "failed", _("Sync failed")
    GONE = "gone", _("Gone remotely")


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    IN_PROGRESS = "in_progress", _("In progress")
    REQUIRES_ACTION = "requires_action", _("Requires action")
    CANCELLING = "cancelling", _("Cancelling")
    CANCELLED = "cancelled", _("Cancelled")
    FAILED = "failed", _("Failed")
    COMPLETED = "completed", _("Completed")
    INCOMPLETE = "incomplete", _("Incomplete")
    EXPIRED = "expired", _("Expired")


TERMINAL_STATUSES = frozenset(
    {
        RunStatus.CANCELLED,
        RunStatus.FAILED,
        RunStatus.COMPLETED,
        RunStatus.INCOMPLETE,
        RunStatus.EXPIRED,
    }
)
CANCELLABLE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.IN_PROGRESS})
# Not ended, as far as the provider says.
ACTIVE_STATUSES = frozenset(set(RunStatus) - TERMINAL_STATUSES)

STATUS_SEVERITY = {
    RunStatus.COMPLETED: Severity.OK,
    RunStatus.FAILED: Severity.DANGER,
    RunStatus.EXPIRED: Severity.DANGER,
    RunStatus.INCOMPLETE: Severity.WARN,
    RunStatus.CANCELLED: Severity.MUTED,
    RunStatus.REQUIRES_ACTION: Severity.WARN,
}

SYNC_SEVERITY = {
    SyncState.SYNCED: Severity.OK,
    SyncState.PENDING: Severity.MUTED,
    SyncState.FAILED: Severity.DANGER,
    SyncState.GONE: Severity.WARN,
}


# A push to the provider claims the assistant first (`sync_claimed_at`); a claim older than this
# belongs to a request that died mid-call (the client gives up long before) and is taken over.
SYNC_CLAIM_TTL = timedelta(minutes=2)

# Ids the provider gives (assistants, threads, runs, responses, models) are kept whole, up to
# this length: LiteLLM's background response ids are about 470 characters. A longer one is
# refused as a bad answer where it is read (`assistants.backends`), never cut.
PROVIDER_ID_MAX_LENGTH = 1024

TOOL_TYPES = ("code_interpreter", "file_search", "function")
METADATA_MAX_PAIRS = 16


def validate_tools(value) -> None:
    """A list of tools in the Assistants API v2 shape."""
    if not isinstance(value, list) or len(value) > 128:
        raise ValidationError(_("Tools must be a list of at most 128 tools."))
    for tool in value:
        if not isinstance(tool, dict) or tool.get("type") not in TOOL_TYPES:
            raise ValidationError(_("Each tool is code_interpreter, file_search or function."))
        function = tool.get("function")
        if tool["type"] == "function" and not (
            isinstance(function, dict) and isinstance(function.get("name"), str)
        ):
            raise ValidationError(_("A function tool needs a function with a name."))


def validate_metadata(value) -> None:
    """At most 16 pairs of text, as the provider allows (keys up to 64, values up to 512)."""
    if not isinstance(value, dict) or len(value) > METADATA_MAX_PAIRS:
        raise ValidationError(_("Metadata is at most 16 key-value pairs."))
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 64 or len(item) > 512:
            raise ValidationError(
                _("Metadata keys are up to 64 characters, values text up to 512.")
            )


class Assistant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="assistants")
    connection = models.ForeignKey(
        Connection,
        on_delete=models.CASCADE,
        related_name="assistants",
        verbose_name=_("connection"),
    )
    name = models.CharField(_("name"), max_length=256)
    description = models.CharField(_("description"), max_length=512, blank=True)
    instructions = models.TextField(_("instructions"), max_length=256000, blank=True)
    model = models.CharField(_("model"), max_length=PROVIDER_ID_MAX_LENGTH)
    # The Assistants API v2 shape: {"type": "code_interpreter"}, {"type": "file_search"},
    # {"type": "function", "function": {"name", "description", "parameters"}}.
    tools = models.JSONField(_("tools"), default=list, blank=True, validators=[validate_tools])
    temperature = models.FloatField(
        _("temperature"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(2)],
    )
    top_p = models.FloatField(
        _("top p"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
    )
    metadata = models.JSONField(
        _("metadata"), default=dict, blank=True, validators=[validate_metadata]
    )

    remote_id = models.CharField(_("remote ID"), max_length=PROVIDER_ID_MAX_LENGTH, blank=True)
    sync_state = models.CharField(
        _("sync state"), max_length=10, choices=SyncState.choices, default=SyncState.PENDING
    )
    last_error_kind = models.CharField(_("last error kind"), max_length=32, blank=True)
    last_error = models.CharField(_("last error"), max_length=300, blank=True)
    last_synced_at = models.DateTimeField(_("last synced"), null=True, blank=True)
    # Set while a request brings the remote copy in line, so that a second one (a double click
    # on "Retry sync") does not create a second remote copy. See SYNC_CLAIM_TTL.
    sync_claimed_at = models.DateTimeField(_("sync started"), null=True, blank=True, editable=False)
    # Set, in a transaction of its own, just before a create is sent to the provider, and
    # cleared once the outcome is known (a remote copy recorded, or a clear refusal): a push
    # that finds it set does not know whether that create made a copy (its consumer was killed
    # waiting for the answer), so it looks for the copy by its tag before creating again.
    create_sent_at = models.DateTimeField(_("create sent"), null=True, blank=True, editable=False)
    # The one-time token of the form that created it: the same form sent twice (a double click,
    # back and resubmit) finds this assistant instead of creating another.
    submission_token = models.UUIDField(
        _("submission token"), null=True, blank=True, editable=False
    )

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

    class Meta:
        verbose_name = _("assistant")
        verbose_name_plural = _("assistants")
        ordering = ["name", "created_at"]
        indexes = [
            models.Index(fields=["team", "-created_at"], name="assistants_team_recent"),
            # The assistants list: the team's, by name (a page of it without a sort).
            models.Index(fields=["team", "name", "created_at"], name="assistants_team_name"),
            # The list filtered by a connection (?connection=, the rows' connection links), by
            # name: one connection's page without sorting all its assistants, whatever its
            # share of the team (the team index above serves it only when most are on it).
            models.Index(
                fields=["connection", "name", "created_at"], name="assistants_connection_name"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(sync_state__in=SyncState.values),
                name="assistants_assistant_sync_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(temperature__isnull=True) | Q(temperature__gte=0, temperature__lte=2),
                name="assistants_assistant_temperature_range",
            ),
            models.CheckConstraint(
                condition=Q(top_p__isnull=True) | Q(top_p__gte=0, top_p__lte=1),
                name="assistants_assistant_top_p_range",
            ),
            models.CheckConstraint(
                condition=~Q(name=""), name="assistants_assistant_name_not_empty"
            ),
            # One local record per remote assistant on a connection.
            models.UniqueConstraint(
                fields=["connection", "remote_id"],
                condition=~Q(remote_id=""),
                name="assistants_assistant_remote_unique",
            ),
            models.UniqueConstraint(
                fields=["team", "submission_token"],
                name="assistants_assistant_submitted_once",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """An assistant belongs to its connection's team (no database constraint can say
        so across two tables; the services and the admin site call this)."""
        if self.team_id and self.connection_id and self.connection.team_id != self.team_id:
            raise ValidationError(
                {"connection": _("This connection belongs to another team than the assistant.")}
            )

    def get_sync_state_display(self) -> object:  # on every row of the list (lib.choices)
        return choice_label(SyncState, self.sync_state)

    @property
    def sync_severity(self) -> Severity:
        return SYNC_SEVERITY.get(SyncState(self.sync_state), Severity.MUTED)

    @property
    def sync_in_progress(self) -> bool:
        """Whether a request is bringing the remote copy in line right now."""
        return (
            self.sync_claimed_at is not None
            and timezone.now() - self.sync_claimed_at < SYNC_CLAIM_TTL
        )

    @property
    def tool_types(self) -> list[str]:
        return [tool.get("type", "") for tool in self.tools if isinstance(tool, dict)]

    @property
    def function_names(self) -> list[str]:
        return [
            tool["function"].get("name", "")
            for tool in self.tools
            if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
        ]


class Run(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="runs")
    assistant = models.ForeignKey(
        Assistant,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="runs",
        verbose_name=_("assistant"),
    )
    # Kept so the run still reads after the assistant is deleted.
    assistant_name = models.CharField(_("assistant name"), max_length=256, blank=True)
    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="runs", verbose_name=_("connection")
    )
    backend = models.CharField(
        _("run API"), max_length=12, choices=RunApi.choices_of(*RunApi.apis())
    )
    input = models.TextField(_("message"), max_length=32000)
    status = models.CharField(
        _("status"), max_length=20, choices=RunStatus.choices, default=RunStatus.QUEUED
    )

    thread_id = models.CharField(_("thread ID"), max_length=PROVIDER_ID_MAX_LENGTH, blank=True)
    remote_run_id = models.CharField(_("run ID"), max_length=PROVIDER_ID_MAX_LENGTH, blank=True)
    response_id = models.CharField(_("response ID"), max_length=PROVIDER_ID_MAX_LENGTH, blank=True)

    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("started by"),
    )
    created_at = models.DateTimeField(_("started"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    completed_at = models.DateTimeField(_("finished"), null=True, blank=True)
    last_polled_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    # Tablero asks about the run until then (see `poll_deadline`): the provider's own
    # `expires_at` when it gives one, at most TABLERO_RUN_POLL_LIMIT after the start.
    poll_until = models.DateTimeField(_("checked until"), null=True, blank=True)
    # What the provider last said (`status` is Tablero's word: an unfinished run whose deadline
    # passed is `expired` here while the provider may still say `in_progress`).
    remote_status = models.CharField(
        _("status at the provider"), max_length=20, choices=RunStatus.choices, blank=True
    )

    input_tokens = models.PositiveIntegerField(_("input tokens"), null=True, blank=True)
    output_tokens = models.PositiveIntegerField(_("output tokens"), null=True, blank=True)
    total_tokens = models.PositiveIntegerField(_("total tokens"), null=True, blank=True)
    output_text = models.TextField(_("output"), blank=True)

    last_error_code = models.CharField(_("error code"), max_length=100, blank=True)
    last_error_message = models.TextField(_("error message"), max_length=2000, blank=True)
    last_error_kind = models.CharField(_("error kind"), max_length=32, blank=True)
    # Set, in a transaction of its own, just before the start is sent to the provider (never
    # twice: a compare-and-swap). A queued run with no provider id that has it set was sent and
    # its answer never read (the consumer was killed): whether the provider started it cannot
    # be told, so it is not started again (assistants.services.runs.run_start_lost).
    start_sent_at = models.DateTimeField(_("start sent"), null=True, blank=True, editable=False)
    # The one-time token of the "Run" form that started it (see Assistant.submission_token).
    submission_token = models.UUIDField(
        _("submission token"), null=True, blank=True, editable=False
    )

    # The conversation's first turn (this run itself, for a first turn: see `_own_conversation`).
    conversation = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        blank=True,
        related_name="turns",
        verbose_name=_("conversation"),
        editable=False,
    )
    turn = models.PositiveIntegerField(_("turn"), default=1, editable=False)
    # The newest turn of its conversation (exactly one per conversation).
    is_latest = models.BooleanField(_("newest turn"), default=True, editable=False)
    # Sent again after the turn before it failed: on the Assistants API, a failed run's message
    # is in the thread already, so the new run is made without adding it a second time.
    is_retry = models.BooleanField(_("retry"), default=False, editable=False)

    class Meta:
        verbose_name = _("run")
        verbose_name_plural = _("runs")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["team", "-created_at"], name="assistants_run_team_recent"),
            models.Index(fields=["assistant", "-created_at"], name="assistants_run_asst_recent"),
            # The runs list filtered by status, and the team home's active runs.
            models.Index(
                fields=["team", "status", "-created_at"], name="assistants_run_team_status"
            ),
            # The runs list: one row per conversation, its newest turn.
            models.Index(
                fields=["team", "-created_at"],
                condition=Q(is_latest=True),
                name="assistants_run_team_convos",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="assistants_run_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(backend__in=RunApi.apis()), name="assistants_run_backend_valid"
            ),
            # An Assistants API run has no response id, a Responses API run no thread or run id.
            models.CheckConstraint(
                condition=Q(backend=RunApi.ASSISTANTS, response_id="")
                | Q(backend=RunApi.RESPONSES, thread_id="", remote_run_id=""),
                name="assistants_run_ids_match_backend",
            ),
            models.CheckConstraint(condition=~Q(input=""), name="assistants_run_input_not_empty"),
            models.UniqueConstraint(
                fields=["team", "submission_token"], name="assistants_run_submitted_once"
            ),
            # Two follow-ups sent at once: one of them becomes the next turn, never both.
            models.UniqueConstraint(
                fields=["conversation", "turn"], name="assistants_run_turn_once"
            ),
            models.UniqueConstraint(
                fields=["conversation"],
                condition=Q(is_latest=True),
                name="assistants_run_one_latest_turn",
            ),
            models.CheckConstraint(condition=Q(turn__gte=1), name="assistants_run_turn_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.assistant_name or _('Run')} · {self.created_at:%Y-%m-%d %H:%M}"

    def clean_fields(self, exclude=None) -> None:
        # A first turn is its own conversation: not in the database yet when it is checked.
        if self.conversation_id == self.pk:
            exclude = {*(exclude or ()), "conversation"}
        super().clean_fields(exclude=exclude)

    def clean(self) -> None:
        """A run belongs to the team of its connection and of its assistant (if it still has
        one). Which connection it ran on stays as it was, even if the assistant moves."""
        errors = {}
        if self.team_id and self.connection_id and self.connection.team_id != self.team_id:
            errors["connection"] = _("This connection belongs to another team than the run.")
        if self.team_id and self.assistant_id and self.assistant.team_id != self.team_id:
            errors["assistant"] = _("This assistant belongs to another team than the run.")
        if errors:
            raise ValidationError(errors)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_cancellable(self) -> bool:
        return self.status in CANCELLABLE_STATUSES

    @property
    def is_retryable(self) -> bool:
        """Ended without an answer worth keeping: it may be sent again as the next turn."""
        return self.is_terminal and self.status != RunStatus.COMPLETED

    @property
    def is_overdue(self) -> bool:
        """Not ended, and past the time Tablero stops checking it: the next check is its last."""
        return not self.is_terminal and timezone.now() >= self.poll_deadline

    def get_backend_display(self) -> object:  # on every row of the runs list (lib.choices)
        return choice_label(RunApi, self.backend)

    @property
    def shown_status(self) -> RunStatus:
        """The status lists show: an overdue run reads as expired before its last check (which
        a view of its page makes) confirms it or brings the provider's late result."""
        return RunStatus.EXPIRED if self.is_overdue else RunStatus(self.status)

    @property
    def status_severity(self) -> Severity:
        return STATUS_SEVERITY.get(self.shown_status, Severity.MUTED)

    @property
    def poll_deadline(self) -> datetime:
        """When Tablero stops asking the provider about the run (then asks once more)."""
        limit = self.created_at + settings.TABLERO_RUN_POLL_LIMIT
        return min(self.poll_until, limit) if self.poll_until else limit

    @property
    def stopped_checking(self) -> bool:
        """Tablero gave up on the run while the provider still said it was going on."""
        return self.status == RunStatus.EXPIRED and self.remote_status in ACTIVE_STATUSES

    @property
    def has_usage(self) -> bool:
        return self.total_tokens is not None or self.input_tokens is not None


@receiver(post_init, sender=Run)
def _own_conversation(sender, instance: Run, **kwargs) -> None:
    """A run made without a conversation starts its own: its id is known from the start (a
    UUID made in Python), so `Run(...)`, `save`, `create` and `bulk_create` all write it. Runs
    read from the database have it already (a deferred column is left alone, unread)."""
    if instance.__dict__.get("conversation_id", False) is None and instance.pk is not None:
        instance.conversation_id = instance.pk
