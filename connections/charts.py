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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils.formats import number_format
from django.utils.translation import gettext as _

from lib.severity import Severity

Number = int | float | Decimal

# Mid-tone colours that read on the light and the dark background alike.
PALETTE = ("#6366f1", "#10b981", "#f59e0b", "#ef4444", "#06b6d4", "#a855f7", "#84cc16")
OTHER_FILL = "#98a2b3"
OTHER_SERIES = "__other__"

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
    """The series drawn on their own (largest first) and those folded into "other"."""
    totals: dict[str, float] = {}
    for column in columns:
        for key, value in column.values.items():
            totals[key] = totals.get(key, 0.0) + float(value)
    ordered = sorted(totals, key=lambda key: (-totals[key], key))
    if len(ordered) <= max_series:
        return ordered, set()
    return ordered[: max_series - 1], set(ordered[max_series - 1 :])


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    max_series: int = len(PALETTE) + 1,
    integer: bool = False,
) -> BarChart:
    """A bar chart of `columns`; stacked when `series_labels` names more than one series.

    Series beyond `max_series` are drawn together as "Other". Zero-height segments are left
    out, but every column keeps its bar (and its title), so a day without cost still reads.
    With `integer`, the axis ticks are whole numbers (counts of tokens or runs).
    """
    series_labels = dict(series_labels or {})
    stacked = len(series_labels) > 1
    drawn, folded = _series_order(columns, max_series) if stacked else ([], set())
    fills = {key: PALETTE[index % len(PALETTE)] for index, key in enumerate(drawn)}
    if folded:
        fills[OTHER_SERIES] = OTHER_FILL
        series_labels[OTHER_SERIES] = _("Other")

    legend_rows = 0
    if stacked:
        per_row = max(1, (WIDTH - MARGIN_LEFT) // LEGEND_COLUMN)
        legend_rows = math.ceil(len(fills) / per_row)
    plot_top = MARGIN_TOP
    plot_bottom = plot_top + PLOT_HEIGHT
    height = plot_bottom + X_LABEL_SPACE + legend_rows * LEGEND_ROW + (4 if legend_rows else 0)
    plot_left, plot_right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    plot_width = plot_right - plot_left

    def stack(column: Column) -> list[tuple[str, float]]:
        if not stacked:
            return [("", float(sum(column.values.values(), 0)))]
        parts: dict[str, float] = {}
        for key, value in column.values.items():
            target = OTHER_SERIES if key in folded else key
            parts[target] = parts.get(target, 0.0) + float(value)
        order = [*drawn, OTHER_SERIES] if folded else drawn
        return [(key, parts[key]) for key in order if parts.get(key)]

    stacks = [stack(column) for column in columns]
    highest = max((sum(value for _key, value in parts) for parts in stacks), default=0.0)
    top = Y_INTERVALS * nice_ceiling(highest / Y_INTERVALS, integer=integer)
    scale = PLOT_HEIGHT / top

    bars: list[Bar] = []
    x_labels: list[Tick] = []
    count = len(columns)
    slot = plot_width / count if count else plot_width
    bar_width = max(1.0, slot * 0.72)
    label_every = max(1, math.ceil(count / MAX_X_LABELS))
    for index, (column, parts) in enumerate(zip(columns, stacks, strict=True)):
        left = plot_left + index * slot + (slot - bar_width) / 2
        total = sum((value for value in column.values.values()), 0)
        bottom = float(plot_bottom)
        segments = []
        for key, value in parts:
            height_px = value * scale
            if height_px <= 0:
                continue
            bottom -= height_px
            segments.append(
                Segment(
                    x=_fmt(left),
                    y=_fmt(bottom),
                    width=_fmt(bar_width),
                    height=_fmt(height_px),
                    fill=fills.get(key, ""),
                    title=(
                        f"{column.title} · {series_labels.get(key, key)}: {format_value(value)}"
                        if stacked
                        else f"{column.title}: {format_value(value)}"
                    ),
                )
            )
        bars.append(Bar(title=f"{column.title}: {format_value(total)}", segments=segments))
        if index % label_every == 0:
            x_labels.append(
                Tick(x=_fmt(left + bar_width / 2), y=_fmt(plot_bottom + 16), label=column.label)
            )

    y_ticks = [
        Tick(
            x=_fmt(plot_left - 6),
            y=_fmt(plot_bottom - PLOT_HEIGHT * step / Y_INTERVALS),
            label=(format_tick or format_value)(top * step / Y_INTERVALS),
        )
        for step in range(Y_INTERVALS + 1)
    ]

    legend: list[LegendItem] = []
    if stacked:
        per_row = max(1, (WIDTH - MARGIN_LEFT) // LEGEND_COLUMN)
        legend_top = plot_bottom + X_LABEL_SPACE + 4
        for index, (key, fill) in enumerate(fills.items()):
            row, place = divmod(index, per_row)
            x = plot_left + place * LEGEND_COLUMN
            y = legend_top + row * LEGEND_ROW
            label = series_labels.get(key, key)
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

    return BarChart(
        chart_id=chart_id,
        title=title,
        description=description,
        y_axis_label=y_axis_label,
        width=WIDTH,
        height=height,
        stacked=stacked,
        bars=bars if count else [],
        y_ticks=y_ticks,
        x_labels=x_labels,
        legend=legend,
        axis={
            "left": _fmt(plot_left),
            "right": _fmt(plot_right),
            "top": _fmt(plot_top),
            "bottom": _fmt(plot_bottom),
            "label_y": _fmt(plot_top - 8),
        },
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


@dataclass(frozen=True)
class Headroom:
    """What is left of one rate limit (requests or tokens) at the last answer."""

    what: str  # "requests" or "tokens"
    label: str
    limit: Any
    remaining: Any
    reset: str | None
    percent: int | None  # remaining / limit, when both are numbers

    @property
    def severity(self) -> Severity:
        if self.percent is None:
            return Severity.MUTED
        if self.percent < 10:
            return Severity.DANGER
        if self.percent < 30:
            return Severity.WARN
        return Severity.OK


def headroom(rate_limit: Mapping[str, Any] | None) -> list[Headroom]:
    """The headroom rows of a connection's stored `rate_limit` (empty when none known)."""
    rate_limit = rate_limit or {}
    rows = []
    for what, label in (("requests", _("Requests")), ("tokens", _("Tokens"))):
        limit = rate_limit.get(f"limit_{what}")
        remaining = rate_limit.get(f"remaining_{what}")
        if limit is None and remaining is None:
            continue
        percent = None
        if isinstance(limit, int) and isinstance(remaining, int) and limit > 0:
            percent = max(0, min(100, round(remaining * 100 / limit)))
        rows.append(
            Headroom(
                what=what,
                label=label,
                limit=limit,
                remaining=remaining,
                reset=rate_limit.get(f"reset_{what}"),
                percent=percent,
            )
        )
    return rows
