"""Bar charts drawn on the server as SVG, and the rate-limit headroom meters.

A plain helper: `bar_chart()` turns columns of numbers into geometry that
`templates/partials/bar_chart.html` draws. Every number in the geometry is a string with a dot
decimal, so a page in a language with a decimal comma still draws. Nothing here uses inline
styles (the CSP forbids them): single-series bars take their colour from tablero.css
(`.chart .bar`), the series of a stacked chart from `fill` presentation attributes.

The chart is readable without JavaScript and without sight: the `<svg>` has a `<title>` and a
`<desc>`, every bar a `<title>` with its label and value, every segment its own, the axes have
labels, and the pages show the same numbers in a table.
"""

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from lib.severity import Severity

Number = int | float | Decimal

# Mid-tone colours that read on the light and the dark background alike.
PALETTE = ("#6366f1", "#10b981", "#f59e0b", "#ef4444", "#06b6d4", "#a855f7", "#84cc16")
OTHER_FILL = "#98a2b3"
OTHER_SERIES = "__other__"
# The most series a stacked chart draws; beyond, all but the largest are drawn as "Other".
MAX_SERIES = len(PALETTE) + 1

WIDTH = 720
PLOT_HEIGHT = 220
MARGIN_LEFT = 64
MARGIN_RIGHT = 8
MARGIN_TOP = 22
X_LABEL_SPACE = 24
LEGEND_ROW = 18
LEGEND_COLUMN = 176
LEGEND_LABEL_MAX = 24
MAX_X_LABELS = 10
Y_INTERVALS = 4


def _fmt(value: float) -> str:
    """An SVG coordinate: dot decimal, one place, whatever the language."""
    return f"{value:.1f}"


@dataclass(frozen=True)
class Column:
    """One bar: `label` under it (short), `title` in its tooltip (long), values per series."""

    label: str
    title: str
    values: Mapping[str, Number]


@dataclass(frozen=True)
class Segment:
    x: str
    y: str
    width: str
    height: str
    fill: str
    title: str


@dataclass(frozen=True)
class Bar:
    title: str
    segments: list[Segment]


@dataclass(frozen=True)
class Tick:
    x: str
    y: str
    label: str
    # Full text for a <title> when `label` was shortened (legend entries).
    title: str = ""


@dataclass(frozen=True)
class LegendItem:
    x: str
    y: str
    text_x: str
    text_y: str
    fill: str
    label: str
    title: str


@dataclass(frozen=True)
class BarChart:
    chart_id: str
    title: str
    description: str
    y_axis_label: str
    width: int
    height: int
    stacked: bool
    bars: list[Bar]
    y_ticks: list[Tick]
    x_labels: list[Tick]
    legend: list[LegendItem]
    axis: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.bars


def nice_ceiling(value: float, *, integer: bool = False) -> float:
    """The smallest "round" number (1, 2, 2.5 or 5 times a power of ten) >= value; with
    `integer`, a whole number (never 2.5, never below 1)."""
    if value <= 0 or (integer and value <= 1):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    steps = (1, 2, 5, 10) if integer and power == 1 else (1, 2, 2.5, 5, 10)
    for step in steps:
        if step * power >= value * (1 - 1e-12):
            return step * power
    return 10 * power


