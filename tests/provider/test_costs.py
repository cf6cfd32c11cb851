"""Reading the costs answer and following its pages, with a client on MockTransport (the
pages that show the costs are tested in tests/connections/test_costs.py)."""

from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest

from provider.client import ProviderClient
from provider.costs import CostLine, fetch_cost_lines, parse_page
from provider.endpoint import Endpoint
from provider.errors import ErrorKind, ProviderError

ADMIN_KEY = "sk-admin-test-ok-00000adm1"
DAY = date(2026, 8, 1)


def bucket(day: date, *results: dict) -> dict:
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    return {"object": "bucket", "start_time": start, "results": list(results)}


def result(value, currency="usd", line_item="gpt-4o, input") -> dict:
    return {"amount": {"value": value, "currency": currency}, "line_item": line_item}


def page(*buckets: dict, next_page: str | None = None) -> dict:
    return {
        "object": "page",
        "data": list(buckets),
        "has_more": bool(next_page),
        "next_page": next_page,
    }


def client_answering(*pages: dict, seen: list) -> ProviderClient:
    answers = list(pages)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answers.pop(0))

    return ProviderClient(
        Endpoint("https://api.openai.com/v1", ADMIN_KEY), transport=httpx.MockTransport(handler)
    )


def test_follows_next_page_and_merges_the_lines():
    seen: list[httpx.Request] = []
    client = client_answering(
        page(bucket(DAY, result(1.5)), next_page="page_2"),
        page(bucket(DAY, result("0.25"), result(3, "EUR"))),
        seen=seen,
    )
    lines = fetch_cost_lines(client, start=DAY, group="line_item")
    assert lines == [
        CostLine(DAY, "gpt-4o, input", Decimal("3"), "eur"),
        CostLine(DAY, "gpt-4o, input", Decimal("1.75"), "usd"),
    ]
    first, second = (request.url.params for request in seen)
    assert first["bucket_width"] == "1d" and first["group_by"] == "line_item"
    assert "page" not in first and second["page"] == "page_2"


def test_a_cursor_sent_twice_is_an_inconsistent_answer():
    seen: list[httpx.Request] = []
    client = client_answering(
        page(bucket(DAY, result(1)), next_page="page_2"),
        page(bucket(DAY, result(1)), next_page="page_2"),
        seen=seen,
    )
    with pytest.raises(ProviderError) as caught:
        fetch_cost_lines(client, start=DAY, group="project")
    assert caught.value.kind == ErrorKind.INCONSISTENT_ANSWER and len(seen) == 2


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"data": "x"},
        {"data": [{"start_time": "yesterday", "results": []}]},
        {"data": [bucket(DAY, {"amount": {"value": "lots"}})]},
        {"data": [bucket(DAY, result(10**13))]},
        {"data": [bucket(DAY, result(True))]},
    ],
)
def test_a_page_of_another_shape_is_a_bad_response(data):
    with pytest.raises(ProviderError) as caught:
        parse_page(data, "line_item")
    assert caught.value.kind == ErrorKind.BAD_RESPONSE


def test_a_result_without_an_amount_is_left_out():
    lines, has_more, next_page = parse_page(page(bucket(DAY, {"line_item": "x"})), "line_item")
    assert (lines, has_more, next_page) == ([], False, None)
