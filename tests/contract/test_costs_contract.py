"""The organization costs call, checked against the provider's OpenAPI spec by Prism."""

from datetime import date

import pytest

from fakeprovider import ADMIN_KEY_OK
from provider.client import ProviderClient
from provider.costs import GROUP_BY, costs_params, parse_page
from provider.errors import ErrorKind, ProviderError
from tests.provider.helpers import LOOPBACK

pytestmark = pytest.mark.contract

DYNAMIC = {"Prefer": "dynamic=true"}


@pytest.mark.parametrize("group", list(GROUP_BY))
def test_costs_query_is_accepted(prism, group):
    client = ProviderClient(prism.endpoint(ADMIN_KEY_OK), guard=LOOPBACK)
    answer = client.request(
        "GET", "/organization/costs", params=costs_params(start=date(2026, 8, 1), group=group)
    )
    parse_page(answer.data, group)
    assert prism.rejections() == []


def test_next_page_cursor_is_accepted(prism):
    params = {**costs_params(start=date(2026, 8, 1), group="line_item"), "page": "page_abc"}
    ProviderClient(prism.endpoint(ADMIN_KEY_OK), guard=LOOPBACK).request(
        "GET", "/organization/costs", params=params
    )
    assert prism.rejections() == []


@pytest.mark.parametrize("attempt", range(10))
def test_random_pages_parse_or_are_bad_responses(prism, attempt):
    """Data that fits the schema: lines, or BAD_RESPONSE; nothing else."""
    client = ProviderClient(
        prism.endpoint(ADMIN_KEY_OK), guard=LOOPBACK, extra_headers=DYNAMIC, max_retries=0
    )
    answer = client.request(
        "GET", "/organization/costs", params=costs_params(start=date(2026, 8, 1), group="project")
    )
    try:
        lines, _has_more, _next_page = parse_page(answer.data, "project")
    except ProviderError as error:
        assert error.kind == ErrorKind.BAD_RESPONSE
    else:
        assert all(line.currency for line in lines)
    assert prism.rejections() == []
