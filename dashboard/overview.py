"""The team's home page in one read: health, spend, usage and what went wrong.

`team_overview` composes the connections, runs and errors of a team with a fixed number of
queries, whatever the number of rows: counts and sums are aggregated in the database (served
by the indexes on team and health, team and time), lists are bounded (`CONNECTIONS_SHOWN`,
`RUNS_SHOWN`, `ERRORS_SHOWN`) and fetched with their related rows. Each part is cached
(`dashboard.home_cache`) until the rows it shows change, so most pages make no query for it.
What is cached holds no words: the page's language is applied when it renders.

It never calls the provider: this month's spend is what the connection costs pages last
fetched, stored on each connection (`connections.costs.month_spend_known`). Whether background
checks still run is the task consumer's heartbeat, read from the task queue (no query).
"""

import datetime
import functools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Case, Count, IntegerField, Q, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.translation import gettext_lazy as _

from accounts.models import Team
from assistants.models import TERMINAL_STATUSES, Run, RunStatus
from assistants.selectors import run_overdue_q
from assistants.usage import RUN_TOKENS
from connections.charts import Headroom, format_amount, headroom
from connections.costs import MonthSpend, month_spend_known, utc_today
from connections.models import Connection, ConnectionErrorEvent, Health
from connections.selectors import ErrorGroup, error_groups, error_groups_query
from dashboard.home_cache import Part, parts_get
from gateway.selectors import CallCounts, calls_since
from lib.severity import Severity
from lib.taskqueue import Heartbeat, heartbeat_known

# The home is a summary: the connections that need attention first, the rest on the list page.
CONNECTIONS_SHOWN = 20
RUNS_SHOWN = 20
ERRORS_SHOWN = 10
# What went wrong "lately": the errors of the last days (the history keeps more).
ERRORS_WINDOW = datetime.timedelta(days=7)
NEXT_STEPS_SHOWN = 10

ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.IN_PROGRESS)
FAILED_STATUSES = (RunStatus.FAILED, RunStatus.EXPIRED)
WARN_HEALTH = (Health.RATE_LIMITED, Health.OVERLOADED, Health.UNREACHABLE)

# What to do when a connection is in this health; %(name)s is the connection's name.
NEXT_STEPS: dict[str, Any] = {
    Health.NO_QUOTA: _("No credit left on %(name)s: add credit, then test again."),
    Health.INVALID_KEY: _("The key of %(name)s was refused: replace the key, then test again."),
    Health.KEY_UNREADABLE: _(
        "The stored key of %(name)s can't be read: enter it again with “Replace key”."
    ),
    Health.PERMISSION_DENIED: _(
        "%(name)s was denied access: check the project's permissions, then test again."
    ),
    Health.RATE_LIMITED: _("%(name)s hit its rate limit: wait a moment, then test again."),
    Health.OVERLOADED: _("The provider of %(name)s is overloaded: test again later."),
    Health.UNREACHABLE: _("%(name)s can't be reached: check its base URL, then test again."),
    Health.ERROR: _("%(name)s failed its last check: read why on its page, then test again."),
}
# The same for a viewer or member, who can change nothing on a connection: what is wrong,
# and for the healths that pass on their own, that Tablero checks again by itself. The page
# adds whom to ask for the others (ADMIN_HEALTH).
READER_STEPS: dict[str, Any] = {
    Health.NO_QUOTA: _("No credit left on %(name)s."),
    Health.INVALID_KEY: _("The key of %(name)s was refused."),
    Health.KEY_UNREADABLE: _("The stored key of %(name)s can't be read."),
    Health.PERMISSION_DENIED: _("%(name)s was denied access by the provider."),
    Health.RATE_LIMITED: _(
        "%(name)s hit its rate limit: wait a moment, Tablero checks it again by itself."
    ),
    Health.OVERLOADED: _(
        "The provider of %(name)s is overloaded: Tablero checks it again by itself."
    ),
    Health.UNREACHABLE: _("%(name)s can't be reached."),
    Health.ERROR: _("%(name)s failed its last check."),
}
# Healths only an admin can fix (the others pass on their own).
ADMIN_HEALTH = frozenset(READER_STEPS) - {Health.RATE_LIMITED, Health.OVERLOADED}
# Healths whose fix is a new key (the step offers "Replace key").
KEY_HEALTH = (Health.INVALID_KEY, Health.KEY_UNREADABLE)
# Healths whose rate-limit figures mean something: the key works (or only waits).
HEADROOM_HEALTH = (Health.OK, Health.RATE_LIMITED, Health.OVERLOADED)