def _series_order(columns: Sequence[Column], max_series: int) -> tuple[list[str], set[str]]:
    """The series drawn on their own (largest first) and those folded into "other". A column
    may bring its own OTHER_SERIES value (the rest, already summed): it is folded too."""
    totals: dict[str, float] = {}
    for column in columns:
        for key, value in column.values.items():
            totals[key] = totals.get(key, 0.0) + float(value)
    given_other = totals.pop(OTHER_SERIES, None) is not None
    ordered = sorted(totals, key=lambda key: (-totals[key], key))
    if len(ordered) <= max_series and not given_other:
        return ordered, set()
    drawn = ordered[: max_series - 1]
    return drawn, {*ordered[len(drawn) :], *([OTHER_SERIES] if given_other else [])}


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class _Series:
    """Which series a chart draws, in which colour and under which name."""

    stacked: bool
    drawn: list[str]  # drawn on their own, largest first
    folded: set[str]  # drawn together as "Other"
    fills: dict[str, str]
    labels: dict[str, str]

    @classmethod
    def of(
        cls, columns: Sequence[Column], labels: Mapping[str, str] | None, max_series: int
    ) -> "_Series":
        labels = dict(labels or {})
        stacked = len(labels) > 1
        drawn, folded = _series_order(columns, max_series) if stacked else ([], set())
        fills = {key: PALETTE[index % len(PALETTE)] for index, key in enumerate(drawn)}
        if folded:
            fills[OTHER_SERIES] = OTHER_FILL
            labels[OTHER_SERIES] = _("Other")
        return cls(stacked, drawn, folded, fills, labels)

    def stack(self, column: Column) -> list[tuple[str, float]]:
        """The column's parts from the bottom up (one unnamed part when not stacked)."""
        if not self.stacked:
            return [("", float(sum(column.values.values(), 0)))]
        parts: dict[str, float] = {}
        for key, value in column.values.items():
            target = OTHER_SERIES if key in self.folded else key
            parts[target] = parts.get(target, 0.0) + float(value)
        order = [*self.drawn, OTHER_SERIES] if self.folded else self.drawn
        return [(key, parts[key]) for key in order if parts.get(key)]

    @property
    def legend_rows(self) -> int:
        return math.ceil(len(self.fills) / _LEGEND_PER_ROW) if self.stacked else 0


