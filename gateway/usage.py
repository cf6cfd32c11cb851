"""Who used the gateway for what: requests, errors, tokens, money and latency per member,
token, model, endpoint family or day.

Read from the `GatewayCall` rows, aggregated in the database by (group, model, day) in one
query; the prices (one query) turn those sums into money in Python, so each call is priced at
the price in force on its date. Latency percentiles come from the database too: PostgreSQL's
`percentile_cont`, or elsewhere (SQLite) the same interpolation over a bounded sample of the
most recent calls of each group. A fixed handful of queries whatever the number of calls.
Days are days in the server's time zone (TIME_ZONE).
"""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection as db_connection
from django.db.models import (
    Aggregate,
    CharField,
    Count,
    F,
    FloatField,
    Q,
    QuerySet,
    Sum,
    Value,
    Window,
)
from django.db.models.functions import Cast, Coalesce, Concat, RowNumber, TruncDate
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from accounts.models import Team, User
from connections import charts
from gateway.models import ApiToken, GatewayCall
from gateway.prices import Money, PriceBook
from gateway.scopes import Scope

# Latencies read per group where the database cannot compute percentiles itself.
LATENCY_SAMPLE = 1000
PERCENTILES = (0.5, 0.95, 0.99)
# The longest custom range a page or an export covers.
MAX_RANGE_DAYS = 366


# How the usage is broken down (the `by` URL parameter).
GROUPS: dict[str, Any] = {
    "member": gettext_lazy("Member"),
    "token": gettext_lazy("Token"),
    "model": gettext_lazy("Model"),
    "family": gettext_lazy("Endpoint family"),
    "day": gettext_lazy("Day"),
    "member_model": gettext_lazy("Member"),
}
# The same, as the page's tabs and headings name them.
GROUP_TITLES: dict[str, Any] = {
    "member": gettext_lazy("By member"),
    "token": gettext_lazy("By token"),
    "model": gettext_lazy("By model"),
    "family": gettext_lazy("By endpoint family"),
    "day": gettext_lazy("By day"),
    "member_model": gettext_lazy("By member and model"),
}
# Who spent what on which model: the member's and the model's key in one ("<user id>:<model>";
# a user id, a UUID, has no colon; a model's may).
MEMBER_MODEL_SEPARATOR = ":"


def _key_expression(group: str) -> Any:
    return {
        "member": F("user_id"),
        "token": F("token_id"),
        "model": F("model"),
        "family": F("family"),
        "day": TruncDate("created_at"),
        "member_model": Concat(
            Coalesce(Cast("user_id", CharField()), Value("")),
            Value(MEMBER_MODEL_SEPARATOR),
            F("model"),
            output_field=CharField(),
        ),
    }[group]


# --- periods -----------------------------------------------------------------------------------

PERIODS: dict[str, Any] = {
    "this_month": gettext_lazy("This month"),
    "last_month": gettext_lazy("Last month"),
    "7d": gettext_lazy("Last 7 days"),
    "30d": gettext_lazy("Last 30 days"),
    "custom": gettext_lazy("Custom range"),
}


def period_range(period: str, *, today: datetime.date) -> tuple[datetime.date, datetime.date]:
    """The first and last day (both included) of a named period ending today."""
    if period == "last_month":
        last = today.replace(day=1) - datetime.timedelta(days=1)
        return last.replace(day=1), last
    if period == "7d":
        return today - datetime.timedelta(days=6), today
    if period == "30d":
        return today - datetime.timedelta(days=29), today
    return today.replace(day=1), today