def _problem_rank() -> Case:
    """0: someone must act, 1: may pass on its own, 2: not checked yet, 3: working."""
    return Case(
        When(health=Health.OK, then=Value(3)),
        When(health=Health.UNCHECKED, then=Value(2)),
        When(health__in=WARN_HEALTH, then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )


@dataclass(frozen=True)
class ConnectionRow:
    connection: Connection
    spend: MonthSpend | None = None  # None: not known (no admin key, or not fetched lately)

    @property
    def key_works(self) -> bool:
        """Whether the key worked at its last check (it may only have to wait)."""
        return self.connection.health in HEADROOM_HEALTH

    @property
    def headroom(self) -> list[Headroom]:
        """The rate-limit headroom, only for a key that works: the figures of a refused key
        say nothing about what is left."""
        if not self.key_works:
            return []
        return headroom(self.connection.rate_limit)


@dataclass(frozen=True)
class NextStep:
    """A connection that needs attention; the words are made when the page renders."""

    connection: Connection

    @property
    def severity(self) -> Severity:
        return self.connection.health_severity

    @property
    def text(self) -> str:
        """For admins: what is wrong and what to do."""
        return str(NEXT_STEPS[self.connection.health]) % {"name": self.connection.name}

    @property
    def reader_text(self) -> str:
        """For viewers and members: what is wrong."""
        return str(READER_STEPS[self.connection.health]) % {"name": self.connection.name}

    @property
    def new_key(self) -> bool:  # the fix is a new key
        return self.connection.health in KEY_HEALTH

    @property
    def needs_admin(self) -> bool:  # only an admin can fix it
        return self.connection.health in ADMIN_HEALTH


@dataclass(frozen=True)
class ErrorItem:
    """One line of "What went wrong lately": a group of provider errors (admins) or a run."""

    when: datetime.datetime
    connection: Connection | None
    group: ErrorGroup | None = None
    run: Run | None = None


# The parts keep numbers only. The rows the page lists (connections, runs in progress, errors)
# are kept apart, under the same generations, and read only when a section of the page must
# be rendered again (dashboard.home_fragments keeps the sections' HTML): unpickling some forty
# model instances on every page was a tenth of a cached page's time.
@dataclass(frozen=True)
class ConnectionsPart:
    connection_count: int
    ok_count: int
    problem_count: int
    unchecked_count: int
    next_step_count: int  # connections the "Needs attention" banner lists
    next_steps_need_admin: bool  # one of them only an admin can fix


@dataclass(frozen=True)
class RunsPart:
    runs_today: int
    tokens_month: int
    active_count: int


@dataclass(frozen=True)
class SpendPart:
    """This month's spend for the summary. The spend of each connection (as many as the team
    has admin keys) is kept apart ("spend_rows"), read only to render the connections table:
    reading it on every page made the page's cost grow with the team."""

    admin_key_count: int
    known_count: int
    totals: dict[str, Decimal]


@dataclass
class Overview:
    connection_count: int = 0
    ok_count: int = 0
    problem_count: int = 0
    unchecked_count: int = 0
    connections: list[ConnectionRow] = field(default_factory=list)
    next_steps: list[NextStep] = field(default_factory=list)
    runs_today: int = 0
    tokens_month: int = 0
    active_count: int = 0
    active_runs: list[Run] = field(default_factory=list)
    errors: list[ErrorItem] = field(default_factory=list)
    next_step_count: int = 0
    next_steps_need_admin: bool = False
    # Spend (admins only): None when costs were not asked for.
    spend_month: dict[str, Decimal] | None = None
    spend_known: int = 0
    admin_key_count: int = 0
    # The task consumer's last sign of life (for admins: background checks have stopped).
    heartbeat: Heartbeat | None = None
    # Calls through the gateway today: the team's, or only the reader's own.
    gateway_today: CallCounts | None = None

    @property
    def background_stopped(self) -> bool:
        return self.heartbeat is not None and self.heartbeat.stale()

    @property
    def needs_attention(self) -> bool:
        """Whether the page's one banner has something to list."""
        return bool(self.next_step_count) or self.background_stopped

    @property
    def more_connections(self) -> int:
        return max(0, self.connection_count - len(self.connections))

    @property
    def more_runs(self) -> int:
        return max(0, self.active_count - len(self.active_runs))

    @property
    def more_next_steps(self) -> int:
        return max(0, self.problem_count - self.next_step_count)

    @property
    def spend_display(self) -> str:
        amounts = self.spend_month or {}
        if not amounts:
            return format_amount(0)
        return " + ".join(format_amount(value, currency) for currency, value in amounts.items())


def _day_start(now: datetime.datetime) -> datetime.datetime:
    return timezone.make_aware(
        datetime.datetime.combine(timezone.localdate(now), datetime.time.min)
    )


def _connections_part(team: Team) -> ConnectionsPart:
    counts = {"ok": 0, "unchecked": 0, "problem": 0, "all": 0}
    # COUNT(*), not COUNT(id): PostgreSQL then counts from the team-and-health index alone
    # (an index-only scan, 6 ms at 10,000 connections where reading the rows took 24 ms).
    for row in (
        Connection.objects.filter(team=team).order_by().values("health").annotate(n=Count("*"))
    ):
        counts["all"] += row["n"]
        if row["health"] == Health.OK:
            counts["ok"] += row["n"]
        elif row["health"] == Health.UNCHECKED:
            counts["unchecked"] += row["n"]
        else:
            counts["problem"] += row["n"]
    steps = _next_steps(_connections_shown(team))
    return ConnectionsPart(
        connection_count=counts["all"],
        ok_count=counts["ok"],
        problem_count=counts["problem"],
        unchecked_count=counts["unchecked"],
        next_step_count=len(steps),
        next_steps_need_admin=any(step.needs_admin for step in steps),
    )


def _connections_shown(team: Team) -> list[Connection]:
    """The connections the table shows: those that need attention first."""
    return list(
        Connection.objects.filter(team=team)
        .defer("models_cache")
        .annotate(problem_rank=_problem_rank())
        .order_by("problem_rank", "name")[:CONNECTIONS_SHOWN]
    )


def _next_steps(connections: list[Connection]) -> list[NextStep]:
    return [
        NextStep(connection=connection)
        for connection in connections
        if connection.health in NEXT_STEPS
    ][:NEXT_STEPS_SHOWN]


def _spend_of_connections(team: Team, now: datetime.datetime) -> dict[Any, MonthSpend]:
    keyed = Connection.objects.filter(team=team).exclude(admin_key_encrypted="")
    # Only the rows whose stored spend is this month's are read (the rest count as not
    # known anyway): a team of thousands of admin keys is not decoded row by row.
    fetched = keyed.filter(month_spend__month=f"{utc_today(now):%Y-%m}").only(
        "pk", "admin_key_encrypted", "month_spend"
    )
    return month_spend_known(connections=fetched, now=now)


def _spend_part(team: Team, by_connection: dict[Any, MonthSpend]) -> SpendPart:
    totals: dict[str, Decimal] = {}
    for known in by_connection.values():
        for currency, amount in known.amounts.items():
            totals[currency] = totals.get(currency, Decimal(0)) + amount
    admin_key_count = Connection.objects.filter(team=team).exclude(admin_key_encrypted="").count()
    return SpendPart(admin_key_count=admin_key_count, known_count=len(by_connection), totals=totals)


def _runs_part(team: Team, now: datetime.datetime) -> RunsPart:
    today = timezone.localdate(now)
    day_start = _day_start(now)
    month_start = timezone.make_aware(
        datetime.datetime.combine(today.replace(day=1), datetime.time.min)
    )
    active = Q(status__in=ACTIVE_STATUSES) & ~run_overdue_q()
    # One aggregate, served by the team-and-time index (this month) and the team-and-status
    # index (the runs in progress, whenever they started).
    stats = (
        Run.objects.filter(team=team)
        .filter(Q(created_at__gte=month_start) | active)
        .aggregate(
            runs_today=Count("pk", filter=Q(created_at__gte=day_start)),
            tokens_month=Coalesce(Sum(RUN_TOKENS, filter=Q(created_at__gte=month_start)), Value(0)),
            active=Count("pk", filter=active),
        )
    )
    return RunsPart(
        runs_today=stats["runs_today"],
        tokens_month=stats["tokens_month"],
        active_count=stats["active"],
    )


def _active_runs(team: Team) -> list[Run]:
    return list(
        Run.objects.filter(team=team, status__in=ACTIVE_STATUSES)
        .exclude(run_overdue_q())
        .select_related("connection", "started_by")
        .defer("connection__models_cache", "connection__rate_limit", "input", "output_text")
        .order_by("-created_at")[:RUNS_SHOWN]
    )


def _errors_part(
    team: Team, now: datetime.datetime, *, with_connection_errors: bool
) -> list[ErrorItem]:
    items = []
    if with_connection_errors:
        # Repeated failures grouped (count, first and last seen), the newest groups first.
        events = ConnectionErrorEvent.objects.filter(
            connection__team=team, created_at__gte=now - ERRORS_WINDOW
        )
        groups = error_groups(error_groups_query(events)[:ERRORS_SHOWN])
        items += [
            ErrorItem(group.last_seen, group.latest.connection if group.latest else None, group)
            for group in groups
        ]
    failed = Q(status__in=FAILED_STATUSES) | (
        ~Q(last_error_kind="") & ~Q(status__in=TERMINAL_STATUSES)
    )
    runs = (
        Run.objects.filter(team=team)
        .filter(failed)
        .select_related("connection", "started_by")
        .defer("connection__models_cache", "connection__rate_limit", "input", "output_text")
        .order_by("-created_at")[:ERRORS_SHOWN]
    )
    items += [
        ErrorItem(run.completed_at or run.created_at, run.connection, run=run) for run in runs
    ]
    items.sort(key=lambda item: item.when, reverse=True)
    return items[:ERRORS_SHOWN]


def team_overview(
    *,
    team: Team,
    with_errors_of_connections: bool,
    with_costs: bool,
    gateway_user: Any = None,
    now: datetime.datetime | None = None,
) -> Overview:
    """Everything the team's home page shows. Connection errors and costs are for admins
    (DESIGN: "see errors and costs"); failed runs are for everyone, as on the runs pages.
    Gateway calls are the team's, or only `gateway_user`'s when given (as on the usage page,
    where a member sees their own)."""
    now = now or timezone.now()
    day = f"{timezone.localdate(now):%Y-%m-%d}"
    wanted: dict[Part, tuple[str, Any]] = {
        Part.CONNECTIONS: ("", lambda: _connections_part(team)),
        Part.RUNS: (day, lambda: _runs_part(team, now)),
        Part.GATEWAY: (
            f"{day}:{gateway_user.pk if gateway_user is not None else 'team'}",
            lambda: calls_since(team=team, since=_day_start(now), user=gateway_user),
        ),
    }
    month = f"{utc_today(now):%Y-%m}"
    # Each connection's spend, once per page at most (the summary's totals and the table's
    # rows are kept apart: the table, when kept as HTML, needs no rows).
    spend_of_connections = functools.cache(lambda: _spend_of_connections(team, now))
    if with_costs:
        wanted[Part.SPEND] = (month, lambda: _spend_part(team, spend_of_connections()))
    parts = parts_get(team.pk, wanted)

    connections: ConnectionsPart = parts[Part.CONNECTIONS]
    runs: RunsPart = parts[Part.RUNS]
    overview = Overview(
        connection_count=connections.connection_count,
        ok_count=connections.ok_count,
        problem_count=connections.problem_count,
        unchecked_count=connections.unchecked_count,
        next_step_count=connections.next_step_count,
        next_steps_need_admin=connections.next_steps_need_admin,
        runs_today=runs.runs_today,
        tokens_month=runs.tokens_month,
        active_count=runs.active_count,
        gateway_today=parts[Part.GATEWAY],
    )
    if with_costs:
        spend_part: SpendPart = parts[Part.SPEND]
        overview.admin_key_count = spend_part.admin_key_count
        overview.spend_known = spend_part.known_count
        overview.spend_month = spend_part.totals

    # The rows, read (or computed) only when a section that lists them is rendered.
    def kept(part: Part, name: str, variant: str, compute: Any) -> Any:
        def value() -> Any:
            return parts_get(team.pk, {part: (f"{name}:{variant}", compute)})[part]

        return SimpleLazyObject(value)

    shown = kept(Part.CONNECTIONS, "rows", "", lambda: _connections_shown(team))

    def rows() -> list[ConnectionRow]:
        spend: dict[Any, MonthSpend] = {}
        if with_costs and overview.spend_known:
            spend = parts_get(team.pk, {Part.SPEND: (f"{month}:rows", spend_of_connections)})[
                Part.SPEND
            ]
        return [
            ConnectionRow(connection=connection, spend=spend.get(connection.pk))
            for connection in shown
        ]

    overview.connections = SimpleLazyObject(rows)  # type: ignore[assignment]
    overview.next_steps = SimpleLazyObject(lambda: _next_steps(shown))  # type: ignore[assignment]
    overview.active_runs = kept(Part.RUNS, "active", "", lambda: _active_runs(team))
    overview.errors = kept(
        Part.ERRORS,
        "items",
        "admin" if with_errors_of_connections else "reader",
        lambda: _errors_part(team, now, with_connection_errors=with_errors_of_connections),
    )
    overview.heartbeat = heartbeat_known()
    return overview


def connection_row(*, team: Team, connection_id: Any, with_costs: bool) -> ConnectionRow:
    """One row of the connections table, as it is now (after "Test again"): read directly,
    not from the cache, with its spend when the reader sees costs."""
    connection = Connection.objects.filter(team=team, pk=connection_id).defer("models_cache").get()
    spend = None
    if with_costs and connection.has_admin_key:
        spend = month_spend_known(connections=[connection]).get(connection.pk)
    return ConnectionRow(connection=connection, spend=spend)
