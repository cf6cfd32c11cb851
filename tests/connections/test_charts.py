"""The server-side bar charts and headroom meters (connections/charts.py) and their template."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.utils import timezone, translation

from connections.charts import (
    OTHER_FILL,
    OTHER_SERIES,
    Column,
    bar_chart,
    duration_seconds,
    format_amount,
    format_count,
    headroom,
    human_wait,
    nice_ceiling,
)


def _chart(columns, **kwargs):
    return bar_chart(
        chart_id=kwargs.pop("chart_id", "test-chart"),
        columns=columns,
        title="Tokens per day",
        description="Tokens used each day.",
        format_value=format_count,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("value", "integer", "expected"),
    [
        (0, False, 1),
        (0.07, False, 0.1),
        (3, False, 5),
        (2.1, False, 2.5),
        (2.1, True, 5),
        (0.3, True, 1),
        (12, True, 20),
        (240, True, 250),
        (1000, False, 1000),
    ],
)
def test_nice_ceiling(value, integer, expected):
    assert nice_ceiling(value, integer=integer) == pytest.approx(expected)


def test_simple_chart_has_a_titled_bar_per_column_and_scaled_heights():
    chart = _chart(
        [Column("1", "Day one", {"": 100}), Column("2", "Day two", {"": 50})], integer=True
    )
    assert not chart.stacked and len(chart.bars) == 2
    assert chart.bars[0].title == "Day one: 100"
    first, second = chart.bars[0].segments[0], chart.bars[1].segments[0]
    assert float(first.height) == pytest.approx(2 * float(second.height))
    assert [tick.label for tick in chart.y_ticks] == ["0", "25", "50", "75", "100"]
    assert [label.label for label in chart.x_labels] == ["1", "2"]


def test_a_zero_column_keeps_its_title_but_draws_nothing():
    chart = _chart([Column("1", "Quiet day", {"": 0})])
    assert chart.bars[0].title == "Quiet day: 0" and chart.bars[0].segments == []


def test_stacked_chart_orders_series_by_size_and_folds_the_rest():
    columns = [
        Column(str(n), f"Day {n}", {f"s{i}": Decimal(i + 1) for i in range(10)}) for n in range(3)
    ]
    labels = {f"s{i}": f"Series {i}" for i in range(10)}
    chart = _chart(columns, series_labels=labels, max_series=4)
    assert chart.stacked
    assert [item.label for item in chart.legend] == ["Series 9", "Series 8", "Series 7", "Other"]
    assert chart.legend[-1].fill == OTHER_FILL
    segments = chart.bars[0].segments
    assert len(segments) == 4
    assert segments[0].title == "Day 0 · Series 9: 10"
    assert segments[-1].title == "Day 0 · Other: 28"  # 1 + 2 + ... + 7


def test_a_rest_already_summed_is_drawn_as_other_like_the_series_it_stands_for():
    """A caller that reads only the largest series gives the rest as OTHER_SERIES: the chart
    is the one drawn from every series."""
    every = [
        Column(str(n), f"Day {n}", {f"s{i}": Decimal(i + 1) for i in range(10)}) for n in range(3)
    ]
    labels = {f"s{i}": f"Series {i}" for i in range(10)}
    largest = [
        Column(
            str(n),
            f"Day {n}",
            {**{f"s{i}": Decimal(i + 1) for i in (7, 8, 9)}, OTHER_SERIES: Decimal(28)},
        )
        for n in range(3)
    ]
    whole = _chart(every, series_labels=labels, max_series=4)
    summed = _chart(
        largest, series_labels={f"s{i}": labels[f"s{i}"] for i in (7, 8, 9)}, max_series=4
    )
    assert summed.legend == whole.legend
    assert summed.bars == whole.bars


def test_long_legend_labels_are_shortened_with_the_full_text_kept():
    chart = _chart(
        [Column("1", "Day", {"a" * 40: 1, "b": 2})],
        series_labels={"a" * 40: "a" * 40, "b": "b"},
    )
    item = next(item for item in chart.legend if item.title == "a" * 40)
    assert item.label.endswith("…") and len(item.label) <= 24


def test_many_columns_get_a_label_every_few():
    chart = _chart([Column(str(n), f"Day {n}", {"": n}) for n in range(31)])
    assert len(chart.bars) == 31
    assert len(chart.x_labels) <= 10


def test_no_columns_is_an_empty_chart():
    chart = _chart([])
    assert chart.empty
    html = render_to_string("partials/bar_chart.html", {"chart": chart})
    assert "<svg" not in html and "Nothing to draw yet." in html


def test_template_is_accessible_and_has_no_inline_style():
    chart = _chart(
        [Column("1", "Day one", {"a": 1, "b": 2}), Column("2", "Day two", {"a": 3})],
        series_labels={"a": "Alpha", "b": "Beta"},
    )
    html = render_to_string("partials/bar_chart.html", {"chart": chart})
    assert 'role="img"' in html
    assert 'aria-labelledby="test-chart-title test-chart-desc"' in html
    assert '<title id="test-chart-title">Tokens per day</title>' in html
    assert '<desc id="test-chart-desc">Tokens used each day.</desc>' in html
    assert html.count('class="bar-group"') == 2
    assert "<title>Day one: 3</title>" in html
    assert "<title>Day one · Beta: 2</title>" in html
    assert 'fill="#' in html
    assert "style=" not in html and "<script" not in html


def test_coordinates_use_a_dot_in_every_language():
    with translation.override("es"):
        chart = _chart([Column("1", "Día", {"": Decimal("1.5")}), Column("2", "Día", {"": 3})])
        html = render_to_string("partials/bar_chart.html", {"chart": chart})
    segment = chart.bars[0].segments[0]
    assert "," not in segment.x + segment.y + segment.width + segment.height
    assert f'x="{segment.x}"' in html


@pytest.mark.parametrize(
    ("value", "currency", "shown"),
    [
        (Decimal("231.9164"), "usd", "231.92 USD"),  # rounded, never cut to 231.91
        (Decimal("0.125"), "usd", "0.13 USD"),  # half-up, not to the even cent
        (Decimal("-0.125"), "usd", "-0.13 USD"),
        (Decimal("0.004"), "eur", "0.00 EUR"),
        (Decimal("1234.5"), "jpy", "1,235 JPY"),  # no minor unit
        (Decimal("1.2345"), "KWD", "1.235 KWD"),  # three decimals
        (2.675, "usd", "2.68 USD"),  # a float is read as written, not as its binary value
        (7, "usd", "7.00 USD"),
    ],
)
def test_money_is_rounded_half_up_to_the_currency_unit(value, currency, shown):
    assert format_amount(value, currency) == shown


def test_number_formats_follow_the_language():
    assert format_amount(Decimal("1234.5"), "usd") == "1,234.50 USD"
    assert format_count(1234567) == "1,234,567"
    with translation.override("es"):
        # Django's Spanish grouping is a no-break space.
        assert format_amount(Decimal("1234.5"), "usd") == "1\xa0234,50 USD"


def test_headroom_from_stored_rate_limits():
    rows = headroom(
        {
            "limit_requests": 5000,
            "remaining_requests": 4999,
            "reset_requests": "12ms",
            "limit_tokens": 800000,
            "remaining_tokens": 40000,
            "reset_tokens": "6m0s",
            "captured_at": "2026-08-01T10:00:00+00:00",
        }
    )
    requests, tokens = rows
    assert (requests.label, requests.percent, requests.severity) == ("Requests", 100, "ok")
    assert (tokens.percent, tokens.severity, tokens.reset) == (5, "danger", "6m0s")


def test_headroom_when_unknown_or_not_numbers():
    assert headroom({}) == [] and headroom(None) == []
    [row] = headroom({"limit_tokens": "lots", "remaining_tokens": 10})
    assert row.percent is None and row.severity == "muted"
    html = render_to_string("partials/headroom_meter.html", {"row": row})
    assert "<meter" not in html


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("6m0s", 360.0), ("12ms", 0.012), ("1h2m3s", 3723.0), ("0.5s", 0.5), ("20s", 20.0)],
)
def test_reset_durations_as_the_provider_writes_them(value, seconds):
    assert duration_seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["", "soon", "6 m", "-5s", "5x", None, True, "1s" * 30])
def test_what_is_not_a_duration(value):
    assert duration_seconds(value) is None


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0.012, "in under a second"),
        (20, "in 20 s"),
        (20.2, "in 21 s"),
        (360, "in 6 min"),
        (361, "in 7 min"),
        (3600, "in 1 h"),
        (7500, "in 2 h 5 min"),
    ],
)
def test_a_wait_in_words(seconds, words):
    assert human_wait(seconds) == words


def test_the_reset_time_is_counted_from_the_answer(pinned_clock):
    captured = (timezone.now() - timedelta(minutes=2)).isoformat()
    requests, tokens = headroom(
        {
            "limit_requests": 5000,
            "remaining_requests": 4990,
            "reset_requests": "12ms",
            "limit_tokens": 800000,
            "remaining_tokens": 40000,
            "reset_tokens": "8m0s",
            "captured_at": captured,
        }
    )
    assert (requests.reset_text, requests.reset_when) == ("has reset since", "already")
    assert (tokens.reset_text, tokens.reset_when) == ("resets in 6 min", "in 6 min")
    assert (tokens.remaining_display, tokens.limit_display) == ("40,000", "800,000")