def _start_of(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def usage_calls(
    *, team: Team, since: datetime.date, until: datetime.date, user_id: Any = None
) -> QuerySet[GatewayCall]:
    """The team's calls from the start of `since` to the end of `until`; only `user_id`'s
    when given (what a member may see)."""
    calls = GatewayCall.objects.filter(
        team=team,
        created_at__gte=_start_of(since),
        created_at__lt=_start_of(until + datetime.timedelta(days=1)),
    )
    if user_id is not None:
        calls = calls.filter(user_id=user_id)
    return calls


# --- rows --------------------------------------------------------------------------------------


@dataclass
class Latency:
    """Percentiles of the latency in milliseconds (None where no call has one)."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    sampled: bool = False  # the sample was full: computed on the latest LATENCY_SAMPLE calls

    def __post_init__(self) -> None:
        # Rounded to a microsecond: 95.49999999 and 95.5 are the same latency, and both
        # databases then show the same whole milliseconds.
        for name in ("p50", "p95", "p99"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, round(float(value), 3))

    @property
    def known(self) -> bool:
        return self.p50 is not None

    def as_list(self) -> list[float | None]:
        return [self.p50, self.p95, self.p99]


@dataclass
class UsageRow:
    key: Any
    label: str
    detail: str = ""  # a second line: a member's email, a token's prefix
    model: str = ""  # by member and model: the model (the label is the member)
    gone: bool = False  # the member or token no longer exists
    requests: int = 0
    errors: int = 0
    input: int = 0
    cached: int = 0
    output: int = 0
    money: Money = field(default_factory=Money)
    latency: Latency | None = None

    @property
    def tokens(self) -> int:
        return self.input + self.output

    def add(self, values: dict[str, Any]) -> None:
        self.requests += values["requests"]
        self.errors += values["errors"]
        self.input += values["input"]
        self.cached += values["cached"]
        self.output += values["output"]


@dataclass
class UsageReport:
    group: str
    since: datetime.date
    until: datetime.date
    totals: UsageRow
    rows: list[UsageRow]
    # Per day (every day of the range), tokens per group key.
    per_day: list[tuple[datetime.date, dict[Any, int]]]

    @property
    def empty(self) -> bool:
        return self.totals.requests == 0


def _sums() -> dict[str, Any]:
    zero = Value(0)
    return {
        "requests": Count("pk"),
        "errors": Count("pk", filter=Q(status__gte=400) | Q(refused=True)),
        "input": Coalesce(Sum("input_tokens"), zero),
        "cached": Coalesce(Sum("cached_tokens"), zero),
        "output": Coalesce(Sum("output_tokens"), zero),
    }


def _labels(group: str, keys: Iterable[Any]) -> dict[Any, tuple[str, str, bool]]:
    """(label, detail, gone) per key; one query for members and tokens."""
    keys = list(keys)
    labels: dict[Any, tuple[str, str, bool]] = {}
    if group == "member_model":
        members = _labels("member", {_member_of(key) for key in keys})
        return {key: members[_member_of(key)] for key in keys}
    if group == "member":
        users = {u.pk: u for u in User.objects.filter(pk__in=[k for k in keys if k is not None])}
        for key in keys:
            user = users.get(key)
            if key is None:
                labels[key] = (_("No member (service tokens)"), "", False)
            elif user is None:
                labels[key] = (_("Removed account"), "", True)
            else:
                labels[key] = (user.name or user.email, user.email if user.name else "", False)
    elif group == "token":
        tokens = {
            t.pk: t
            for t in ApiToken.objects.filter(pk__in=[k for k in keys if k is not None]).only(
                "pk", "name", "prefix"
            )
        }
        for key in keys:
            token = tokens.get(key)
            if token is None:
                labels[key] = (_("Deleted token"), "", True)
            else:
                labels[key] = (token.name, token.display_prefix, False)
    elif group == "model":
        for key in keys:
            labels[key] = (key or _("(no model)"), "", False)
    elif group == "family":
        names = dict(Scope.choices)
        for key in keys:
            labels[key] = (str(names.get(key, key)), "", False)
    else:
        for key in keys:
            labels[key] = (date_format(key, "DATE_FORMAT"), "", False)
    return labels


def _member_of(key: str) -> uuid.UUID | None:
    """The member's id in a by-member-and-model key (None: a service token's calls)."""
    user_id = key.split(MEMBER_MODEL_SEPARATOR, 1)[0]
    return uuid.UUID(user_id) if user_id else None


def _model_of(key: str) -> str:
    return key.split(MEMBER_MODEL_SEPARATOR, 1)[1]


def _aggregate(
    calls: QuerySet[GatewayCall], *, group: str, book: PriceBook
) -> tuple[dict[Any, UsageRow], UsageRow, dict[datetime.date, dict[Any, int]]]:
    """Rows per key of `group`, their totals and the tokens per day and key: one query."""
    aggregated = (
        calls.annotate(key=_key_expression(group), day=TruncDate("created_at"))
        .values("key", "model", "day")
        .annotate(**_sums())
        .order_by()
    )
    rows: dict[Any, UsageRow] = {}
    totals = UsageRow(key=None, label=_("All calls"))
    by_day: dict[datetime.date, dict[Any, int]] = {}
    # Tokens per key and price (None: no price), priced once at the end.
    priced: dict[tuple[Any, Any], list[int]] = {}
    for values in aggregated:
        key = values["key"]
        row = rows.get(key)
        if row is None:
            row = rows[key] = UsageRow(key=key, label="")
        row.add(values)
        totals.add(values)
        day_tokens = by_day.setdefault(values["day"], {})
        day_tokens[key] = day_tokens.get(key, 0) + values["input"] + values["output"]
        price = book.price_on(values["model"], values["day"])
        sums = priced.setdefault((key, price and price.pk), [0, 0, 0])
        sums[0] += values["input"]
        sums[1] += values["cached"]
        sums[2] += values["output"]
    for (key, price_id), (input, cached, output) in priced.items():
        money = book.cost_at(book.get(price_id), input=input, cached=cached, output=output)
        rows[key].money.merge(money)
        totals.money.merge(money)
    return rows, totals, by_day


def usage_report(
    *,
    team: Team,
    group: str,
    since: datetime.date,
    until: datetime.date,
    user_id: Any = None,
) -> UsageReport:
    """The usage of `team` (or of one member) from `since` to `until`, broken down by `group`.
    Latency is left out: `usage_latency_fill` adds it to the rows a page shows."""
    calls = usage_calls(team=team, since=since, until=until, user_id=user_id)
    rows, totals, by_day = _aggregate(calls, group=group, book=PriceBook.for_team(team))
    for key, (label, detail, gone) in _labels(group, rows).items():
        rows[key].label, rows[key].detail, rows[key].gone = label, detail, gone
        if group == "member_model":
            rows[key].model = _model_of(key) or _("(no model)")
    if group == "day":
        ordered = sorted(rows.values(), key=lambda row: row.key, reverse=True)
    elif group == "member_model":  # each member's models together, most tokens first
        spent: dict[Any, int] = {}
        for row in rows.values():
            member = _member_of(row.key)
            spent[member] = spent.get(member, 0) + row.tokens
        ordered = sorted(
            rows.values(),
            key=lambda row: (
                -spent[_member_of(row.key)],
                row.label,
                str(_member_of(row.key) or ""),
                -row.tokens,
                row.model,
            ),
        )
    else:
        ordered = sorted(rows.values(), key=lambda row: (-row.tokens, -row.requests, row.label))

    per_day = []
    day = since
    while day <= until:
        per_day.append((day, by_day.get(day, {})))
        day += datetime.timedelta(days=1)
    return UsageReport(
        group=group, since=since, until=until, totals=totals, rows=ordered, per_day=per_day
    )


def token_usage_this_month(
    *, team: Team, token_ids: Iterable[Any], today: datetime.date | None = None
) -> dict[Any, UsageRow]:
    """Each token's use this month (requests, errors, tokens, money where priced), for the
    token list; tokens without a call are left out. Two queries whatever the number."""
    token_ids = list(token_ids)
    if not token_ids:
        return {}
    since, until = period_range("this_month", today=today or timezone.localdate())
    calls = usage_calls(team=team, since=since, until=until).filter(token_id__in=token_ids)
    return usage_by(calls, group="token", book=PriceBook.for_team(team))


def usage_by(calls: QuerySet[GatewayCall], *, group: str, book: PriceBook) -> dict[Any, UsageRow]:
    """The use of `calls` per key of `group` (requests, errors, tokens, money), unlabelled.
    One query."""
    rows, _totals, _by_day = _aggregate(calls, group=group, book=book)
    return rows


# --- latency percentiles -----------------------------------------------------------------------


class PercentilesCont(Aggregate):
    """PostgreSQL's `percentile_cont(ARRAY[p, ...]) WITHIN GROUP (ORDER BY x)`: the values at
    each fraction, interpolated between the two nearest calls, from one sort."""

    function = "PERCENTILE_CONT"
    template = (
        "%(function)s(ARRAY[%(fractions)s]::float8[]) WITHIN GROUP (ORDER BY %(expressions)s)"
    )

    def __init__(self, expression: Any, fractions: Sequence[float], **extra: Any):
        from django.contrib.postgres.fields import ArrayField

        super().__init__(
            expression,
            fractions=", ".join(repr(float(fraction)) for fraction in fractions),
            output_field=ArrayField(FloatField()),
            **extra,
        )


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """The same interpolation as PostgreSQL's percentile_cont, over sorted `values`."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    low, high = math.floor(position), math.ceil(position)
    return float(values[low] + (values[high] - values[low]) * (position - low))


