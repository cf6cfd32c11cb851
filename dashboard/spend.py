"""The team's spend: the costs of every connection with an admin key, put together.

Reads only, and never asks the provider: each connection's costs are the ones its costs page
keeps (connections/costs.py, fetched hourly by a task or on Refresh). Three queries whatever
the size of the team: the connections, their kept costs, the team's alert settings.

The provider's costs answer can be grouped by line item (which names the model: "gpt-4o,
input") or by project, so the page groups by connection, model, line item or project; by
connection and by model it reads the line-item figures, summed per connection or per model.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from django.utils.translation import gettext_lazy as _

from accounts.models import Team
from connections import costs
from connections.models import Connection
from dashboard.models import TeamAlertSettings
from provider.costs import CostLine
from provider.errors import ProviderError

GROUPS = {
    "connection": _("By connection"),
    "model": _("By model"),
    "line_item": costs.GROUP_CHOICES["line_item"],
    "project": costs.GROUP_CHOICES["project"],
}
DEFAULT_GROUP = "connection"
# Which kept costs each grouping reads.
_SOURCE = {
    "connection": "line_item",
    "model": "line_item",
    "line_item": "line_item",
    "project": "project",
}


def model_of(line_item: str) -> str:
    """The model a line item names: OpenAI's read "<model>, <what>" ("gpt-4o-2024-08-06,
    input"); an item that names no model (a tool's calls, storage) stays whole."""
    return line_item.split(",", 1)[0].strip()


def group_from(value: str | None) -> str:
    return value if value in GROUPS else DEFAULT_GROUP


class SpendLine(NamedTuple):
    """One amount (a tuple: a team's Spend has thousands, built on every view)."""

    day: date
    connection: str  # the connection's name
    item: str  # line item or project ("" for connection grouping)
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class ConnectionState:
    """How one connection's costs stand: fetched (when), not yet, or failing (why)."""

    connection: Connection
    fetched_at: datetime | None
    error: ProviderError | None


@dataclass
class Spend:
    group: str
    lines: list[SpendLine]
    report: costs.CostReport | None  # all connections in one report (for the chart and sums)
    states: list[ConnectionState]
    without_admin_key: list[Connection]
    month: dict[str, Decimal] = field(default_factory=dict)  # as the alerts count it
    threshold: Decimal | None = None

    @property
    def threshold_reached(self) -> bool:
        return self.threshold is not None and self.month.get("usd", Decimal(0)) >= self.threshold

    def rows(self) -> list[SpendLine]:
        """The table: newest day first, then the largest amounts; zero lines left out."""
        lines = [line for line in self.lines if line.amount]
        return sorted(
            lines,
            key=lambda line: (-line.day.toordinal(), -line.amount, line.connection, line.item),
        )


def spend_get(*, team: Team, group: str) -> Spend:
    connections = list(
        Connection.objects.filter(team=team).defer("models_cache").order_by("name", "pk")
    )
    found = costs.costs_for_connections(connections=connections, group=_SOURCE[group])
    lines: list[SpendLine] = []
    states: list[ConnectionState] = []
    merged: list[CostLine] = []
    starts, ends, fetched = [], [], []
    for connection, result in found:
        report = result.report
        states.append(
            ConnectionState(connection, report.fetched_at if report else None, result.error)
        )
        if report is None:
            continue
        starts.append(report.start)
        ends.append(report.end)
        fetched.append(report.fetched_at)
        for line in report.lines:
            if group == "connection":
                item = ""
            elif group == "model":
                item = model_of(line.group) or costs.group_label("line_item", "")
            else:
                item = line.group or costs.group_label(group, "")
            lines.append(SpendLine(line.day, connection.name, item, line.amount, line.currency))
            # The chart stacks by connection, or by item across connections.
            series = connection.name if group == "connection" else item
            merged.append(CostLine(line.day, series, line.amount, line.currency))
    if group in ("connection", "model"):
        lines = _summed(lines)
    report = None
    if merged or starts:
        report = costs.CostReport(
            group=group,
            start=min(starts),
            end=max(ends),
            fetched_at=min(fetched),
            lines=merged,
        )
    settings_row = TeamAlertSettings.objects.filter(team=team).only("spend_threshold").first()
    month = {}
    for spend in costs.month_spend_known(connections=connections).values():
        for currency, amount in spend.amounts.items():
            month[currency.lower()] = month.get(currency.lower(), Decimal(0)) + amount
    return Spend(
        group=group,
        lines=lines,
        report=report,
        states=states,
        without_admin_key=[c for c in connections if not c.has_admin_key],
        month=month,
        threshold=settings_row.spend_threshold if settings_row else None,
    )


def _summed(lines: list[SpendLine]) -> list[SpendLine]:
    """One line per day, connection, item and currency: the line items of one connection (or
    of one model) summed."""
    sums: dict[tuple[date, str, str, str], Decimal] = {}
    for line in lines:
        key = (line.day, line.connection, line.item, line.currency)
        sums[key] = sums.get(key, Decimal(0)) + line.amount
    return [
        SpendLine(day, connection, item, amount, currency)
        for (day, connection, item, currency), amount in sums.items()
    ]


def spend_csv_rows(spend: Spend, *, headers: list[Any]) -> list[list[object]]:
    """The CSV: one row per day, connection and item (no item column when grouped by
    connection), every amount as the provider gave it (zero ones too)."""
    rows: list[list[object]] = [headers]
    for line in sorted(spend.lines, key=lambda line: (line.day, line.connection, line.item)):
        item = [] if spend.group == "connection" else [line.item]
        rows.append([line.day.isoformat(), line.connection, *item, str(line.amount), line.currency])
    return rows
