"""Reads for connections and the models a connection's key can use.

Selectors only read: nothing here writes to the database. The model list is the one stored on
the connection (`Connection.models_cache`) by the last check of its key or by
`services.models_refresh`, which pages call on purpose (a POST) and background work may call;
a model's page reads its entry there (`model_cached`). `model_get` asks the provider live and
stores nothing (no page calls it).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from django.db.models import Count, IntegerField, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import Truncator
from django.utils.translation import gettext
from django.views.decorators.debug import sensitive_variables

from accounts.models import Team
from connections import crypto, model_catalog, services
from connections.explanations import explain
from connections.models import Connection, ConnectionErrorEvent, ErrorOperation, Health
from provider.errors import ErrorKind, ProviderError

RECENT_ERRORS = 20
# The provider's model ids are short (fine-tuned ones the longest, well under 100 characters).
# A longer one is not looked up: it cannot exist, and it may not even fit in a URL.
MODEL_ID_MAX = 256


# What the connections list shows of each connection (and what its badges and masked key read).
LIST_COLUMNS = (
    "id",
    "team_id",
    "name",
    "provider",
    "health",
    "api_key_encrypted",
    "api_key_prefix",
    "api_key_last4",
    "last_checked_at",
    "last_error_kind",
)
# The cached model list is the one large value of a connection: read only where models show.
LARGE = ("models_cache",)


def connection_list(*, team: Team) -> QuerySet[Connection]:
    """The team's connections with their error counts, in one query: the count is a
    correlated subquery, so nothing is grouped by the connection's columns."""
    errors = (
        ConnectionErrorEvent.objects.filter(connection=OuterRef("pk"))
        .order_by()
        .values("connection")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Connection.objects.filter(team=team)
        .only(*LIST_COLUMNS)
        .annotate(error_count=Coalesce(Subquery(errors, output_field=IntegerField()), 0))
        .order_by("name", "pk")
    )


def connection_get(*, team: Team, pk: UUID, with_models: bool = False) -> Connection:
    """The team's connection or a 404: a connection is only ever fetched through its team.
    Its cached model list comes along only `with_models` (read later, it is fetched then)."""
    connections = Connection.objects.select_related("team")
    if not with_models:
        connections = connections.defer(*LARGE)
    return get_object_or_404(connections, pk=pk, team=team)


# --- models ------------------------------------------------------------------------------------

# The provider says who owns a model in its own words: these read as OpenAI.
_OPENAI_OWNERS = frozenset({"openai", "system", "openai-internal", "openai-dev"})
OWNER_MAX = 100


def owner_label(owned_by: str, model_id: str = "") -> str:
    """Who owns the model, in words: OpenAI, the team's organization (a fine-tuned model, or
    an `org-`/`user-` owner), or the provider's own words (cut short)."""
    if owned_by.lower() in _OPENAI_OWNERS:
        return gettext("OpenAI")
    if model_id.startswith("ft:") or owned_by.startswith(("org-", "user-")):
        return gettext("Your organization")
    if not owned_by:
        return gettext("Not given")
    return Truncator(owned_by).chars(OWNER_MAX)