def _in_keys(keys: Sequence[Any]) -> Q:
    present = [key for key in keys if key is not None]
    condition = Q(key__in=present)
    if len(present) != len(keys):
        condition |= Q(key__isnull=True)
    return condition


def usage_latency(
    calls: QuerySet[GatewayCall], *, group: str | None, keys: Sequence[Any] = ()
) -> dict[Any, Latency]:
    """Latency percentiles per key of `group` (only `keys`), or of all `calls` under the key
    None when `group` is None. One query."""
    timed = calls.filter(latency_ms__isnull=False).order_by()
    if group is not None:
        if not keys:
            return {}
        timed = timed.annotate(key=_key_expression(group)).filter(_in_keys(keys))
    if db_connection.vendor == "postgresql":
        percentiles = PercentilesCont("latency_ms", PERCENTILES)
        if group is None:
            found = [{"key": None, **timed.aggregate(values=percentiles)}]
        else:
            found = list(timed.values("key").annotate(values=percentiles).order_by())
        return {row["key"]: Latency(*row["values"]) for row in found if row["values"]}
    # Elsewhere, the most recent LATENCY_SAMPLE calls of each group.
    if group is None:
        pairs = [
            (None, value)
            for value in timed.order_by("-created_at").values_list("latency_ms", flat=True)[
                :LATENCY_SAMPLE
            ]
        ]
    else:
        pairs = list(
            timed.annotate(
                rank=Window(RowNumber(), partition_by=[F("key")], order_by=F("created_at").desc())
            )
            .filter(rank__lte=LATENCY_SAMPLE)
            .values_list("key", "latency_ms")
        )
    samples: dict[Any, list[int]] = {}
    for key, value in pairs:
        samples.setdefault(key, []).append(value)
    latencies = {}
    for key, values in samples.items():
        values.sort()
        latencies[key] = Latency(
            *(percentile_cont(values, fraction) for fraction in PERCENTILES),
            sampled=len(values) >= LATENCY_SAMPLE,
        )
    return latencies


