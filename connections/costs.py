"""What a connection's OpenAI organization spent, from `GET /organization/costs`.

The costs endpoint needs the organization's admin key (`sk-admin-…`), which a connection may
store next to its API key. The last 30 days (UTC, by day) are fetched, grouped by line item or
by project, and kept in the Django cache for an hour under a key naming the connection, the
stored admin key (a digest of its ciphertext, so a new or removed key never reads old
figures), the grouping and the UTC day. The costs page reads that cache, or asks live and
fills it (`costs_get`, which writes nothing to the database); its Refresh button, or background
work, calls `costs_refresh`, which also stores this month's spend on the connection and records
a failure. The team's home page never asks: it reads the stored spend (`month_spend_known`).
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.debug import sensitive_variables

from accounts.models import User
from connections import charts, crypto, services
from connections.models import Connection, ErrorOperation
from connections.outcome import Outcome
from lib import events
from provider.costs import GROUP_BY, CostLine, fetch_cost_lines
from provider.errors import ProviderError

GROUP_CHOICES = {
    "line_item": gettext_lazy("By line item"),
    "project": gettext_lazy("By project"),
}
CHART_TITLES = {
    "line_item": gettext_lazy("Costs per day, by line item"),
    "project": gettext_lazy("Costs per day, by project"),
}
DEFAULT_GROUP = "line_item"
WINDOW_DAYS = 30
CACHE_SECONDS = 60 * 60
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


def cache_key(connection: Connection, group: str, day: date) -> str:
    return f"connections:costs:{connection.pk}:{_key_digest(connection)}:{group}:{day:%Y-%m-%d}"


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

    @property
    def totals(self) -> dict[str, Decimal]:
        """Total per currency, largest first."""
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
        for line in self.lines:
            if line.currency == self.currency:
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
    report: CostReport | None  # None: no admin key, or nothing fetched yet and it failed
    error: ProviderError | None = None

    @property
    def stale(self) -> bool:
        """A report from the cache shown next to the error of a failed refresh."""
        return self.report is not None and self.error is not None


def costs_get(*, connection: Connection, group: str) -> CostsResult:
    """The connection's costs for the page: from the Django cache, else asked live (and kept
    in the cache, which is not the database). Writes nothing to the database: a failure is
    returned, not recorded, and the month's spend on the connection is `costs_refresh`'s to
    store. Without an admin key nothing is asked."""
    if not connection.has_admin_key:
        return CostsResult(report=None)
    key = cache_key(connection, group, utc_today())
    cached = cache.get(key)
    if cached:
        return CostsResult(report=CostReport.from_cache(cached))
    try:
        fresh = costs_fetch(connection=connection, group=group)
    except ProviderError as error:
        return CostsResult(report=None, error=error)
    cache.set(key, fresh.to_cache(), CACHE_SECONDS)
    return CostsResult(report=fresh)


def costs_refresh(
    *, connection: Connection, group: str, user: User | None = None
) -> Outcome[CostReport]:
    """Ask the provider again (a page's Refresh, or background work): the report goes into the
    cache and this month's spend onto the connection (for the home page); a failure goes into
    the connection's error history. The outcome's value is the new report (None on failure,
    or without an admin key, when nothing is asked)."""
    if not connection.has_admin_key:
        return Outcome()
    try:
        fresh = costs_fetch(connection=connection, group=group)
    except ProviderError as error:
        services.error_event_record(
            connection=connection, error=error, operation=OPERATION, user=user
        )
        return Outcome(error=error)
    cache.set(cache_key(connection, group, utc_today()), fresh.to_cache(), CACHE_SECONDS)
    month_spend_store(connection=connection, report=fresh)
    return Outcome(value=fresh)


def month_spend_remember(*, connection: Connection, group: str) -> bool:
    """Store this month's spend from the report the cache holds for today (the one the costs
    page just showed), without asking the provider. The page asks for this with a POST once it
    is shown, so that the home page knows the figure too. False when the cache holds none."""
    report = costs_cached(connection=connection, group=group)
    if report is None:
        return False
    month_spend_store(connection=connection, report=report)
    return True


def month_spend_is_from(connection: Connection, report: CostReport) -> bool:
    """Whether the spend stored on the connection was taken from `report`."""
    return (connection.month_spend or {}).get("fetched_at") == report.fetched_at.isoformat()


def costs_cached(*, connection: Connection, group: str) -> CostReport | None:
    """The report the cache holds for today, if any (never asks the provider)."""
    cached = cache.get(cache_key(connection, group, utc_today()))
    return CostReport.from_cache(cached) if cached else None


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
    events.month_spend_stored.send(Connection, connection_id=connection.pk)


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
