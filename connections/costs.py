"""What a connection's OpenAI organization spent, from `GET /organization/costs`.

The costs endpoint needs the organization's admin key (`sk-admin-…`), which a connection may
store next to its API key. The last 30 days (UTC, by day) are fetched, grouped by line item or
by project, by `costs_refresh` (the hourly task, or the page's Refresh, which queues that
task): the report is kept in the database (a CostSnapshot per grouping, naming the admin key
it was read with, so a new or removed key never shows old figures), this month's spend onto
the connection, and a failure into the error history. The costs page never asks the provider:
it shows the kept report (`costs_get`, which writes nothing). The team's home page reads the
stored spend (`month_spend_known`).
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_variables

from accounts.models import User
from connections import charts, crypto, services
from connections.models import Connection, CostSnapshot, ErrorOperation
from connections.outcome import Outcome
from lib import events
from provider.costs import GROUP_BY, CostLine, fetch_cost_lines
from provider.errors import ErrorKind, ProviderError

GROUP_CHOICES = {
    "line_item": gettext_lazy("By line item"),
    "project": gettext_lazy("By project"),
}
CHART_TITLES = {
    "connection": gettext_lazy("Costs per day, by connection"),
    "model": gettext_lazy("Costs per day, by model"),
    "line_item": gettext_lazy("Costs per day, by line item"),
    "project": gettext_lazy("Costs per day, by project"),
}
DEFAULT_GROUP = "line_item"
WINDOW_DAYS = 30
OPERATION = ErrorOperation.COSTS_LIST
ADMIN_KEYS_URL = "https://platform.openai.com/settings/organization/admin-keys"
USAGE_URL = "https://platform.openai.com/usage"


def group_from(value: str | None) -> str:
    """The grouping asked for, or the default for anything unknown."""
    return value if value in GROUP_BY else DEFAULT_GROUP


def utc_today(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(UTC).date()


def window_start(today: date) -> date:
    return today - timedelta(days=WINDOW_DAYS)


def _key_digest(connection: Connection) -> str:
    return hashlib.sha256(connection.admin_key_encrypted.encode()).hexdigest()[:16]


# --- the report --------------------------------------------------------------------------------


@dataclass
class CostReport:
    group: str
    start: date
    end: date  # the last day of the window (the UTC day it was fetched on)
    fetched_at: datetime
    lines: list[CostLine] = field(default_factory=list)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    @cached_property
    def totals(self) -> dict[str, Decimal]:
        """Total per currency, largest first (worked out once: a report's lines are not
        changed after it is built, and a team's report has thousands)."""
        totals: dict[str, Decimal] = {}
        for line in self.lines:
            totals[line.currency] = totals.get(line.currency, Decimal(0)) + line.amount
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    @property
    def currency(self) -> str:
        """The currency the chart is drawn in (the largest; "usd" for an empty report)."""
        return next(iter(self.totals), "usd")

    @property
    def total(self) -> Decimal:
        return self.totals.get(self.currency, Decimal(0))

    def month_totals(self, today: date) -> dict[str, Decimal]:
        """Spend per currency from the first of `today`'s month (UTC) on."""
        first = today.replace(day=1)
        totals: dict[str, Decimal] = {}
        for line in self.lines:
            if line.day >= first:
                totals[line.currency] = totals.get(line.currency, Decimal(0)) + line.amount
        return totals

    def group_totals(self) -> list[tuple[str, Decimal]]:
        """(group, total) in the chart's currency, largest first."""
        totals: dict[str, Decimal] = {}
        currency = self.currency  # computed from every line: once, not once a line
        for line in self.lines:
            if line.currency == currency:
                totals[line.group] = totals.get(line.group, Decimal(0)) + line.amount
        return sorted(totals.items(), key=lambda item: (-item[1], item[0]))

    def rows(self) -> list[CostLine]:
        """The table: newest day first, then the largest amounts; zero lines left out."""
        lines = [line for line in self.lines if line.amount]
        return sorted(lines, key=lambda line: (-line.day.toordinal(), -line.amount, line.group))

    # The cache holds plain data, so a change to these classes never reads a stale pickle.
    def to_cache(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "fetched_at": self.fetched_at.isoformat(),
            "lines": [
                [line.day.isoformat(), line.group, str(line.amount), line.currency]
                for line in self.lines
            ],
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> "CostReport":
        return cls(
            group=data["group"],
            start=date.fromisoformat(data["start"]),
            end=date.fromisoformat(data["end"]),
            fetched_at=datetime.fromisoformat(data["fetched_at"]),
            lines=[
                CostLine(date.fromisoformat(day), group, Decimal(amount), currency)
                for day, group, amount, currency in data["lines"]
            ],
        )


def group_label(group: str, value: str) -> str:
    """How a group value reads on the page (an empty one gets words)."""
    if value:
        return value
    return _("No project") if group == "project" else _("Other items")


# --- talking to the provider -------------------------------------------------------------------


@sensitive_variables()
def costs_fetch(*, connection: Connection, group: str, now: datetime | None = None) -> CostReport:
    """Ask the provider for the last 30 days of costs (following `next_page`).

    Raises ProviderError for every failure (KEY_UNREADABLE when the admin key does not
    decrypt). The caller checks that the connection has an admin key.
    """
    now = now or timezone.now()
    today = utc_today(now)
    start = window_start(today)
    try:
        client = services.client_for(connection, admin=True)
    except crypto.DecryptionError:
        raise services.unreadable_key_error() from None
    lines = fetch_cost_lines(client, start=start, group=group)
    return CostReport(group=group, start=start, end=today, fetched_at=now, lines=lines)


@dataclass
class CostsResult:
    report: CostReport | None  # None: no admin key, or nothing fetched yet
    error: ProviderError | None = None  # the last fetch failed (after `report` was fetched)
    error_at: datetime | None = None

    @property
    def stale(self) -> bool:
        """A report kept from before, shown next to the error of a later failed fetch."""
        return self.report is not None and self.error is not None


def _snapshot(connection: Connection, group: str) -> CostSnapshot | None:
    return CostSnapshot.objects.filter(
        connection=connection, group=group, key_digest=_key_digest(connection)
    ).first()


def costs_get(*, connection: Connection, group: str) -> CostsResult:
    """The connection's costs for the page, as last fetched (`costs_refresh`, by the hourly
    task or the page's Refresh): never asks the provider and writes nothing. Without an admin
    key, or before the first fetch with the stored one, the report is None."""
    if not connection.has_admin_key:
        return CostsResult(report=None)
    return _result(_snapshot(connection, group))


def costs_for_connections(
    *, connections: Iterable[Connection], group: str
) -> list[tuple[Connection, CostsResult]]:
    """`costs_get` for several connections, in one query: each connection with an admin key,
    with its kept costs (report None when not fetched yet with the stored key)."""
    keyed = [connection for connection in connections if connection.has_admin_key]
    snapshots = {
        (snapshot.connection_id, snapshot.key_digest): snapshot
        for snapshot in CostSnapshot.objects.filter(connection__in=keyed, group=group)
    }
    return [
        (connection, _result(snapshots.get((connection.pk, _key_digest(connection)))))
        for connection in keyed
    ]


def _result(snapshot: CostSnapshot | None) -> CostsResult:
    if snapshot is None:
        return CostsResult(report=None)
    report = None
    if snapshot.report:
        try:
            report = CostReport.from_cache(snapshot.report)
        except (KeyError, TypeError, ValueError, ArithmeticError):
            report = None  # written by an older version: as if never fetched
    error = None
    if snapshot.error_kind:
        try:
            kind = ErrorKind(snapshot.error_kind)
        except ValueError:  # written by an older version
            kind = ErrorKind.BAD_RESPONSE
        error = ProviderError(kind, snapshot.error_message)
    return CostsResult(report=report, error=error, error_at=snapshot.error_at)


def _snapshot_store(
    *, connection: Connection, group: str, report: CostReport | None, error: ProviderError | None
) -> None:
    digest = _key_digest(connection)
    if report is not None:
        values = {
            "key_digest": digest,
            "report": report.to_cache(),
            "fetched_at": report.fetched_at,
            "error_kind": "",
            "error_message": "",
            "error_at": None,
        }
        CostSnapshot.objects.update_or_create(connection=connection, group=group, defaults=values)
        return
    assert error is not None
    failure = {
        "error_kind": error.kind.value,
        "error_message": error.message,
        "error_at": timezone.now(),
    }
    kept = CostSnapshot.objects.filter(connection=connection, group=group, key_digest=digest)
    if not kept.update(**failure):
        CostSnapshot.objects.update_or_create(
            connection=connection,
            group=group,
            defaults={"key_digest": digest, "report": None, "fetched_at": None, **failure},
        )


def costs_refresh(
    *, connection: Connection, group: str, user: User | None = None
) -> Outcome[CostReport]:
    """Ask the provider again (the hourly task, or the page's Refresh through a task): the
    report is kept for the page (a CostSnapshot) and this month's spend onto the connection
    (for the home page); a failure is noted next to the report kept before and goes into the
    connection's error history. The outcome's value is the new report (None on failure, or
    without an admin key, when nothing is asked)."""
    if not connection.has_admin_key:
        return Outcome()
    try:
        fresh = costs_fetch(connection=connection, group=group)
    except ProviderError as error:
        services.error_event_record(
            connection=connection, error=error, operation=OPERATION, user=user
        )
        _snapshot_store(connection=connection, group=group, report=None, error=error)
        return Outcome(error=error)
    _snapshot_store(connection=connection, group=group, report=fresh, error=None)
    month_spend_store(connection=connection, report=fresh)
    return Outcome(value=fresh)


def month_spend_store(*, connection: Connection, report: CostReport) -> None:
    """Keep this month's total on the connection for the home page, unless the admin key it
    was read with was replaced or removed meanwhile."""
    today = report.end
    value = {
        "month": f"{today:%Y-%m}",
        "amounts": {
            currency: str(amount) for currency, amount in report.month_totals(today).items()
        },
        "fetched_at": report.fetched_at.isoformat(),
    }
    Connection.objects.filter(
        pk=connection.pk, admin_key_encrypted=connection.admin_key_encrypted
    ).update(month_spend=value)
    connection.month_spend = value
    events.month_spend_stored.send(
        Connection, connection_id=connection.pk, team_id=connection.team_id
    )


# --- what the home page may know without asking -----------------------------------------------


@dataclass(frozen=True)
class MonthSpend:
    amounts: dict[str, Decimal]  # per currency
    fetched_at: datetime

    @property
    def display(self) -> str:
        if not self.amounts:
            return charts.format_amount(0)
        return " + ".join(
            charts.format_amount(amount, currency) for currency, amount in self.amounts.items()
        )


def month_spend_known(
    *, connections: Iterable[Connection], now: datetime | None = None
) -> dict[Any, MonthSpend]:
    """This month's spend (UTC) per connection, as the costs page last fetched it (stored on
    the connection, so no cache or provider is asked); connections with no admin key, or
    whose costs were not fetched this month, are missing from the answer."""
    month = f"{utc_today(now):%Y-%m}"
    found: dict[Any, MonthSpend] = {}
    for connection in connections:
        stored = connection.month_spend or {}
        if not connection.has_admin_key or stored.get("month") != month:
            continue
        try:
            amounts = {
                str(currency): Decimal(amount) for currency, amount in stored["amounts"].items()
            }
            fetched_at = datetime.fromisoformat(stored["fetched_at"])
        except (KeyError, TypeError, AttributeError, ValueError, ArithmeticError):
            continue  # written by an older version, or edited by hand: not known
        found[connection.pk] = MonthSpend(amounts, fetched_at)
    return found


# --- the page's chart ---------------------------------------------------------------------------


def costs_chart(report: CostReport, *, chart_id: str = "costs-chart") -> charts.BarChart:
    """Daily costs in the report's main currency, stacked by group."""
    currency = report.currency
    per_day: dict[date, dict[str, Decimal]] = {day: {} for day in report.days}
    for line in report.lines:
        if line.currency == currency and line.day in per_day:
            values = per_day[line.day]
            values[line.group] = values.get(line.group, Decimal(0)) + line.amount
    groups = {line.group for line in report.lines if line.currency == currency}
    columns = [
        charts.Column(
            label=date_format(day, "j M"),
            title=date_format(day, "DATE_FORMAT"),
            values=values,
        )
        for day, values in per_day.items()
    ]
    return charts.bar_chart(
        chart_id=chart_id,
        columns=columns,
        title=str(CHART_TITLES[report.group]),
        description=_(
            "Daily costs from %(start)s to %(end)s (UTC), %(total)s in all. The table below "
            "gives every amount."
        )
        % {
            "start": date_format(report.start, "DATE_FORMAT"),
            "end": date_format(report.end, "DATE_FORMAT"),
            "total": charts.format_amount(report.total, currency),
        },
        y_axis_label=currency.upper(),
        format_value=lambda value: charts.format_amount(value, currency),
        format_tick=lambda value: charts.format_amount(value, ""),
        series_labels={group: group_label(report.group, group) for group in groups},
    )