def usage_latency_fill(
    rows: Sequence[UsageRow],
    *,
    team: Team,
    group: str,
    since: datetime.date,
    until: datetime.date,
    user_id: Any = None,
) -> None:
    """Set the latency percentiles of `rows` (a page of a report), in one query."""
    calls = usage_calls(team=team, since=since, until=until, user_id=user_id)
    found = usage_latency(calls, group=group, keys=[row.key for row in rows])
    for row in rows:
        row.latency = found.get(row.key, Latency())


def usage_totals_latency(
    *, team: Team, since: datetime.date, until: datetime.date, user_id: Any = None
) -> Latency:
    calls = usage_calls(team=team, since=since, until=until, user_id=user_id)
    return usage_latency(calls, group=None).get(None, Latency())


# --- chart -------------------------------------------------------------------------------------


def usage_chart(report: UsageReport, *, chart_id: str = "gateway-usage-chart") -> charts.BarChart:
    """Tokens per day, stacked by the report's group (one bar a day when grouped by day)."""
    labels = {
        str(row.key): f"{row.label} · {row.model}" if row.model else row.label
        for row in report.rows
    }
    stacked = report.group != "day" and len(labels) > 1
    columns = []
    for day, tokens in report.per_day:
        total = sum(tokens.values())
        values = {str(key): count for key, count in tokens.items()} if stacked else {"": total}
        columns.append(
            charts.Column(
                label=date_format(day, "j M"),
                title=date_format(day, "DATE_FORMAT"),
                values=values,
            )
        )
    return charts.bar_chart(
        chart_id=chart_id,
        columns=columns,
        title=_("Tokens per day"),
        description=_(
            "Tokens used through the gateway from %(since)s to %(until)s: %(tokens)s in "
            "%(requests)s requests. The table below gives the figures."
        )
        % {
            "since": date_format(report.since, "DATE_FORMAT"),
            "until": date_format(report.until, "DATE_FORMAT"),
            "tokens": charts.format_count(report.totals.tokens),
            "requests": charts.format_count(report.totals.requests),
        },
        y_axis_label=_("Tokens"),
        format_value=lambda value: (
            ngettext("%(count)s token", "%(count)s tokens", int(value))
            % {"count": charts.format_count(value)}
        ),
        format_tick=charts.format_count,
        series_labels=labels if stacked else None,
        integer=True,
    )
