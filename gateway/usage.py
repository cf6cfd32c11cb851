"""Who used the gateway for what: requests, errors, tokens, money and latency per member,
token, model, endpoint family or day.

Read from the `GatewayCall` rows. The sums per group are ordered and paged by the database
(`UsageReport.grouped`); only the rows a page shows (or an export's batch) are labelled and
priced (`usage_rows`). Each call is priced at the price in force on its date, chosen in the
database as `PriceBook.price_on` chooses it. The page's summary (the sums and money per day,
and so the totals; the number of groups; the tokens per day of the chart's largest groups) is
one statement that reads the period's calls once (`_summarize`). Latency percentiles come from
the database too: PostgreSQL's `percentile_cont`, or elsewhere (SQLite) the same interpolation
over a bounded sample of the most recent calls of each group. A fixed handful of queries whatever
the number of calls or groups. Days are days in the server's time zone (TIME_ZONE).
"""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection as db_connection
from django.db.models import (
    Aggregate,
    Case,
    CharField,
    Count,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.functions import Cast, Coalesce, Collate, Concat, RowNumber, TruncDate
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from accounts.models import Team, User
from connections import charts
from gateway.limits import month_range
from gateway.models import ApiToken, GatewayCall, ModelPrice
from gateway.prices import MILLION, Money, PriceBook
from gateway.scopes import Scope

# Latencies read per group where the database cannot compute percentiles itself.
LATENCY_SAMPLE = 1000
PERCENTILES = (0.5, 0.95, 0.99)
# How many rows an export labels, prices and times at a time.
EXPORT_BATCH = 500
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
    # The groups' sums (one dict per group: key, requests, errors, input, cached, output,
    # tokens), ordered as the page lists them, not yet read: a page slices it in the database
    # and `usage_rows` turns that slice into labelled, priced rows.
    grouped: QuerySet[GatewayCall]
    calls: QuerySet[GatewayCall] = field(repr=False)
    team: Team = field(repr=False)
    # Per day (every day of the range): the tokens of the largest groups the chart draws on
    # their own, the rest under charts.OTHER_SERIES.
    per_day: list[tuple[datetime.date, dict[Any, int]]] = field(default_factory=list)
    # The sums per day (the days with calls).
    days: dict[datetime.date, UsageRow] = field(default_factory=dict)
    # The chart's name of each group it draws, and how many groups there are.
    chart_labels: dict[Any, str] = field(default_factory=dict)
    count: int = 0

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


def _sort_label(group: str) -> Any:
    """The label `_labels` gives a group, as the database computes it, to order by; in code
    point order as Python sorts strings (PostgreSQL's "C" collation; SQLite's default)."""
    if group in ("member", "member_model"):
        label = Case(
            When(user_id__isnull=True, then=Value(_("No member (service tokens)"))),
            When(user__name="", then=F("user__email")),
            default=F("user__name"),
            output_field=CharField(),
        )
    elif group == "token":
        label = Case(
            When(token_id__isnull=True, then=Value(_("Deleted token"))),
            default=F("token__name"),
            output_field=CharField(),
        )
    elif group == "model":
        label = Case(
            When(model="", then=Value(_("(no model)"))),
            default=F("model"),
            output_field=CharField(),
        )
    else:
        label = Case(
            *(When(family=value, then=Value(str(name))) for value, name in Scope.choices),
            default=F("family"),
            output_field=CharField(),
        )
    return Collate(label, "C") if db_connection.vendor == "postgresql" else label


class _WindowSum(Func):
    """SUM(...) as a window over the groups of an aggregated query (the sum of sums)."""

    function = "SUM"
    window_compatible = True


def _grouped(calls: QuerySet[GatewayCall], group: str) -> QuerySet[GatewayCall]:
    """The sums per key of `group`, in the page's order: by day the latest first; by member
    and model each member's models together, the member with most tokens first; otherwise
    the most tokens first."""
    fields = ("key", "user_id", "model") if group == "member_model" else ("key",)
    grouped = (
        calls.annotate(key=_key_expression(group))
        .values(*fields)
        .annotate(**_sums())
        .annotate(tokens=F("input") + F("output"))
    )
    if group == "day":
        return grouped.order_by("-key")
    grouped = grouped.annotate(sort_label=_sort_label(group))
    if group == "member_model":
        return grouped.annotate(
            spent=Window(_WindowSum(F("tokens")), partition_by=[F("user_id")])
        ).order_by("-spent", "sort_label", "user_id", "-tokens", "model")
    return grouped.order_by("-tokens", "-requests", "sort_label", "key")


def _priced_join(
    calls: QuerySet[GatewayCall], *, team: Team, key: Any
) -> tuple[str, list[Any], Any, Any]:
    """SQL of the sums of `calls` per `key`, model and day, each with its currency (NULL:
    no price in force) and its amount in millionths of millionths ("amount"), and its
    parameters; with the fields that read the key and the day. Each sum is joined to the
    price of the model in force that day (each price holds from its date until the model's
    next one: one hash join, not a lookup per sum); the amounts are whole millionths of the
    price (the prices have six decimals), so their sums are as exact as PriceBook.cost_at."""
    inner = (
        calls.annotate(key=key, day=TruncDate("created_at"))
        .values("key", "model", "day")
        .annotate(**_sums())
        .order_by()
    )
    key_field = inner.query.annotations["key"].output_field
    day_field = inner.query.annotations["day"].output_field
    inner_sql, inner_params = inner.query.sql_with_params()
    prices = ModelPrice._meta.db_table
    team_id = ModelPrice._meta.get_field("team").get_db_prep_value(team.pk, db_connection)
    if db_connection.vendor == "postgresql":
        least, units = "LEAST", "ROUND({} * 1000000)"
    else:  # SQLite: whole numbers, so that the sums are exact
        least, units = "MIN", "CAST(ROUND({} * 1000000) AS INTEGER)"
    cached = f'{least}(g."cached", g."input")'
    input_rate = units.format('p."input_per_million"')
    cached_rate = units.format('COALESCE(p."cached_input_per_million", p."input_per_million")')
    output_rate = units.format('p."output_per_million"')
    # Only the prices of the models called are read (not the team's whole table). Both parts
    # are computed once (MATERIALIZED): where the statistics lag behind a large load the
    # planner would otherwise redo the prices' part for each sum.
    sql = f"""
        WITH g AS MATERIALIZED ({inner_sql}),
        p AS MATERIALIZED (
            SELECT p0.*, LEAD(p0."effective_from") OVER (
                PARTITION BY p0."model" ORDER BY p0."effective_from"
            ) AS "until"
            FROM "{prices}" p0
            WHERE p0."team_id" = %s AND p0."model" IN (SELECT g."model" FROM g)
        )
        SELECT g."key", g."day", p."currency", g."requests", g."errors", g."input",
            g."cached", g."output",
            (g."input" - {cached}) * {input_rate} + {cached} * {cached_rate}
                + g."output" * {output_rate} AS "amount"
        FROM g
        LEFT JOIN p ON p."model" = g."model" AND p."effective_from" <= g."day"
            AND (p."until" IS NULL OR g."day" < p."until")
    """  # noqa: S608 (no value is formatted in: the parameters are passed apart)
    return sql, [*inner_params, team_id], key_field, day_field


def _priced_sums(
    calls: QuerySet[GatewayCall], *, team: Team, key: Any
) -> Iterator[tuple[Any, str | None, list[int], int]]:
    """The sums and money per `key` of `calls`, each call at the price in force on its day
    (as `PriceBook.price_on` chooses it): one query, a row per key and currency, as (key,
    currency or None when unpriced, [requests, errors, input, cached, output], amount in
    millionths of millionths)."""
    priced, params, key_field, _day_field = _priced_join(calls, team=team, key=key)
    sql = f"""
        SELECT f."key", f."currency", SUM(f."requests"), SUM(f."errors"), SUM(f."input"),
            SUM(f."cached"), SUM(f."output"), SUM(f."amount")
        FROM ({priced}) f
        GROUP BY f."key", f."currency"
    """  # noqa: S608 (no value is formatted in: the parameters are passed apart)
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        for raw_key, currency, *sums, amount in cursor.fetchall():
            yield (
                key_field.to_python(raw_key),
                currency,
                [int(value) for value in sums],
                int(amount or 0),
            )


_SUM_NAMES = ("requests", "errors", "input", "cached", "output")


def _add_priced(row: UsageRow, currency: str | None, sums: list[int], amount: int) -> None:
    """Add one row of `_priced_sums` to `row`: its sums, and its money (its tokens unpriced
    when no price was in force)."""
    values = dict(zip(_SUM_NAMES, sums, strict=True))
    row.add(values)
    tokens = values["input"] + values["output"]
    if not tokens:
        return
    if currency is None:
        row.money.unpriced_tokens += tokens
    else:
        row.money.add(currency, Decimal(amount) / MILLION / MILLION)


def _priced(calls: QuerySet[GatewayCall], *, team: Team, key: Any) -> dict[Any, UsageRow]:
    """The sums and money per `key` of `calls` (unlabelled rows), one query (`_priced_sums`)."""
    rows: dict[Any, UsageRow] = {}
    for key_value, currency, sums, amount in _priced_sums(calls, team=team, key=key):
        row = rows.setdefault(key_value, UsageRow(key=key_value, label=""))
        _add_priced(row, currency, sums, amount)
    return rows


def usage_rows(report: UsageReport, found: Sequence[dict[str, Any]]) -> list[UsageRow]:
    """The rows of `found` (a slice of `report.grouped`), labelled and priced: one query for
    the money, one more for the names of members or tokens."""
    group = report.group
    rows = _labelled_rows(group, found)
    keys = [row.key for row in rows]
    money = (
        _priced(
            report.calls.annotate(row_key=_key_expression(group)).filter(
                _in_keys(keys, name="row_key")
            ),
            team=report.team,
            key=_key_expression(group),
        )
        if keys
        else {}
    )
    for row in rows:
        row.money = money[row.key].money if row.key in money else Money()
    return rows


def usage_row_batches(report: UsageReport) -> Iterator[list[UsageRow]]:
    """Every row of the report, in order, EXPORT_BATCH at a time (for an export): the groups
    are read from one cursor, and each batch is labelled and priced on its own."""
    size = EXPORT_BATCH
    batch: list[dict[str, Any]] = []
    for values in report.grouped.iterator(chunk_size=size):
        batch.append(values)
        if len(batch) == size:
            yield usage_rows(report, batch)
            batch = []
    if batch:
        yield usage_rows(report, batch)


def _summarize(report: UsageReport, max_series: int) -> None:
    """The page's summary of `report`, in one statement that reads the calls once (the priced
    sums per group, model and day, `_priced_join`, shared by its two parts): the sums and money
    of each day (and so of all calls), and for the chart the tokens per day of the largest
    groups with the number of groups. The chart's groups are labelled (one more query for
    members or tokens); the rest of the largest groups' tokens fall under
    charts.OTHER_SERIES."""
    group = report.group
    priced, params, key_field, day_field = _priced_join(
        report.calls, team=report.team, key=_key_expression(group)
    )
    by_day_sql = """
        SELECT 'day', NULL, f."day", f."currency", SUM(f."requests"), SUM(f."errors"),
            SUM(f."input"), SUM(f."cached"), SUM(f."output"), SUM(f."amount"), NULL
        FROM f GROUP BY f."day", f."currency"
    """
    top_sql = """
        UNION ALL
        SELECT 'top', f."key", f."day", NULL, 0, 0, SUM(f."input"), 0, SUM(f."output"), 0,
            (SELECT MAX(t."groups") FROM t)
        FROM f
        WHERE f."key" IN (SELECT t."key" FROM t)
            OR (f."key" IS NULL AND EXISTS (SELECT 1 FROM t WHERE t."key" IS NULL))
        GROUP BY f."key", f."day"
    """
    sql = f"""
        WITH f AS ({priced}),
        t AS (
            SELECT f."key", SUM(f."input" + f."output") AS "tokens",
                COUNT(*) OVER () AS "groups"
            FROM f GROUP BY f."key" ORDER BY "tokens" DESC, f."key" LIMIT %s
        )
        {by_day_sql}
        {top_sql if group != "day" else ""}
    """  # noqa: S608 (no value is formatted in: the parameters are passed apart)
    top: dict[Any, dict[datetime.date, int]] = {}
    with db_connection.cursor() as cursor:
        cursor.execute(sql, [*params, max_series])
        for part, raw_key, raw_day, currency, *sums, amount, groups in cursor.fetchall():
            day = day_field.to_python(raw_day)
            sums = [int(value) for value in sums]
            if part == "day":
                row = report.days.get(day)
                if row is None:
                    row = report.days[day] = UsageRow(key=day, label="")
                _add_priced(row, currency, sums, int(amount or 0))
            else:
                top.setdefault(key_field.to_python(raw_key), {})[day] = sums[2] + sums[4]
                report.count = int(groups)
    for row in report.days.values():
        report.totals.add(row.__dict__)
        report.totals.money.merge(row.money)
    day_totals = {day: row.tokens for day, row in report.days.items()}
    if group == "day":
        report.count = len(day_totals)
        by_day = {day: {"": tokens} for day, tokens in day_totals.items()}
    else:
        # The largest first (as the statement chose them), ties by key.
        order = sorted(
            top,
            key=lambda key: (-sum(top[key].values()), key is None, key if key else ""),
        )
        drawn = max_series if report.count <= max_series else max_series - 1
        found = [
            {"key": key, "requests": 0, "errors": 0, "input": 0, "cached": 0, "output": 0}
            for key in order[:drawn]
        ]
        for row in _labelled_rows(group, found):
            label = f"{row.label} · {row.model}" if row.model else row.label
            report.chart_labels[row.key] = label
        by_day = {day: {} for day in day_totals}
        for key in report.chart_labels:
            for day, tokens in top[key].items():
                by_day[day][key] = tokens
        if report.count > drawn:
            for day, tokens in by_day.items():
                tokens[charts.OTHER_SERIES] = day_totals[day] - sum(tokens.values())
    day = report.since
    while day <= report.until:
        report.per_day.append((day, by_day.get(day, {})))
        day += datetime.timedelta(days=1)


def _labelled_rows(group: str, found: Sequence[dict[str, Any]]) -> list[UsageRow]:
    """The rows of `found`, labelled but not priced (one query for members or tokens)."""
    labels = _labels(group, [values["key"] for values in found])
    rows = []
    for values in found:
        row = UsageRow(key=values["key"], label="")
        row.add(values)
        row.label, row.detail, row.gone = labels[row.key]
        if group == "member_model":
            row.model = _model_of(row.key) or _("(no model)")
        rows.append(row)
    return rows


def usage_report(
    *,
    team: Team,
    group: str,
    since: datetime.date,
    until: datetime.date,
    user_id: Any = None,
    summary: bool = True,
) -> UsageReport:
    """The usage of `team` (or of one member) from `since` to `until`, broken down by `group`:
    the groups' sums to page through (`report.grouped`, read by the caller) and, with
    `summary` (what a page shows above the table; an export needs none of it), the totals,
    the number of groups and the tokens per day of the largest groups for the chart. Latency
    is left out: `usage_latency_fill` adds it to the rows shown."""
    calls = usage_calls(team=team, since=since, until=until, user_id=user_id)
    report = UsageReport(
        group=group,
        since=since,
        until=until,
        totals=UsageRow(key=None, label=_("All calls")),
        grouped=_grouped(calls, group),
        calls=calls,
        team=team,
    )
    if summary:
        _summarize(report, charts.MAX_SERIES)
    return report


def token_usage_this_month(
    *, team: Team, token_ids: Iterable[Any], now: datetime.datetime | None = None
) -> dict[Any, UsageRow]:
    """Each token's use this month (requests, errors, tokens, money where priced), for the
    token list, where it stands beside the token's budget: so the month is the budget month
    (calendar month in UTC, `limits.month_range`), not the site's. Tokens without a call are
    left out. Two queries whatever the number."""
    token_ids = list(token_ids)
    if not token_ids:
        return {}
    start, end = month_range(now)
    calls = GatewayCall.objects.filter(
        team=team, token_id__in=token_ids, created_at__gte=start, created_at__lt=end
    )
    return usage_by_utc_day(calls, group="token", team=team)


def _aggregate(
    calls: QuerySet[GatewayCall], *, group: str, book: PriceBook | None, team: Team | None
) -> tuple[dict[Any, UsageRow], UsageRow, dict[datetime.date, dict[Any, int]]]:
    """Rows per key of `group`, their totals and the tokens per day and key: one query, and
    without `book` one more for the prices of the models called (not the whole table)."""
    aggregated = list(
        calls.annotate(key=_key_expression(group), day=TruncDate("created_at"))
        .values("key", "model", "day")
        .annotate(**_sums())
        .order_by()
    )
    if book is None:
        models = {values["model"] for values in aggregated}
        book = PriceBook.for_team(team, models=models) if models else PriceBook([])
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


def usage_by(
    calls: QuerySet[GatewayCall],
    *,
    group: str,
    book: PriceBook | None = None,
    team: Team | None = None,
) -> dict[Any, UsageRow]:
    """The use of `calls` per key of `group` (requests, errors, tokens, money), unlabelled.
    One query, and one more for the prices of the models called unless `book` (the prices)
    is given; `team` (whose prices) is needed then."""
    if book is None and team is None:
        raise TypeError("usage_by needs the prices (book) or whose they are (team)")
    rows, _totals, _by_day = _aggregate(calls, group=group, book=book, team=team)
    return rows


def usage_by_utc_day(
    calls: QuerySet[GatewayCall],
    *,
    group: str,
    book: PriceBook | None = None,
    team: Team | None = None,
) -> dict[Any, UsageRow]:
    """`usage_by`, each call priced at the price of its day in UTC rather than in the site's
    time zone: what is set against a budget, priced as the gateway prices it when it enforces
    the budget (`gateway.limits`), so that a price dated from a day changes both alike."""
    with timezone.override(datetime.UTC):
        return usage_by(calls, group=group, book=book, team=team)


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


def _in_keys(keys: Sequence[Any], *, name: str = "key") -> Q:
    present = [key for key in keys if key is not None]
    condition = Q(**{f"{name}__in": present})
    if len(present) != len(keys):
        condition |= Q(**{f"{name}__isnull": True})
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
    labels = {str(key): label for key, label in report.chart_labels.items()}
    stacked = report.group != "day" and report.count > 1
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
