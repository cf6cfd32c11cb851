"""Organization costs for the fake provider: `GET /v1/organization/costs`.

- Needs an admin key: any key starting ``sk-admin-`` (``ADMIN_KEY_OK``). Any other key gets
  the 401 the real API gives an ordinary API key (missing the ``api.usage.read`` scope).
- ``start_time`` (required, Unix seconds), ``end_time`` (default: now on the fake's clock),
  ``bucket_width`` (only ``1d``), ``group_by`` (``line_item``, ``project_id``,
  ``api_key_id``; repeated, as ``group_by[]`` or comma-separated), ``limit`` (1 to 180,
  default 7) and ``page`` (the ``next_page`` cursor of the previous answer), as in the spec's
  UsageResponse.
- ``fake.state["costs"]["ignore_page"] = True`` plays a server (or a proxy) that drops the
  ``page`` cursor: every request gets the first page again, with the same ``next_page``.
- The amounts are deterministic: each (day, line item, project) has a fixed amount derived from
  the day number, so every grouping of one window adds up to the same total.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fakeprovider.router import FakeRequest, Reply, Router

if TYPE_CHECKING:
    from fakeprovider.server import FakeProvider

DAY = 86400
ADMIN_PREFIX = "sk-admin-"
API_KEY_ID = "key_fakeAdmin0000001"
# line item, dollars per day at the middle of the range
LINE_ITEMS: list[tuple[str, float]] = [
    ("gpt-4o, output", 4.80),
    ("gpt-4o, input", 2.10),
    ("gpt-4o-mini, output", 0.62),
    ("gpt-4o-mini, input", 0.35),
    ("file search tool calls", 0.75),
    ("vector store storage", 0.10),
]
# project id, share of each line item
PROJECTS: list[tuple[str, float]] = [
    ("proj_fakeResearch001", 0.6),
    ("proj_fakeSupport0002", 0.3),
    ("proj_fakeDefault0003", 0.1),
]
GROUP_FIELDS = ("line_item", "project_id", "api_key_id")
MISSING_SCOPE = (
    "You have insufficient permissions for this operation. Missing scopes: api.usage.read. "
    "Check that you have the correct role in your organization (Reader, Writer, Owner) and "
    "project (Member, Owner), and if you're using a restricted API key, that it has the "
    "necessary scopes."
)


def _bad(message: str, param: str | None) -> Reply:
    return Reply.error(400, message, "invalid_request_error", None, param)


def amount(day_number: int, item: int, project: int) -> float:
    """The fixed cost of one line item in one project on one day (0 on some days)."""
    if (day_number + item + project) % 9 == 0:
        return 0.0
    factor = 0.5 + ((day_number * 7 + item * 3 + project * 5) % 10) / 10
    return round(LINE_ITEMS[item][1] * factor * PROJECTS[project][1], 6)


def _group_by(request: FakeRequest) -> list[str] | str:
    """The requested grouping fields, or an error message."""
    values = request.query.get("group_by", []) + request.query.get("group_by[]", [])
    fields = [part.strip() for value in values for part in value.split(",") if part.strip()]
    for name in fields:
        if name not in GROUP_FIELDS:
            return name
    return fields


def _results(day_number: int, fields: list[str]) -> list[dict[str, Any]]:
    sums: dict[tuple[str | None, str | None, str | None], float] = {}
    for item, (line_item, _rate) in enumerate(LINE_ITEMS):
        for project, (project_id, _share) in enumerate(PROJECTS):
            value = amount(day_number, item, project)
            if not value:
                continue
            key = (
                line_item if "line_item" in fields else None,
                project_id if "project_id" in fields else None,
                API_KEY_ID if "api_key_id" in fields else None,
            )
            sums[key] = sums.get(key, 0.0) + value
    return [
        {
            "object": "organization.costs.result",
            "amount": {"value": round(value, 6), "currency": "usd"},
            "line_item": line_item,
            "project_id": project_id,
            "api_key_id": api_key_id,
        }
        for (line_item, project_id, api_key_id), value in sorted(
            sums.items(), key=lambda item: [str(part) for part in item[0]]
        )
    ]


def _int(request: FakeRequest, name: str) -> int | str | None:
    value = request.param(name)
    if value is None or value == "":
        return None
    return int(value) if re.fullmatch(r"\d+", value) else f"Invalid '{name}': not an integer."


def costs(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    if not (request.key or "").startswith(ADMIN_PREFIX):
        return Reply.error(401, MISSING_SCOPE, "invalid_request_error", None)
    start = _int(request, "start_time")
    if start is None:
        return _bad("Missing required parameter: 'start_time'.", "start_time")
    end = _int(request, "end_time")
    limit = _int(request, "limit")
    for name, value in (("start_time", start), ("end_time", end), ("limit", limit)):
        if isinstance(value, str):
            return _bad(value, name)
    assert isinstance(start, int)
    end = end if isinstance(end, int) else int(fake.clock.time())
    limit = limit if isinstance(limit, int) else 7
    if not 1 <= limit <= 180:
        return _bad("Invalid 'limit': must be between 1 and 180.", "limit")
    if request.param("bucket_width", "1d") != "1d":
        return _bad("Invalid 'bucket_width': only '1d' is supported for costs.", "bucket_width")
    fields = _group_by(request)
    if isinstance(fields, str):
        return _bad(f"Invalid 'group_by' value: '{fields}'.", "group_by")
    page = request.param("page")
    first = 0
    if page and not fake.state["costs"]["ignore_page"]:
        cursor = re.fullmatch(r"page_([0-9a-f]+)", page)
        if cursor is None:
            return _bad("Invalid 'page' cursor.", "page")
        first = int(cursor[1], 16)

    starts = list(range(start, end, DAY))
    chosen = starts[first : first + limit]
    buckets = [
        {
            "object": "bucket",
            "start_time": bucket,
            "end_time": bucket + DAY,
            "results": _results(bucket // DAY, fields),
        }
        for bucket in chosen
    ]
    has_more = first + limit < len(starts)
    return Reply.json(
        {
            "object": "page",
            "data": buckets,
            "has_more": has_more,
            "next_page": f"page_{first + limit:x}" if has_more else None,
        }
    )


def register(router: Router) -> None:
    router.state("costs", lambda: {"ignore_page": False})
    router.add("GET", r"/v1/organization/costs", costs)
