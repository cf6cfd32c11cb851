"""The costs page of a connection (connections:costs) and its Refresh button
(connections:costs_refresh): GET /organization/costs with the admin key, cached for an hour."""

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils.formats import date_format

from connections import costs
from connections.charts import format_amount
from connections.models import ConnectionErrorEvent
from fakeprovider import ADMIN_KEY_OK, KEY_OK, KEY_QUOTA, Reply
from fakeprovider.costs import LINE_ITEMS, PROJECTS, amount
from provider import costs as provider_costs
from tests.assistants.helpers import check_refusals
from tests.connections.helpers import make_connection
from tests.taskqueue import empty_queue, queued, run_queued  # noqa: F401

COSTS_PATH = "/v1/organization/costs"


@pytest.fixture(autouse=True)
def _empty_cache(pinned_clock):
    """Every test here reads a window that ends today: the clock is pinned."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def connection(team, owner, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, created_by=owner)
    connection.set_admin_key(ADMIN_KEY_OK)
    connection.save()
    return connection


def _url(connection, **query) -> str:
    url = reverse("connections:costs", args=[connection.team_id, connection.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _refresh_url(connection) -> str:
    return reverse("connections:costs_refresh", args=[connection.team_id, connection.pk])


def _show(client, connection, **query):
    """Press the page's Refresh (tasks run at once here), then load the page."""
    client.post(_refresh_url(connection), {"group": query.get("group", "line_item")})
    return client.get(_url(connection, **query))


def _window() -> tuple[date, date]:
    today = datetime.now(UTC).date()
    return today - timedelta(days=30), today


def _expected_total() -> Decimal:
    start, today = _window()
    total = Decimal(0)
    for offset in range((today - start).days + 1):
        day_number = (start + timedelta(days=offset) - date(1970, 1, 1)).days
        for item in range(len(LINE_ITEMS)):
            for project in range(len(PROJECTS)):
                total += Decimal(str(amount(day_number, item, project)))
    return total


def _tbody(body: str, table_id: str = "costs-table") -> str:
    return body.split(f'id="{table_id}"')[1].split("<tbody>")[1].split("</tbody>")[0]


def test_shows_total_chart_and_table_by_line_item(admin_client_, connection, fake_upstream):
    response = _show(admin_client_, connection)
    assert response.status_code == 200
    body = response.content.decode()

    total = format_amount(_expected_total(), "usd")
    assert total in body
    # The chart: one bar per day of the window, each with a title; a title and a description.
    assert body.count('class="bar-group"') == 31
    assert "<title>" in body and "<desc" in body
    assert "Costs per day, by line item" in body
    _start, today = _window()
    assert f'<g class="bar-group"><title>{date_format(today, "DATE_FORMAT")}: ' in body
    # The table: days with their line items and amounts.
    rows = _tbody(body)
    assert "gpt-4o, output" in rows and "file search tool calls" in rows
    assert rows.count("<tr>") >= 31
    # The admin key is never in the page.
    assert ADMIN_KEY_OK not in body


def test_the_total_is_rounded_to_the_cent_not_cut(admin_client_, connection, pinned_clock):
    # The 31 days to 30 November 2026 (the pinned clock) cost 231.9164 USD at the fake.
    assert _expected_total() == Decimal("231.9164")
    body = _show(admin_client_, connection).content.decode()
    assert "231.92 USD" in body
    assert "231.91" not in body


def test_sends_the_admin_key_and_the_window(admin_client_, connection, fake_upstream):
    _show(admin_client_, connection)
    [sent] = fake_upstream.requests_to(COSTS_PATH, "GET")
    assert sent.headers["authorization"] == f"Bearer {ADMIN_KEY_OK}"
    start, _today = _window()
    assert sent.query["start_time"] == [
        str(int(datetime.combine(start, time.min, UTC).timestamp()))
    ]
    assert sent.query["bucket_width"] == ["1d"]
    assert sent.query["limit"] == ["31"]
    assert sent.query["group_by"] == ["line_item"]


def test_groups_by_project(admin_client_, connection, fake_upstream):
    body = _show(admin_client_, connection, group="project").content.decode()
    [sent] = fake_upstream.requests_to(COSTS_PATH, "GET")
    assert sent.query["group_by"] == ["project_id"]
    assert "Costs per day, by project" in body
    assert "proj_fakeResearch001" in _tbody(body)
    assert format_amount(_expected_total(), "usd") in body
    # An unknown grouping falls back to line items.
    _show(admin_client_, connection, group="nonsense")
    assert fake_upstream.requests_to(COSTS_PATH)[-1].query["group_by"] == ["line_item"]