def _to_datetime(value: Any) -> datetime | None:
    """A provider timestamp (Unix seconds, ISO date or datetime) as an aware datetime."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            parsed = parse_datetime(value) or datetime.combine(
                date.fromisoformat(value[:10]), datetime.min.time()
            )
        except ValueError:
            return None
        return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)
    return None


@dataclass
class ModelInfo:
    id: str
    purpose: model_catalog.Purpose
    assistants: bool  # whether an assistant can use it, by what it is for
    owned_by: str
    created: datetime | None
    shutdown: datetime | None  # the provider's date, else OpenAI's table (api.openai.com only)
    replacement: str  # the suggested replacement of a retired model ("" when none is known)
    data: dict[str, Any]

    @property
    def linkable(self) -> bool:
        """Whether a URL can carry the id: not too long, and the detail route takes no line
        breaks or controls."""
        return len(self.id) <= MODEL_ID_MAX and not any(
            ord(char) < 32 or ord(char) == 127 for char in self.id
        )

    @property
    def shutdown_state(self) -> str:
        """ "" (none announced), "upcoming" (deprecated) or "past" (shut down)."""
        if self.shutdown is None:
            return ""
        return "past" if self.shutdown <= timezone.now() else "upcoming"

    @property
    def offered(self) -> bool:
        """Whether a new assistant may pick it: made for assistants, and no shutdown
        announced."""
        return self.assistants and self.shutdown is None

    @property
    def owner(self) -> str:
        return owner_label(self.owned_by, self.id)

    @property
    def fine_tuned_from(self) -> str:
        return model_catalog.fine_tuned_from(self.id)


@dataclass
class ModelListing:
    models: Sequence[ModelInfo]
    total: int  # before the search
    count: int  # after the search
    fetched_at: datetime | None
    error: ProviderError | None = None
    stale: bool = False  # the last fetch failed: showing the list kept from an earlier one
    never_fetched: bool = False  # no list was ever fetched for the connection's key


def model_info(data: dict[str, Any], *, official: bool = False) -> ModelInfo:
    """One model of the provider's list in Tablero's terms; `official`: the connection is to
    OpenAI itself, whose retirement table (connections/model_catalog.py) then applies."""
    model_id = str(data.get("id", ""))
    purpose, assistants = model_catalog.classify(model_id)
    shutdown = _to_datetime(data.get("shutdown_date") or data.get("deprecation_date"))
    retirement = model_catalog.retirement_for(model_id) if official else None
    if shutdown is None and retirement is not None:
        shutdown = datetime.combine(retirement.shutdown, datetime.min.time(), tzinfo=UTC)
    replacement = ""
    if shutdown is not None and official:
        replacement = model_catalog.replacement_for(model_id)
    return ModelInfo(
        id=model_id,
        purpose=purpose,
        assistants=assistants,
        owned_by=str(data.get("owned_by") or ""),
        created=_to_datetime(data.get("created")),
        shutdown=shutdown,
        replacement=replacement,
        data=data,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PURPOSE_ORDER = {purpose: n for n, purpose in enumerate(model_catalog.Purpose)}


class _ModelInfos(Sequence[ModelInfo]):
    """The matching models, sorted, each made a `ModelInfo` only when read: a page of the list
    reads 50 of what may be thousands."""

    def __init__(self, entries: list[dict[str, Any]], *, official: bool) -> None:
        self._entries, self._official = entries, official

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [model_info(data, official=self._official) for data in self._entries[index]]
        return model_info(self._entries[index], official=self._official)


def _matching(
    models: list[Any], *, official: bool, query: str, purpose: str
) -> Sequence[ModelInfo]:
    """The models whose id contains `query` (any case) and whose purpose is `purpose` (any
    when empty), by purpose, newest first, then by id; entries that are not models are
    skipped. Only what the search and the order need is worked out for every model."""
    query = query.strip().lower()
    found = []
    for data in models:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            continue
        model_id = data["id"]
        if query and query not in model_id.lower():
            continue
        model_purpose = model_catalog.classify(model_id)[0]
        if purpose and model_purpose != purpose:
            continue
        created = _to_datetime(data.get("created")) or _EPOCH
        found.append(((_PURPOSE_ORDER[model_purpose], -created.timestamp(), model_id), data))
    found.sort(key=lambda entry: entry[0])
    return _ModelInfos([data for _key, data in found], official=official)


def model_list(*, connection: Connection, query: str = "", purpose: str = "") -> ModelListing:
    """The connection's models in one list, searched by `query` (part of the id) and
    `purpose`, as Tablero last fetched them (`services.models_refresh`, or the check that saved
    the key).

    Reads only: the provider is not asked. When the last check failed, its error comes with
    the list kept from the last good fetch (`stale`); a list never fetched is `never_fetched`.
    """
    models = connection.models_cache or []
    error = None
    if connection.health != Health.OK and connection.last_error_kind:
        error = stored_error(connection)
    found = _matching(
        models,
        official=model_catalog.applies_to(connection.base_url),
        query=query,
        purpose=purpose,
    )
    return ModelListing(
        models=found,
        total=len(models),
        count=len(found),
        fetched_at=connection.models_cached_at,
        error=error,
        stale=error is not None and bool(models),
        never_fetched=connection.models_cached_at is None and not models,
    )


def stored_error(connection: Connection) -> ProviderError:
    """The last check's failure as stored on the connection: its kind, and the wait the
    provider asked for when it gave one."""
    error = ProviderError(_error_kind(connection.last_error_kind))
    wait = (connection.rate_limit or {}).get("retry_after")
    if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
        error.retry_after = float(wait)
    return error


def _error_kind(value: str) -> ErrorKind:
    try:
        return ErrorKind(value)
    except ValueError:  # written by an older version
        return ErrorKind.BAD_RESPONSE


def model_cached(*, connection: Connection, model_id: str) -> ModelInfo | None:
    """The model as the list Tablero last fetched describes it (every field the provider gave
    there), or None when that list has no such model. Reads only: the provider is not asked
    (the model's page shows this, with when the list was fetched)."""
    official = model_catalog.applies_to(connection.base_url)
    for data in connection.models_cache or []:
        if isinstance(data, dict) and data.get("id") == model_id:
            return model_info(data, official=official)
    return None


@dataclass(frozen=True)
class ModelWarning:
    """What an assistant's page says of its model when it is retired or retiring."""

    model: str
    shutdown: date
    past: bool
    replacement: str


def model_warning(*, connection: Connection, model_id: str) -> ModelWarning | None:
    """The retirement of a model an assistant uses, from OpenAI's table (connections to
    api.openai.com only; the cached list is not read, so an assistant page stays light)."""
    if not model_catalog.applies_to(connection.base_url):
        return None
    retirement = model_catalog.retirement_for(model_id)
    if retirement is None:
        return None
    return ModelWarning(
        model=model_id,
        shutdown=retirement.shutdown,
        past=retirement.shutdown <= timezone.localdate(),
        replacement=model_catalog.replacement_for(model_id),
    )


@sensitive_variables()
def model_get(*, connection: Connection, model_id: str) -> ModelInfo:
    """GET /models/{id}: one model with every field the provider gave, asked live.

    Reads only: the answer, or the failure, is shown and not stored (a page that only looks
    does not write the error history). Raises ProviderError; an id too long to be a model's
    is refused without asking the provider.
    """
    if len(model_id) > MODEL_ID_MAX:
        message = gettext(
            "A model ID has at most %(max)s characters; the provider was not asked."
        ) % {"max": MODEL_ID_MAX}
        raise ProviderError(ErrorKind.MODEL_NOT_FOUND, message)
    try:
        client = services.client_for(connection)
    except crypto.DecryptionError:
        raise services.unreadable_key_error() from None
    official = model_catalog.applies_to(connection.base_url)
    return model_info(client.retrieve_model(model_id), official=official)


# --- error history, grouped --------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorGroup:
    """Repeated failures of one kind, while doing one thing, on one connection: how many,
    when first and last, and the newest of them (its explanation and details)."""

    connection_id: UUID
    operation: str
    kind: str
    code: str
    count: int
    first_seen: datetime
    last_seen: datetime
    latest: ConnectionErrorEvent | None

    @property
    def operation_label(self) -> str:
        """What Tablero was doing, in the reader's language ("listing models")."""
        try:
            return str(ErrorOperation(self.operation).label)
        except ValueError:  # written by an older version
            return self.operation

    @property
    def repeated(self) -> bool:
        return self.count > 1

    @property
    def kind_title(self) -> str:
        """The error's title in the reader's language ("No quota left")."""
        try:
            return str(explain(self.kind).title)
        except ValueError:
            return self.kind


GROUP_KEY = ("connection", "operation", "kind", "code")


def error_groups_query(events: QuerySet[ConnectionErrorEvent]) -> QuerySet:
    """The events grouped by connection, operation, kind and provider code, newest group
    first, as rows of `GROUP_KEY` with `count`, `first_seen` and `last_seen` (the database
    groups them: one query, whatever the number of events). Page it, then `error_groups`."""
    return (
        events.order_by()
        .values(*GROUP_KEY)
        .annotate(count=Count("pk"), first_seen=Min("created_at"), last_seen=Max("created_at"))
        .order_by("-last_seen", "connection", "operation", "kind", "code")
    )


def error_groups(rows: Iterable[dict[str, Any]]) -> list[ErrorGroup]:
    """Rows of `error_groups_query` (a page of them) as ErrorGroup, each with its newest event
    (one more query for all of them)."""
    rows = list(rows)
    if not rows:
        return []
    wanted = Q()
    for row in rows:
        wanted |= Q(**{key: row[key] for key in GROUP_KEY}, created_at=row["last_seen"])
    latest: dict[tuple, ConnectionErrorEvent] = {}
    for event in (
        ConnectionErrorEvent.objects.filter(wanted)
        .select_related("connection", "user")
        .defer(*(f"connection__{name}" for name in (*LARGE, "rate_limit", "month_spend")))
        .order_by("created_at", "pk")
    ):
        latest[(event.connection_id, event.operation, event.kind, event.code)] = event
    return [
        ErrorGroup(
            connection_id=row["connection"],
            operation=row["operation"],
            kind=row["kind"],
            code=row["code"],
            count=row["count"],
            first_seen=row["first_seen"],
            last_seen=row["last_seen"],
            latest=latest.get(tuple(row[key] for key in GROUP_KEY)),
        )
        for row in rows
    ]


def connection_error_groups(*, connection: Connection) -> QuerySet:
    """The connection's error history, repeated errors grouped (see `error_groups_query`)."""
    return error_groups_query(ConnectionErrorEvent.objects.filter(connection=connection))