_LEGEND_PER_ROW = max(1, (WIDTH - MARGIN_LEFT) // LEGEND_COLUMN)


@dataclass(frozen=True)
class _Plot:
    """The plotting area in SVG units, and how tall one unit of value is drawn."""

    left: float = MARGIN_LEFT
    right: float = WIDTH - MARGIN_RIGHT
    top: float = MARGIN_TOP
    bottom: float = MARGIN_TOP + PLOT_HEIGHT
    highest: float = 1.0  # the value at the top of the axis

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def scale(self) -> float:
        return PLOT_HEIGHT / self.highest

    def axis(self) -> dict[str, str]:
        return {
            "left": _fmt(self.left),
            "right": _fmt(self.right),
            "top": _fmt(self.top),
            "bottom": _fmt(self.bottom),
            "label_y": _fmt(self.top - 8),
        }


def _bar(
    column: Column,
    parts: list[tuple[str, float]],
    *,
    left: float,
    width: float,
    plot: _Plot,
    series: _Series,
    format_value: Callable[[Number], str],
) -> Bar:
    """One column's bar: its segments stacked from the bottom, zero-height ones left out."""
    bottom = float(plot.bottom)
    segments = []
    for key, value in parts:
        height = value * plot.scale
        if height <= 0:
            continue
        bottom -= height
        if series.stacked:
            title = f"{column.title} · {series.labels.get(key, key)}: {format_value(value)}"
        else:
            title = f"{column.title}: {format_value(value)}"
        segments.append(
            Segment(
                x=_fmt(left),
                y=_fmt(bottom),
                width=_fmt(width),
                height=_fmt(height),
                fill=series.fills.get(key, ""),
                title=title,
            )
        )
    total = sum((value for value in column.values.values()), 0)
    return Bar(title=f"{column.title}: {format_value(total)}", segments=segments)


def _bars(
    columns: Sequence[Column],
    stacks: list[list[tuple[str, float]]],
    *,
    plot: _Plot,
    series: _Series,
    format_value: Callable[[Number], str],
) -> tuple[list[Bar], list[Tick]]:
    """The bars, and the labels under them (at most MAX_X_LABELS, evenly spaced)."""
    count = len(columns)
    slot = plot.width / count if count else plot.width
    width = max(1.0, slot * 0.72)
    label_every = max(1, math.ceil(count / MAX_X_LABELS))
    bars, labels = [], []
    for index, (column, parts) in enumerate(zip(columns, stacks, strict=True)):
        left = plot.left + index * slot + (slot - width) / 2
        bars.append(
            _bar(
                column,
                parts,
                left=left,
                width=width,
                plot=plot,
                series=series,
                format_value=format_value,
            )
        )
        if index % label_every == 0:
            labels.append(
                Tick(x=_fmt(left + width / 2), y=_fmt(plot.bottom + 16), label=column.label)
            )
    return bars, labels


def _y_ticks(plot: _Plot, format_tick: Callable[[Number], str]) -> list[Tick]:
    return [
        Tick(
            x=_fmt(plot.left - 6),
            y=_fmt(plot.bottom - PLOT_HEIGHT * step / Y_INTERVALS),
            label=format_tick(plot.highest * step / Y_INTERVALS),
        )
        for step in range(Y_INTERVALS + 1)
    ]


def _legend(series: _Series, plot: _Plot) -> list[LegendItem]:
    """One swatch per series, in rows under the x labels (stacked charts only)."""
    if not series.stacked:
        return []
    legend_top = plot.bottom + X_LABEL_SPACE + 4
    legend = []
    for index, (key, fill) in enumerate(series.fills.items()):
        row, place = divmod(index, _LEGEND_PER_ROW)
        x = plot.left + place * LEGEND_COLUMN
        y = legend_top + row * LEGEND_ROW
        label = series.labels.get(key, key)
        legend.append(
            LegendItem(
                x=_fmt(x),
                y=_fmt(y),
                text_x=_fmt(x + 16),
                text_y=_fmt(y + 9),
                fill=fill,
                label=_shorten(label, LEGEND_LABEL_MAX),
                title=label,
            )
        )
    return legend


def bar_chart(
    *,
    chart_id: str,
    columns: Sequence[Column],
    title: str,
    description: str,
    format_value: Callable[[Number], str],
    format_tick: Callable[[Number], str] | None = None,
    y_axis_label: str = "",
    series_labels: Mapping[str, str] | None = None,
    max_series: int = MAX_SERIES,
    integer: bool = False,
) -> BarChart:
    """A bar chart of `columns`; stacked when `series_labels` names more than one series.

    Series beyond `max_series` are drawn together as "Other". Zero-height segments are left
    out, but every column keeps its bar (and its title), so a day without cost still reads.
    With `integer`, the axis ticks are whole numbers (counts of tokens or runs).
    """
    series = _Series.of(columns, series_labels, max_series)
    stacks = [series.stack(column) for column in columns]
    tallest = max((sum(value for _key, value in parts) for parts in stacks), default=0.0)
    plot = _Plot(highest=Y_INTERVALS * nice_ceiling(tallest / Y_INTERVALS, integer=integer))
    bars, x_labels = _bars(columns, stacks, plot=plot, series=series, format_value=format_value)
    rows = series.legend_rows
    return BarChart(
        chart_id=chart_id,
        title=title,
        description=description,
        y_axis_label=y_axis_label,
        width=WIDTH,
        height=int(plot.bottom) + X_LABEL_SPACE + rows * LEGEND_ROW + (4 if rows else 0),
        stacked=series.stacked,
        bars=bars,
        y_ticks=_y_ticks(plot, format_tick or format_value),
        x_labels=x_labels,
        legend=_legend(series, plot),
        axis=plot.axis(),
    )


# --- number formats shared by the pages that draw charts ---------------------------------------


# ISO 4217 minor units of the currencies that do not count in hundredths.
_ZERO_DECIMALS = "bif clp djf gnf isk jpy kmf krw pyg rwf ugx uyi vnd vuv xaf xof xpf"
_THREE_DECIMALS = "bhd iqd jod kwd lyd omr tnd"
MINOR_UNITS = {
    **dict.fromkeys(_ZERO_DECIMALS.split(), 0),
    **dict.fromkeys(_THREE_DECIMALS.split(), 3),
}


def money(value: Number, currency: str = "usd") -> Decimal:
    """`value` rounded half-up to the currency's smallest unit (cents for most): 231.9164 USD
    is 231.92, never 231.91. Every amount a person reads goes through here."""
    places = MINOR_UNITS.get(currency.lower(), 2)
    amount = Decimal(str(value))
    try:
        return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than the context holds: nothing left to round
        return amount


def format_amount(value: Number, currency: str = "usd") -> str:
    """A money amount in the page's language, rounded to the currency's smallest unit:
    "1,234.56 USD" / "1.234,56 USD"."""
    rounded = money(value, currency)
    places = max(0, -int(rounded.as_tuple().exponent))
    amount = number_format(rounded, decimal_pos=places, force_grouping=True)
    return f"{amount} {currency.upper()}" if currency else amount


def format_count(value: Number) -> str:
    """A whole number with the language's digit grouping."""
    return number_format(round(float(value)), force_grouping=True)


# --- rate-limit headroom -----------------------------------------------------------------------


# The provider's reset durations: "6m0s", "12ms", "1h2m3.5s", "20s", "0.5s".
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def duration_seconds(value: Any) -> float | None:
    """A reset duration as the provider writes it, in seconds (None when not one)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) if value >= 0 else None
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(number + unit for number, unit in parts) != value:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def human_wait(seconds: float) -> str:
    """A wait in words, rounded up to what a person plans with: "in under a second",
    "in 20 s", "in 6 min", "in 2 h 5 min"."""
    if seconds < 1:
        return _("in under a second")
    if seconds < 60:
        return _("in %(seconds)d s") % {"seconds": math.ceil(seconds)}
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return _("in %(minutes)d min") % {"minutes": minutes}
    hours, minutes = divmod(minutes, 60)
    if not minutes:
        return _("in %(hours)d h") % {"hours": hours}
    return _("in %(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}


@dataclass(frozen=True)
class Headroom:
    """What is left of one rate limit (requests or tokens) at the last answer."""

    what: str  # "requests" or "tokens"
    label: str
    limit: Any
    remaining: Any
    reset: str | None  # as the provider wrote it ("6m0s")
    percent: int | None  # remaining / limit, when both are numbers
    # When the limit is full again: the answer's time plus the reset duration (None: unknown).
    reset_at: datetime | None = None

    @property
    def severity(self) -> Severity:
        if self.percent is None:
            return Severity.MUTED
        if self.percent < 10:
            return Severity.DANGER
        if self.percent < 30:
            return Severity.WARN
        return Severity.OK

    @property
    def limit_display(self) -> str:
        return format_count(self.limit) if isinstance(self.limit, int) else "—"

    @property
    def remaining_display(self) -> str:
        return format_count(self.remaining) if isinstance(self.remaining, int) else "—"

    def _seconds_left(self) -> float | None:
        if self.reset_at is None:
            return duration_seconds(self.reset)
        return (self.reset_at - timezone.now()).total_seconds()

    @property
    def reset_when(self) -> str:
        """When the limit is full again, as of now: "in 6 min", "already" (the figures are
        older than the reset), or "" when unknown."""
        left = self._seconds_left()
        if left is None:
            return ""
        return human_wait(left) if left > 0 else _("already")

    @property
    def reset_text(self) -> str:
        """The same as a phrase: "resets in 6 min", "has reset since", or ""."""
        left = self._seconds_left()
        if left is None:
            return ""
        if left <= 0:
            return _("has reset since")
        return _("resets %(when)s") % {"when": human_wait(left)}


def headroom(rate_limit: Mapping[str, Any] | None) -> list[Headroom]:
    """The headroom rows of a connection's stored `rate_limit` (empty when none known)."""
    rate_limit = rate_limit or {}
    captured = rate_limit.get("captured_at")
    captured_at = parse_datetime(captured) if isinstance(captured, str) else None
    rows = []
    for what, label in (("requests", _("Requests")), ("tokens", _("Tokens"))):
        limit = rate_limit.get(f"limit_{what}")
        remaining = rate_limit.get(f"remaining_{what}")
        if limit is None and remaining is None:
            continue
        percent = None
        if isinstance(limit, int) and isinstance(remaining, int) and limit > 0:
            percent = max(0, min(100, round(remaining * 100 / limit)))
        reset = rate_limit.get(f"reset_{what}")
        seconds = duration_seconds(reset)
        rows.append(
            Headroom(
                what=what,
                label=label,
                limit=limit,
                remaining=remaining,
                reset=reset,
                percent=percent,
                reset_at=captured_at + timedelta(seconds=seconds)
                if captured_at is not None and seconds is not None
                else None,
            )
        )
    return rows
