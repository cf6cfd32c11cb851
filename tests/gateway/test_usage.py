"""The gateway usage page and its CSV: who used what, with money where a price exists."""

import csv
import datetime
import io
from datetime import UTC

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from gateway import usage
from gateway.models import GatewayCall
from tests.connections.helpers import make_connection
from tests.gateway.usage_helpers import make_call, make_price, make_token

pytestmark = pytest.mark.usefixtures("pinned_clock")


def _at(day: int, month: int = 11, hour: int = 10) -> datetime.datetime:
    return datetime.datetime(2026, month, day, hour, 0, tzinfo=UTC)


@pytest.fixture
def connection(team, owner):
    return make_connection(team, created_by=owner)


@pytest.fixture
def member_token(team, connection, member):
    return make_token(team, connection, owner=member, name="member laptop")


@pytest.fixture
def admin_token(team, connection, admin_user):
    return make_token(team, connection, owner=admin_user, name="admin notebook")


@pytest.fixture
def service_token(team, connection):
    return make_token(team, connection, owner=None, name="nightly job")


def _url(team, **params) -> str:
    url = reverse("gateway_usage:summary", kwargs={"team_id": team.pk})
    if params:
        from urllib.parse import urlencode

        url += "?" + urlencode(params)
    return url


def _export(client, team, **params) -> list[list[str]]:
    from urllib.parse import urlencode

    url = reverse("gateway_usage:export", kwargs={"team_id": team.pk})
    response = client.get(url + ("?" + urlencode(params) if params else ""))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_admin_sees_everyones_usage_by_member_with_money(
    admin_client_, team, member, member_token, admin_token, service_token
):
    make_price(team, model="gpt-4o-mini", input="0.15", cached="0.075", output="0.60")
    # 1M uncached + 1M cached input, 1M output: 0.15 + 0.075 + 0.60 = 0.825 → 0.83 USD.
    make_call(
        member_token,
        when=_at(20),
        input_tokens=2_000_000,
        cached_tokens=1_000_000,
        output_tokens=1_000_000,
    )
    make_call(member_token, when=_at(21), status=500, input_tokens=None, output_tokens=None)
    make_call(admin_token, when=_at(22), refused=True, status=403, input_tokens=None)
    make_call(service_token, when=_at(23), model="gpt-4o")

    response = admin_client_.get(_url(team))
    assert response.status_code == 200
    page = response.content.decode()
    rows = {row.label: row for row in response.context["page_obj"]}
    assert set(rows) == {"member@example.com", "admin@example.com", "No member (service tokens)"}
    mine = rows["member@example.com"]
    assert (mine.requests, mine.errors) == (2, 1)
    assert (mine.input, mine.cached, mine.output) == (2_000_000, 1_000_000, 1_000_000)
    assert mine.money.display() == "0.83 USD"
    assert rows["admin@example.com"].errors == 1  # refused by Tablero counts as an error
    # The service token's model has no price: nothing is made up for it.
    service = rows["No member (service tokens)"]
    assert service.money.display() == "—"
    assert "no price set" in page
    assert "0.83 USD" in page
    assert 'id="gateway-usage-chart"' in page
    # The totals are the whole team's, and only partly priced.
    totals = response.context["report"].totals
    assert (totals.requests, totals.errors) == (4, 2)
    assert "partial: some models have no price set" in page