def test_follows_next_page(admin_client_, connection, fake_upstream, monkeypatch):
    monkeypatch.setattr(provider_costs, "PAGE_LIMIT", 7)
    body = _show(admin_client_, connection).content.decode()
    sent = fake_upstream.requests_to(COSTS_PATH, "GET")
    assert len(sent) == 5  # 31 days, 7 per page
    assert "page" not in sent[0].query
    assert sent[1].query["page"] == ["page_7"]
    assert body.count('class="bar-group"') == 31
    assert format_amount(_expected_total(), "usd") in body


def test_a_cursor_that_repeats_is_not_counted_twice(admin_client_, connection, fake_upstream):
    today = datetime.now(UTC).date()
    start_time = int(datetime.combine(today, time.min, tzinfo=UTC).timestamp())
    page = {**_page(_result(5), start_time=start_time), "has_more": True, "next_page": "same"}
    fake_upstream.queue(Reply.json(page), times=2)
    body = _show(admin_client_, connection).content.decode()
    assert len(fake_upstream.requests_to(COSTS_PATH)) == 2
    assert "Inconsistent answer from the provider" in body
    assert format_amount(Decimal(10), "usd") not in body


def test_a_provider_that_sends_the_same_next_page_twice_is_called_inconsistent(
    admin_client_, connection, fake_upstream, monkeypatch
):
    """The fake drops the cursor, so the second page repeats the first one's `next_page`: the
    page says the answer contradicted itself, and does not send the admin to the base URL."""
    monkeypatch.setattr(provider_costs, "PAGE_LIMIT", 7)
    fake_upstream.state["costs"]["ignore_page"] = True
    response = _show(admin_client_, connection)
    assert response.status_code == 200
    body = response.content.decode()
    sent = fake_upstream.requests_to(COSTS_PATH)
    assert [request.query.get("page") for request in sent] == [None, ["page_7"]]
    assert "Inconsistent answer from the provider" in body
    assert "sent the same page again" in body
    assert "The base URL is not the cause." in body
    assert "Check the base URL" not in body
    assert "Unexpected answer from the provider" not in body
    assert 'class="bar-group"' not in body
    event = ConnectionErrorEvent.objects.get(connection=connection)
    assert event.kind == "inconsistent_answer" and event.operation == "costs.list"

    # The connection page's error history gives the same explanation, in Spanish too.
    detail = reverse("connections:detail", args=[connection.team_id, connection.pk])
    body = admin_client_.get(detail, HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Respuesta incoherente del proveedor" in body
    assert "La URL base no es la causa." in body


def test_more_pages_than_expected_is_not_shown_as_the_whole_spend(
    admin_client_, connection, fake_upstream, monkeypatch
):
    monkeypatch.setattr(provider_costs, "PAGE_LIMIT", 7)
    monkeypatch.setattr(provider_costs, "MAX_PAGES", 2)
    body = _show(admin_client_, connection).content.decode()
    assert len(fake_upstream.requests_to(COSTS_PATH)) == 2
    assert "Inconsistent answer from the provider" in body
    assert 'class="bar-group"' not in body


def test_the_page_never_asks_the_provider_and_refresh_queues_a_fetch(
    admin_client_, connection, fake_upstream
):
    body = admin_client_.get(_url(connection)).content.decode()
    assert "Not fetched yet." in body
    assert fake_upstream.requests_to(COSTS_PATH) == []

    response = admin_client_.post(_refresh_url(connection), {"group": "project"}, follow=True)
    assert len(fake_upstream.requests_to(COSTS_PATH)) == 1
    assert fake_upstream.requests_to(COSTS_PATH)[-1].query["group_by"] == ["project_id"]
    assert response.redirect_chain[-1][0].endswith("?group=project")
    body = response.content.decode()
    assert "Costs refreshed." in body
    assert "Fetched 0\xa0minutes ago" in body
    admin_client_.get(_url(connection, group="project"))
    assert len(fake_upstream.requests_to(COSTS_PATH)) == 1
    # Only the grouping asked for was fetched: the other one is not known yet.
    assert "Not fetched yet." in admin_client_.get(_url(connection)).content.decode()


def test_the_page_records_nothing_and_the_refresh_records_all(
    admin_client_, connection, fake_upstream
):
    """A GET shows what was fetched; the fetch (a task) keeps the report, the month's spend and
    a failure in the error history."""
    admin_client_.get(_url(connection))
    connection.refresh_from_db()
    assert connection.month_spend == {}
    fake_upstream.queue(Reply.json({"object": "page", "data": "nope"}))
    body = _show(admin_client_, connection).content.decode()
    assert "Unexpected answer from the provider" in body
    assert ConnectionErrorEvent.objects.filter(connection=connection).count() == 1
    connection.refresh_from_db()
    assert connection.month_spend == {}
    body = _show(admin_client_, connection).content.decode()
    assert body.count('class="bar-group"') == 31
    assert "Unexpected answer from the provider" not in body
    connection.refresh_from_db()
    assert connection.month_spend["month"] == f"{costs.utc_today():%Y-%m}"


def test_failed_refresh_keeps_the_figures_with_an_explanation(
    admin_client_, connection, fake_upstream
):
    _show(admin_client_, connection)
    fake_upstream.queue(
        Reply.error(500, "The server had an error.", "server_error", "server_error"), times=3
    )
    response = admin_client_.post(_refresh_url(connection), {"group": "line_item"}, follow=True)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Costs refreshed." not in body
    assert "The provider had an error (5xx)" in body
    assert "figures below are the ones fetched before" in body
    assert body.count('class="bar-group"') == 31
    event = ConnectionErrorEvent.objects.get(connection=connection)
    assert event.operation == "costs.list" and event.kind == "server_error"


@pytest.mark.usefixtures("queued")
def test_a_refresh_not_done_yet_says_fetching(admin_client_, connection, fake_upstream):
    response = admin_client_.post(_refresh_url(connection), {"group": "line_item"}, follow=True)
    body = response.content.decode()
    assert "<strong>Fetching…</strong>" in body and 'hx-trigger="every 2s"' in body
    assert "Costs refreshed." not in body
    assert fake_upstream.requests_to(COSTS_PATH) == []

    run_queued()

    body = admin_client_.get(_url(connection)).content.decode()
    assert "<strong>Fetching…</strong>" not in body and "every 2s" not in body
    assert body.count('class="bar-group"') == 31


def test_a_new_admin_key_never_shows_the_old_keys_figures(admin_client_, connection):
    _show(admin_client_, connection)
    connection.set_admin_key(ADMIN_KEY_OK)
    connection.save()
    body = admin_client_.get(_url(connection)).content.decode()
    assert "Not fetched yet." in body and 'class="bar-group"' not in body


def test_without_admin_key_explains_how_to_add_one(admin_client_, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url)
    body = _show(admin_client_, connection).content.decode()
    assert "An admin key is needed to read costs" in body
    assert "Organization settings → Admin keys" in body
    assert "sk-admin-" in body
    assert reverse("connections:admin_key", args=[team.pk, connection.pk]) in body
    assert fake_upstream.requests_to(COSTS_PATH) == []

    response = admin_client_.post(_refresh_url(connection), follow=True)
    assert "Add an admin key first" in response.content.decode()
    assert fake_upstream.requests_to(COSTS_PATH) == []


def test_a_plain_api_key_is_refused_as_the_real_api_does(admin_client_, connection, fake_upstream):
    connection.set_admin_key(KEY_OK)
    connection.save()
    body = _show(admin_client_, connection).content.decode()
    [sent] = fake_upstream.requests_to(COSTS_PATH)
    assert sent.headers["authorization"] == f"Bearer {KEY_OK}"
    assert "Invalid authentication (401)" in body
    assert "can only be read with an admin key" in body
    assert "Missing scopes: api.usage.read" in body  # the provider's message, for admins
    assert KEY_OK not in body
    assert ConnectionErrorEvent.objects.get(connection=connection).kind == "invalid_key"


def test_quota_error_is_explained(admin_client_, connection, fake_upstream):
    connection.set_admin_key(KEY_QUOTA)
    connection.save()
    body = _show(admin_client_, connection).content.decode()
    assert "You exceeded your current quota (429)" in body
    assert "Add credit or raise the spending limit" in body


def test_malformed_answer_is_explained(admin_client_, connection, fake_upstream):
    fake_upstream.queue(Reply.json({"object": "page", "data": "nope"}))
    body = _show(admin_client_, connection).content.decode()
    assert "Unexpected answer from the provider" in body
    assert 'class="bar-group"' not in body


def _page(*results, start_time=1_700_006_400) -> dict:
    bucket = {"object": "bucket", "start_time": start_time, "results": list(results)}
    return {"object": "page", "data": [bucket], "has_more": False, "next_page": None}


def _result(value, currency="usd") -> dict:
    return {"object": "organization.costs.result", "amount": {"value": value, "currency": currency}}


@pytest.mark.parametrize(
    "answer",
    [
        _page(start_time=10**20),  # beyond any date: used to raise OverflowError
        _page(start_time=-(10**15)),
        _page(_result(1e308), _result(1e308)),  # adds up to infinity in the chart
        _page(_result("1e999999")),
        _page(_result("12 dollars")),  # used to be left out: a total lower than the spend
        _page(_result(True)),
        _page(_result(5, currency=7)),
        _page({"amount": "5 usd"}),
    ],
)
def test_an_answer_that_is_not_costs_is_explained(admin_client_, connection, fake_upstream, answer):
    fake_upstream.queue(Reply.json(answer))
    response = _show(admin_client_, connection)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Unexpected answer from the provider" in body
    assert 'class="bar-group"' not in body
    event = ConnectionErrorEvent.objects.get(connection=connection)
    assert event.kind == "bad_response"


def test_results_without_an_amount_and_currencies_mixed(admin_client_, connection, fake_upstream):
    """The spec makes `amount` optional: a result without one adds nothing. Each currency
    keeps its own total; the chart is drawn in the largest."""
    today = datetime.now(UTC).date()
    start_time = int(datetime.combine(today, time.min, tzinfo=UTC).timestamp())
    answer = _page(
        {"object": "organization.costs.result"},
        {"amount": {"value": None, "currency": "usd"}},
        _result("2.50", "USD"),
        _result(1.25, "usd"),
        _result(1, "eur"),
        start_time=start_time,
    )
    fake_upstream.queue(Reply.json(answer))
    body = _show(admin_client_, connection).content.decode()
    assert "Unexpected answer" not in body
    assert format_amount(Decimal("3.75"), "usd") in body
    # Both the 30 days and this month name the euros too, not only the chart's currency.
    assert body.count("+ " + format_amount(Decimal("1"), "eur")) == 2


def test_unreadable_admin_key_asks_nothing(admin_client_, team, connection, fake_upstream):
    other = make_connection(team, name="Other", base_url=fake_upstream.base_url)
    other.set_admin_key(ADMIN_KEY_OK)
    other.save()
    connection.admin_key_encrypted = other.admin_key_encrypted
    connection.save(update_fields=["admin_key_encrypted"])
    body = _show(admin_client_, connection).content.decode()
    assert "The stored key can&#x27;t be read" in body or "The stored key can't be read" in body
    assert fake_upstream.requests_to(COSTS_PATH) == []


def test_points_to_openai_usage_page_for_credit(admin_client_, connection):
    body = _show(admin_client_, connection).content.decode()
    assert costs.USAGE_URL in body
    assert "Credit left" in body


def test_roles_outsider_and_anonymous(users, connection):
    check_refusals(users, _url(connection), min_role="admin")
    check_refusals(users, _refresh_url(connection), min_role="admin", method="post")


def test_unknown_connection_is_404(admin_client_, team, connection):
    response = admin_client_.get(reverse("connections:costs", args=[team.pk, uuid.uuid4()]))
    assert response.status_code == 404


def test_another_teams_connection_is_404(admin_client_, other_team, fake_upstream):
    foreign = make_connection(other_team, base_url=fake_upstream.base_url)
    assert admin_client_.get(_url(foreign)).status_code == 404


def test_labels_from_the_provider_are_escaped_in_the_chart_and_table(
    admin_client_, connection, fake_upstream
):
    today = datetime.now(UTC).date()
    start_time = int(datetime.combine(today, time.min, tzinfo=UTC).timestamp())
    hostile = "<script>alert(\"x\")</script> & 'q'"
    answer = _page(
        {**_result(2), "line_item": hostile},
        {**_result(1), "line_item": "</svg><img src=x onerror=alert(1)>"},
        start_time=start_time,
    )
    fake_upstream.queue(Reply.json(answer))
    body = _show(admin_client_, connection).content.decode()
    svg = body.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;q&#x27;" in svg
    assert "&lt;/svg&gt;&lt;img src=x onerror=alert(1)&gt;" in svg
    assert "<script>" not in body and "<img src=x" not in body


def test_the_hourly_fetch_is_what_the_page_shows(admin_client_, connection, fake_upstream):
    """The consumer's fetch lands in the database, where the web process reads it."""
    from connections.tasks import connection_costs_run

    assert connection_costs_run(connection_id=connection.pk) is None
    asked = len(fake_upstream.requests_to(COSTS_PATH))
    assert asked == 2  # both groupings
    for group in ("line_item", "project"):
        body = admin_client_.get(_url(connection, group=group)).content.decode()
        assert body.count('class="bar-group"') == 31
        assert "Fetched 0\xa0minutes ago" in body
    assert len(fake_upstream.requests_to(COSTS_PATH)) == asked
