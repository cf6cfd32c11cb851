"""Reading the costs answer (`GET /organization/costs`, which needs an organization's admin
key) and following its pages.

The window asked for is daily buckets from a given UTC day on, grouped by line item or by
project; `fetch_cost_lines` follows `next_page` and returns one `CostLine` per (day, group,
currency). An answer that is not the shape the API gives is ProviderError(BAD_RESPONSE);
pages that contradict each other are ProviderError(INCONSISTENT_ANSWER).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from provider.answer import Requester
from provider.errors import ErrorKind, ProviderError

__all__ = [
    "GROUP_BY",
    "MAX_PAGES",
    "CostLine",
    "costs_params",
    "fetch_cost_lines",
    "merge_lines",
    "parse_page",
]

# A grouping's name → the provider's `group_by` value.
GROUP_BY = {"line_item": "line_item", "project": "project_id"}
PAGE_LIMIT = 31
# A 31-day window fits in one page of 31 buckets; a few more pages are tolerated, no more.
MAX_PAGES = 6
# No line of a bill reaches this; a larger number is a broken answer (and would overflow the
# chart's floating-point scale).
MAX_AMOUNT = Decimal(10) ** 12


def _unix(day: date) -> int:
    return int(datetime.combine(day, time.min, tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class CostLine:
    day: date  # the UTC day of the bucket
    group: str  # line item or project id; "" when the provider gave none
    amount: Decimal
    currency: str


def _bad_shape(what: str) -> ProviderError:
    return ProviderError(
        ErrorKind.BAD_RESPONSE,
        f"The costs answer is JSON but not {what} as the API describes it.",
    )


def _amount(result: dict[str, Any]) -> tuple[Decimal, str] | None:
    """(value, currency) of a result; None when it has no amount (the spec makes it optional).

    An amount that is there but not a number is a bad answer, not a zero: leaving it out would
    show a total lower than what was spent.
    """
    amount = result.get("amount")
    if amount is None:
        return None
    if not isinstance(amount, dict):
        raise _bad_shape("an amount")
    value, currency = amount.get("value"), amount.get("currency")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _bad_shape("an amount")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _bad_shape("an amount") from None
    if not number.is_finite() or abs(number) >= MAX_AMOUNT:
        raise _bad_shape("an amount")
    if currency is not None and not isinstance(currency, str):
        raise _bad_shape("an amount")
    return number, (currency or "usd").lower()


def _bucket_day(start_time: Any) -> date:
    if isinstance(start_time, bool) or not isinstance(start_time, int):
        raise _bad_shape("a time bucket")
    try:
        return datetime.fromtimestamp(start_time, tz=UTC).date()
    except (OverflowError, OSError, ValueError):
        raise _bad_shape("a time bucket") from None


def parse_page(data: Any, group: str) -> tuple[list[CostLine], bool, str | None]:
    """The lines of one costs page, whether there is more, and the next page's cursor.

    Raises ProviderError(BAD_RESPONSE) when the page is not a page of time buckets.
    """
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise _bad_shape("a page of time buckets")
    field_name = GROUP_BY[group]
    lines = []
    for bucket in data["data"]:
        if not isinstance(bucket, dict):
            raise _bad_shape("a time bucket")
        day = _bucket_day(bucket.get("start_time"))
        results = bucket.get("results") or []
        if not isinstance(results, list):
            raise _bad_shape("a list of results")
        for result in results:
            if not isinstance(result, dict):
                raise _bad_shape("a costs result")
            amount = _amount(result)
            if amount is None:
                continue
            value = result.get(field_name)
            lines.append(
                CostLine(day, value if isinstance(value, str) else "", amount[0], amount[1])
            )
    next_page = data.get("next_page")
    has_more = data.get("has_more") is True and isinstance(next_page, str) and bool(next_page)
    return lines, has_more, next_page if has_more else None


def merge_lines(lines: Iterable[CostLine]) -> list[CostLine]:
    """One line per (day, group, currency), in day order."""
    merged: dict[tuple[date, str, str], Decimal] = {}
    for line in lines:
        key = (line.day, line.group, line.currency)
        merged[key] = merged.get(key, Decimal(0)) + line.amount
    return [
        CostLine(day, group, amount, currency)
        for (day, group, currency), amount in sorted(merged.items())
    ]


def costs_params(*, start: date, group: str) -> dict[str, Any]:
    """The query of the first page: daily buckets from `start` (UTC midnight) on."""
    return {
        "start_time": _unix(start),
        "bucket_width": "1d",
        "limit": PAGE_LIMIT,
        "group_by": [GROUP_BY[group]],
    }


def fetch_cost_lines(client: Requester, *, start: date, group: str) -> list[CostLine]:
    """The costs from `start` on (following `next_page`), merged. Raises ProviderError."""
    params = costs_params(start=start, group=group)
    lines: list[CostLine] = []
    cursors: set[str] = set()
    for _page in range(MAX_PAGES):
        answer = client.request("GET", "/organization/costs", params=params)
        page_lines, has_more, next_page = parse_page(answer.data, group)
        lines.extend(page_lines)
        if not has_more:
            break
        # A cursor seen before would add the same days twice; running out of pages would
        # show part of the spend as all of it. Either way the figures would be wrong.
        if next_page in cursors or len(cursors) == MAX_PAGES - 1:
            raise ProviderError(ErrorKind.INCONSISTENT_ANSWER, request_id=answer.request_id)
        cursors.add(next_page)
        params = {**params, "page": next_page}
    return merge_lines(lines)
