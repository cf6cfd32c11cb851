"""The team's home page in one read: health, spend, usage and what went wrong.

`team_overview` composes the connections, runs and errors of a team with a fixed number of
queries, whatever the number of rows: counts and sums are aggregated in the database, lists
are bounded (`CONNECTIONS_SHOWN`, `RUNS_SHOWN`, `ERRORS_SHOWN`) and fetched with their related
rows. It never calls the provider: this month's spend is what the connection costs pages last
fetched, stored on each connection (`connections.costs.month_spend_known`). Whether background
checks still run is the task consumer's heartbeat, read from the task queue (no query).
"""

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Case, Count, IntegerField, Q, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Team
from assistants.models import TERMINAL_STATUSES, Run, RunStatus
from assistants.selectors import run_overdue_q
from assistants.usage import RUN_TOKENS
from connections.charts import Headroom, format_amount, headroom
from connections.costs import MonthSpend, month_spend_known, utc_today
from connections.models import Connection, ConnectionErrorEvent, Health
from gateway.selectors import CallCounts, calls_since
from lib.severity import Severity
from lib.taskqueue import Heartbeat, heartbeat_known

CONNECTIONS_SHOWN = 50
RUNS_SHOWN = 20
ERRORS_SHOWN = 10
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
    headroom: list[Headroom]
    spend: MonthSpend | None  # None: not known (no admin key, or not fetched lately)


@dataclass(frozen=True)
class NextStep:
    connection: Connection
    text: str  # for admins: what to do
    severity: Severity
    new_key: bool  # the fix is a new key
    reader_text: str = ""  # for viewers and members: what is wrong
    needs_admin: bool = False  # only an admin can fix it


@dataclass(frozen=True)
class ErrorItem:
    when: datetime.datetime
    connection: Connection
    event: ConnectionErrorEvent | None = None
    run: Run | None = None


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
    def more_connections(self) -> int:
        return max(0, self.connection_count - len(self.connections))

    @property
    def more_runs(self) -> int:
        return max(0, self.active_count - len(self.active_runs))

    @property
    def more_next_steps(self) -> int:
        return max(0, self.problem_count - len(self.next_steps))

    @property
    def spend_display(self) -> str:
        amounts = self.spend_month or {}
        if not amounts:
            return format_amount(0)
        return " + ".join(format_amount(value, currency) for currency, value in amounts.items())


def _health_counts(team: Team, overview: Overview) -> None:
    for row in Connection.objects.filter(team=team).values("health").annotate(n=Count("pk")):
        overview.connection_count += row["n"]
        if row["health"] == Health.OK:
            overview.ok_count += row["n"]
        elif row["health"] == Health.UNCHECKED:
            overview.unchecked_count += row["n"]
        else:
            overview.problem_count += row["n"]


def _day_start(now: datetime.datetime) -> datetime.datetime:
    return timezone.make_aware(
        datetime.datetime.combine(timezone.localdate(now), datetime.time.min)
    )


def _run_stats(team: Team, overview: Overview, now: datetime.datetime) -> None:
    today = timezone.localdate(now)
    day_start = _day_start(now)
    month_start = timezone.make_aware(
        datetime.datetime.combine(today.replace(day=1), datetime.time.min)
    )
    active = Q(status__in=ACTIVE_STATUSES) & ~run_overdue_q()
    stats = (
        Run.objects.filter(team=team)
        .filter(Q(created_at__gte=month_start) | active)
        .aggregate(
            runs_today=Count("pk", filter=Q(created_at__gte=day_start)),
            tokens_month=Coalesce(Sum(RUN_TOKENS, filter=Q(created_at__gte=month_start)), Value(0)),
            active=Count("pk", filter=active),
        )
    )
    overview.runs_today = stats["runs_today"]
    overview.tokens_month = stats["tokens_month"]
    overview.active_count = stats["active"]


def _next_steps(rows: list[ConnectionRow]) -> list[NextStep]:
    steps = []
    for row in rows:
        connection = row.connection
        text = NEXT_STEPS.get(connection.health)
        if text is None:
            continue
        steps.append(
            NextStep(
                connection=connection,
                text=str(text) % {"name": connection.name},
                severity=connection.health_severity,
                new_key=connection.health in KEY_HEALTH,
                reader_text=str(READER_STEPS[connection.health]) % {"name": connection.name},
                needs_admin=connection.health in ADMIN_HEALTH,
            )
        )
    return steps[:NEXT_STEPS_SHOWN]


def _errors(team: Team, *, with_connection_errors: bool) -> list[ErrorItem]:
    items = []
    if with_connection_errors:
        events = (
            ConnectionErrorEvent.objects.filter(connection__team=team)
            .select_related("connection", "user")
            .defer("connection__models_cache")
            .order_by("-created_at")[:ERRORS_SHOWN]
        )
        items += [ErrorItem(event.created_at, event.connection, event=event) for event in events]
    failed = Q(status__in=FAILED_STATUSES) | (
        ~Q(last_error_kind="") & ~Q(status__in=TERMINAL_STATUSES)
    )
    runs = (
        Run.objects.filter(team=team)
        .filter(failed)
        .select_related("connection", "started_by")
        .defer("connection__models_cache", "input", "output_text")
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
    overview = Overview()
    _health_counts(team, overview)

    connections = list(
        Connection.objects.filter(team=team)
        .defer("models_cache")
        .annotate(problem_rank=_problem_rank())
        .order_by("problem_rank", "name")[:CONNECTIONS_SHOWN]
    )
    spend: dict[Any, MonthSpend] = {}
    if with_costs:
        keyed = Connection.objects.filter(team=team).exclude(admin_key_encrypted="")
        overview.admin_key_count = keyed.count()
        # Only the rows whose stored spend is this month's are read (the rest count as not
        # known anyway): a team of thousands of admin keys is not decoded row by row.
        fetched = keyed.filter(month_spend__month=f"{utc_today(now):%Y-%m}").only(
            "pk", "admin_key_encrypted", "month_spend"
        )
        spend = month_spend_known(connections=fetched, now=now)
        overview.spend_known = len(spend)
        totals: dict[str, Decimal] = {}
        for known in spend.values():
            for currency, amount in known.amounts.items():
                totals[currency] = totals.get(currency, Decimal(0)) + amount
        overview.spend_month = totals
    overview.connections = [
        ConnectionRow(
            connection=connection,
            headroom=headroom(connection.rate_limit),
            spend=spend.get(connection.pk),
        )
        for connection in connections
    ]
    overview.next_steps = _next_steps(overview.connections)

    _run_stats(team, overview, now)
    overview.active_runs = list(
        Run.objects.filter(team=team, status__in=ACTIVE_STATUSES)
        .exclude(run_overdue_q())
        .select_related("connection", "started_by")
        .defer("connection__models_cache", "input", "output_text")
        .order_by("-created_at")[:RUNS_SHOWN]
    )
    overview.errors = _errors(team, with_connection_errors=with_errors_of_connections)
    overview.gateway_today = calls_since(team=team, since=_day_start(now), user=gateway_user)
    overview.heartbeat = heartbeat_known()
    return overview