def test_a_member_sees_only_their_own_calls(
    member_client, team, member, member_token, admin_token, service_token
):
    make_call(member_token, when=_at(20))
    make_call(admin_token, when=_at(20), model="secret-admin-model")
    make_call(service_token, when=_at(20), model="secret-service-model")

    response = member_client.get(_url(team, by="model"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "secret-admin-model" not in page
    assert "secret-service-model" not in page
    assert [row.label for row in response.context["page_obj"]] == ["gpt-4o-mini"]
    assert response.context["report"].totals.requests == 1
    assert "Your own calls" in page
    # The CSV holds the same: their own calls only.
    rows = _export(member_client, team, by="member")
    assert [row[0] for row in rows[1:]] == ["member@example.com"]


def test_viewer_sees_their_own_empty_usage(viewer_client, team, member_token):
    make_call(member_token, when=_at(20))
    response = viewer_client.get(_url(team))
    assert response.status_code == 200
    assert "You made no calls through the gateway in this period." in response.content.decode()


def test_price_in_force_on_each_calls_date(admin_client_, team, member_token):
    make_price(team, day=datetime.date(2026, 1, 1), input="1", cached=None, output="0")
    make_price(team, day=datetime.date(2026, 11, 15), input="3", cached=None, output="0")
    one_million = {"input_tokens": 1_000_000, "cached_tokens": 0, "output_tokens": 0}
    make_call(member_token, when=_at(14, hour=23), **one_million)  # old price: 1
    make_call(member_token, when=_at(15, hour=0), **one_million)  # new price: 3
    response = admin_client_.get(_url(team, by="day"))
    by_day = {row.key: row.money.display() for row in response.context["page_obj"]}
    assert by_day == {
        datetime.date(2026, 11, 14): "1.00 USD",
        datetime.date(2026, 11, 15): "3.00 USD",
    }
    assert response.context["report"].totals.money.display() == "4.00 USD"


def test_a_call_before_the_first_price_has_no_money(admin_client_, team, member_token):
    make_price(team, day=datetime.date(2026, 11, 25))
    make_call(member_token, when=_at(20))
    response = admin_client_.get(_url(team, by="model"))
    row = response.context["page_obj"][0]
    assert row.money.display() == "—"
    assert row.money.note == "no price set"


@pytest.mark.parametrize(
    ("params", "since", "until"),
    [
        ({}, datetime.date(2026, 11, 1), datetime.date(2026, 11, 30)),
        ({"period": "this_month"}, datetime.date(2026, 11, 1), datetime.date(2026, 11, 30)),
        ({"period": "last_month"}, datetime.date(2026, 10, 1), datetime.date(2026, 10, 31)),
        ({"period": "7d"}, datetime.date(2026, 11, 24), datetime.date(2026, 11, 30)),
        ({"period": "30d"}, datetime.date(2026, 11, 1), datetime.date(2026, 11, 30)),
        (
            {"period": "custom", "since": "2026-10-30", "until": "2026-11-02"},
            datetime.date(2026, 10, 30),
            datetime.date(2026, 11, 2),
        ),
    ],
)
def test_periods(admin_client_, team, member_token, params, since, until):
    for day, month in ((31, 10), (30, 10), (1, 11), (24, 11), (30, 11), (15, 9)):
        make_call(member_token, when=_at(day, month))
    response = admin_client_.get(_url(team, by="day", **params))
    assert response.status_code == 200
    report = response.context["report"]
    assert (report.since, report.until) == (since, until)
    days = {row.key for row in response.context["page_obj"]}
    expected = {
        datetime.date(2026, month, day)
        for day, month in ((31, 10), (30, 10), (1, 11), (24, 11), (30, 11), (15, 9))
        if since <= datetime.date(2026, month, day) <= until
    }
    assert days == expected
    assert len(report.per_day) == (until - since).days + 1


def test_a_bad_custom_range_says_why_and_shows_this_month(admin_client_, team, member_token):
    make_call(member_token, when=_at(20))
    response = admin_client_.get(
        _url(team, period="custom", since="2026-11-10", until="2026-11-01")
    )
    assert response.status_code == 200
    assert "The end date is before the start date." in response.content.decode()
    assert response.context["report"].since == datetime.date(2026, 11, 1)
    export = reverse("gateway_usage:export", kwargs={"team_id": team.pk})
    bad = admin_client_.get(export + "?period=custom&since=2025-01-01&until=2026-11-01")
    assert bad.status_code == 400


def test_csv_export(admin_client_, team, member_token, service_token):
    make_price(team, model="gpt-4o-mini", input="1", cached="0.5", output="2")
    make_call(
        member_token,
        when=_at(20),
        input_tokens=1_000_000,
        cached_tokens=500_000,
        output_tokens=1_000_000,
        latency_ms=120,
    )
    make_call(service_token, when=_at(20), model="=HYPERLINK(1)", latency_ms=80)
    rows = _export(admin_client_, team, by="model")
    assert rows[0][:3] == ["Model", "Detail", "Requests"]
    body = {row[0]: row for row in rows[1:]}
    # 0.5M at 1 + 0.5M at 0.5 + 1M at 2 = 2.75
    assert body["gpt-4o-mini"][2:13] == [
        "1",
        "0",
        "1000000",
        "500000",
        "1000000",
        "2.75",
        "USD",
        "0",
        "120.0",
        "120.0",
        "120.0",
    ]
    # No price: empty money cells; a formula-looking model is neutralised.
    assert body["'=HYPERLINK(1)"][7:10] == ["", "", "1500"]


def test_the_csv_lists_every_row_in_the_pages_order_a_batch_at_a_time(
    admin_client_, team, member_token, monkeypatch
):
    monkeypatch.setattr(usage, "EXPORT_BATCH", 2)
    make_price(team, model="model-1", input="1", cached=None, output="0")
    for index in range(5):
        make_call(
            member_token, when=_at(20), model=f"model-{index}", input_tokens=1_000_000 * index
        )
    page = admin_client_.get(_url(team, by="model"))
    shown = [(row.label, row.money.display()) for row in page.context["page_obj"]]
    rows = _export(admin_client_, team, by="model")
    assert [row[0] for row in rows[1:]] == [label for label, _money in shown]
    assert [label for label, _money in shown] == [f"model-{n}" for n in (4, 3, 2, 1, 0)]
    assert dict(shown)["model-1"] == "1.00 USD"
    assert {row[0]: row[7] for row in rows[1:]}["model-1"] == "1.00"


def test_latency_percentiles_match_postgresql_interpolation(admin_client_, team, member_token):
    for latency in range(10, 101, 10):  # 10, 20, ... 100
        make_call(member_token, when=_at(20), latency_ms=latency)
    make_call(member_token, when=_at(20), latency_ms=None)  # a call without a latency
    response = admin_client_.get(_url(team, by="model"))
    latency = response.context["page_obj"][0].latency
    assert latency.p50 == pytest.approx(55.0)
    assert latency.p95 == pytest.approx(95.5)
    assert latency.p99 == pytest.approx(99.1)
    totals = response.context["totals_latency"]
    assert (totals.p50, totals.p95) == (pytest.approx(55.0), pytest.approx(95.5))
    assert "55 / 96 / 99 ms" in " ".join(response.content.decode().split())


def test_percentile_interpolation():
    assert usage.percentile_cont([], 0.5) is None
    assert usage.percentile_cont([7], 0.99) == 7.0
    assert usage.percentile_cont([1, 2, 3, 4], 0.5) == 2.5


@pytest.mark.skipif(
    "db_connection.vendor == 'postgresql'", reason="PostgreSQL computes over every call"
)
def test_the_portable_percentiles_read_a_bounded_sample(team, member_token, monkeypatch):
    monkeypatch.setattr(usage, "LATENCY_SAMPLE", 5)
    for index, latency in enumerate([1000, 1000, 1000, 10, 20, 30, 40, 50]):
        make_call(member_token, when=_at(20, hour=1 + index), latency_ms=latency)
    calls = usage.usage_calls(
        team=team, since=datetime.date(2026, 11, 1), until=datetime.date(2026, 11, 30)
    )
    by_model = usage.usage_latency(calls, group="model", keys=["gpt-4o-mini"])
    # The five most recent calls only.
    assert by_model["gpt-4o-mini"].p50 == 30.0
    assert by_model["gpt-4o-mini"].sampled
    assert usage.usage_latency(calls, group=None)[None].p50 == 30.0


@pytest.mark.skipif(
    "db_connection.vendor == 'postgresql'", reason="PostgreSQL computes over every call"
)
def test_the_page_says_when_latency_was_sampled(admin_client_, team, member_token, monkeypatch):
    monkeypatch.setattr(usage, "LATENCY_SAMPLE", 2)
    for latency in (10, 20, 30):
        make_call(member_token, when=_at(20), latency_ms=latency)
    page = admin_client_.get(_url(team)).content.decode()
    assert "From the latest 2 calls of each row." in page


def test_pages_of_rows(admin_client_, team, member_token):
    for index in range(usage_views_page_size() + 3):
        make_call(member_token, when=_at(20), model=f"model-{index:02d}")
    first = admin_client_.get(_url(team, by="model"))
    assert len(first.context["page_obj"].object_list) == usage_views_page_size()
    second = admin_client_.get(_url(team, by="model", page=2))
    assert len(second.context["page_obj"].object_list) == 3
    assert "Page 2 of 2" in second.content.decode()


def usage_views_page_size() -> int:
    from gateway.usage_views import USAGE_PAGE_SIZE

    return USAGE_PAGE_SIZE


def _queries(client, url) -> int:
    with CaptureQueriesContext(db_connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("group", list(usage.GROUPS))
def test_query_count_does_not_grow_with_calls(admin_client_, admin_user, team, connection, group):
    from accounts.models import Membership, Role
    from tests.conftest import make_user

    make_price(team)
    token = make_token(team, connection, owner=admin_user, name="first")
    make_call(token, when=_at(20))
    admin_client_.get(_url(team))  # the session learns the current team (a write, once)
    few = _queries(admin_client_, _url(team, by=group))
    for index in range(12):
        user = make_user(f"m{index}@example.com")
        Membership.objects.create(team=team, user=user, role=Role.MEMBER)
        their = make_token(team, connection, owner=user, name=f"t{index}")
        for day in (3, 9, 17, 28):
            make_call(their, when=_at(day), model=f"model-{index % 4}", latency_ms=index * 10)
    assert GatewayCall.objects.count() == 49
    assert _queries(admin_client_, _url(team, by=group)) == few


@translation.override("en")
def test_each_tokens_use_this_month_for_the_token_list(
    team, member_token, service_token, admin_token, django_assert_num_queries
):
    make_price(team, input="1", cached=None, output="1")
    make_call(member_token, when=_at(2), input_tokens=1_000_000, output_tokens=0)
    make_call(member_token, when=_at(3), status=401, input_tokens=None, output_tokens=None)
    make_call(member_token, when=_at(31, month=10))  # last month: not counted
    make_call(service_token, when=_at(4), model="unpriced")
    with django_assert_num_queries(2):
        found = usage.token_usage_this_month(
            team=team, token_ids=[member_token.pk, service_token.pk, admin_token.pk]
        )
    assert set(found) == {member_token.pk, service_token.pk}
    mine = found[member_token.pk]
    assert (mine.requests, mine.errors, mine.tokens) == (2, 1, 1_000_000)
    assert mine.money.display() == "1.00 USD"
    assert found[service_token.pk].money.display() == "—"
    assert usage.token_usage_this_month(team=team, token_ids=[]) == {}


def test_the_navigation_leads_to_the_usage_page_in_both_languages(viewer_client, team):
    home = reverse("dashboard:team_home", kwargs={"team_id": team.pk})
    assert f'href="{_url(team)}"' in viewer_client.get(home).content.decode()
    spanish = viewer_client.get(_url(team), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Uso de la pasarela" in spanish
    assert "Por modelo" in spanish
    assert 'aria-current="page">Uso de la pasarela' in spanish
