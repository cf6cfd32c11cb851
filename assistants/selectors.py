"""Reads for assistants and runs. Everything is fetched through the team."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Substr
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import Team, User
from assistants.backends import (
    ASSISTANTS,
    RESPONSES,
    AssistantsBackend,
    ResponsesBackend,
    RunSnapshot,
    backend_for,
)
from assistants.models import TERMINAL_STATUSES, Assistant, Run, RunStatus
from connections.models import Connection
from connections.selectors import model_list
from lib.severity import Severity
from provider.errors import ProviderError

RECENT_RUNS = 10


# What the assistants list shows of each assistant.
LIST_COLUMNS = (
    "id",
    "team_id",
    "connection_id",
    "name",
    "description",
    "model",
    "tools",
    "sync_state",
    "remote_id",
    "created_at",
)


def assistant_list(
    *, team: Team, connection_id: UUID | None = None, query: str = ""
) -> QuerySet[Assistant]:
    assistants = (
        Assistant.objects.filter(team=team)
        .select_related("connection")
        .only(*LIST_COLUMNS, "connection__id", "connection__name")
    )
    if connection_id is not None:
        assistants = assistants.filter(connection_id=connection_id)
    query = query.strip()
    if query:
        assistants = assistants.filter(
            Q(name__icontains=query)
            | Q(description__icontains=query)
            | Q(model__icontains=query)
            | Q(remote_id__iexact=query)
        )
    return assistants.order_by("name", "created_at")


def assistant_get(*, team: Team, pk: UUID) -> Assistant:
    return get_object_or_404(
        Assistant.objects.select_related("connection", "created_by").defer(
            "connection__models_cache"
        ),
        pk=pk,
        team=team,
    )


# What a table of conversations shows (assistants/partials/run_table.html): of the newest turn
# its status (and whether it is overdue), API and number; of the first turn when and by whom it
# was started; the assistant. The answers, the provider's ids and the errors stay behind.
CONVERSATION_COLUMNS = (
    "id",
    "team_id",
    "assistant",
    "assistant_name",
    "conversation",
    "turn",
    "status",
    "backend",
    "created_at",
    "poll_until",
    "conversation__created_at",
    "conversation__started_by",
    "conversation__started_by__name",
    "conversation__started_by__email",
    "assistant__name",
)
# Of the opening message, the table shows 80 characters: fetch a few more than that (combining
# marks do not count towards the 80), never the whole message (up to 32,000).
OPENING_CHARS = 320


def as_conversations(runs: QuerySet[Run]) -> QuerySet[Run]:
    """`runs` as conversations: the newest turn of each (its status is the conversation's),
    with its first turn (`conversation`: when and by whom it was started), the start of the
    message that opened it (`opening`) and the tokens of all its turns
    (`conversation_tokens`, None while no turn reported any); only what a table of them
    shows."""
    tokens = (
        Run.objects.filter(conversation_id=OuterRef("conversation_id"))
        .order_by()
        .values("conversation_id")
        .annotate(total=Sum("total_tokens"))
        .values("total")
    )
    return (
        runs.filter(is_latest=True)
        .select_related("assistant", "conversation", "conversation__started_by")
        .only(*CONVERSATION_COLUMNS)
        .annotate(
            conversation_tokens=Subquery(tokens),
            opening=Substr("conversation__input", 1, OPENING_CHARS),
        )
    )


def run_list(
    *, team: Team, assistant_id: UUID | None = None, status: str = "", query: str = ""
) -> QuerySet[Run]:
    """The team's conversations (`as_conversations`), the most recently continued first;
    `status` is their newest turn's; `query` searches the assistant's name (current, or the
    one a deleted assistant's runs kept)."""
    runs = as_conversations(Run.objects.filter(team=team))
    if assistant_id is not None:
        runs = runs.filter(assistant_id=assistant_id)
    query = query.strip()
    if query:
        runs = runs.filter(Q(assistant__name__icontains=query) | Q(assistant_name__icontains=query))
    if status == RunStatus.EXPIRED:
        runs = runs.filter(Q(status=status) | run_overdue_q())
    elif status in RunStatus.values:
        runs = runs.filter(status=status).exclude(run_overdue_q())
    return runs.order_by("-created_at")


def run_overdue_q() -> Q:
    """Runs not ended and past the time Tablero stops checking them (`Run.is_overdue`)."""
    now = timezone.now()
    return ~Q(status__in=TERMINAL_STATUSES) & (
        Q(created_at__lte=now - settings.TABLERO_RUN_POLL_LIMIT) | Q(poll_until__lte=now)
    )


def run_recent(*, assistant: Assistant, limit: int = RECENT_RUNS) -> list[Run]:
    """The assistant's latest conversations (`as_conversations`)."""
    return list(
        as_conversations(Run.objects.filter(team=assistant.team, assistant=assistant)).order_by(
            "-created_at"
        )[:limit]
    )


def conversation_turns(*, run: Run) -> list[Run]:
    """Every turn of `run`'s conversation, first to newest (each with what its page shows)."""
    return list(
        Run.objects.filter(team_id=run.team_id, conversation_id=run.conversation_id)
        .select_related("assistant", "connection", "started_by")
        .defer("connection__models_cache")
        .order_by("turn")
    )


def run_get(*, team: Team, pk: UUID) -> Run:
    return get_object_or_404(
        Run.objects.select_related("assistant", "connection", "started_by").defer(
            "connection__models_cache"
        ),
        pk=pk,
        team=team,
    )


def team_connections(*, team: Team, query: str = "") -> QuerySet[Connection]:
    """The team's connections by name (those whose name contains `query`), without the
    cached model list."""
    connections = Connection.objects.filter(team=team).defer("models_cache")
    if query:
        connections = connections.filter(name__icontains=query)
    return connections.order_by("name")


# Which connections a form opens on first: working, not checked yet, passing trouble, broken.
_HEALTH_ORDER = {Severity.OK: 0, Severity.MUTED: 1, Severity.WARN: 2, Severity.DANGER: 3}


def connection_default(*, connections: list[Connection], user: User) -> Connection | None:
    """The connection "New assistant" and "Look up a run" open on: the one this user last
    started a run on, if it works (or was not checked yet), else the healthiest, by name.
    Never a broken one while another works: opening a form on it only meets its error."""
    if not connections:
        return None
    last_used = (
        Run.objects.filter(started_by=user, connection__in=connections)
        .order_by("-created_at")
        .values_list("connection_id", flat=True)
        .first()
    )
    for connection in connections:
        if connection.pk == last_used and _HEALTH_ORDER[connection.health_severity] <= 1:
            return connection
    return min(connections, key=lambda c: (_HEALTH_ORDER[c.health_severity], c.name.lower()))


@dataclass
class ModelChoices:
    ids: list[str] | None  # None: no list to choose from (type the model instead)
    error: ProviderError | None = None
    fetched_at: datetime | None = None  # when Tablero last fetched the list
    never_fetched: bool = False  # no list yet: the page queues a fetch and says so


def model_choices(*, connection: Connection) -> ModelChoices:
    """The models an assistant on this connection can use, from the model list stored on the
    connection, with when it was fetched (the provider is not asked). When no list was ever
    fetched (`never_fetched`), or the last fetch failed and none was kept, `ids` is None (the
    model is typed instead)."""
    listing = model_list(connection=connection)
    if listing.never_fetched:
        return ModelChoices(ids=None, error=listing.error, never_fetched=True)
    # Only models made for assistants, and none retired or retiring (an assistant already on
    # one keeps it: the edit form adds the current model back).
    ids = [info.id for info in listing.models if info.offered]
    if not ids and listing.error is not None:
        return ModelChoices(ids=None, error=listing.error, fetched_at=listing.fetched_at)
    return ModelChoices(ids=sorted(ids), error=listing.error, fetched_at=listing.fetched_at)


def run_lookup(
    *, connection: Connection, thread_id: str = "", run_id: str = "", response_id: str = ""
) -> RunSnapshot:
    """Ask the provider about any run on the connection by its ids, without storing it:
    a thread and run id (Assistants API) or a response id (Responses API).
    Raises ProviderError."""
    if response_id:
        backend = backend_for(connection, api=RESPONSES)
        assert isinstance(backend, ResponsesBackend)
        return backend.lookup(response_id)
    backend = backend_for(connection, api=ASSISTANTS)
    assert isinstance(backend, AssistantsBackend)
    return backend.lookup(thread_id, run_id)


def run_find(
    *,
    team: Team,
    connection: Connection,
    thread_id: str = "",
    run_id: str = "",
    response_id: str = "",
) -> Run | None:
    """The team's own record of a run looked up by its ids, if Tablero started it."""
    runs = Run.objects.filter(team=team, connection=connection)
    if response_id:
        return runs.filter(response_id=response_id).first()
    return runs.filter(thread_id=thread_id, remote_run_id=run_id).first()


def snapshot_as_run(snapshot: RunSnapshot, *, connection: Connection) -> Run:
    """An unsaved Run showing a looked-up snapshot, so it renders like any other run."""
    usage = snapshot.usage
    return Run(
        team=connection.team,
        connection=connection,
        backend=RESPONSES if snapshot.response_id else ASSISTANTS,
        status=snapshot.status,
        thread_id=snapshot.thread_id,
        remote_run_id=snapshot.remote_run_id,
        response_id=snapshot.response_id,
        output_text=snapshot.output_text,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        total_tokens=usage.total_tokens if usage else None,
        last_error_code=snapshot.error_code,
        last_error_message=snapshot.error_message,
        completed_at=snapshot.completed_at,
    )
