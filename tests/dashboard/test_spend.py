"""The team's Spend page and its CSV: every connection's kept costs (no provider is asked),
grouped by connection, line item or project, with the threshold the alerts use. Access for
every role is also in tests/test_permission_matrix.py (tests/dashboard/matrix.py)."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal
from unittest import mock

import httpx
import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from connections import costs
from connections.models import CostSnapshot
from dashboard.models import TeamAlertSettings
from fakeprovider import ADMIN_KEY_OK
from provider.costs import CostLine
from tests.conftest import client_for
from tests.connections.helpers import make_connection

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pinned_clock")]

TODAY = date(2026, 11, 30)  # the pinned clock's UTC day


def _no_network(*args, **kwargs):
    raise AssertionError("a page request called the provider")


def with_costs(team, name: str, lines: dict[str, list[CostLine]], *, spent: str = "") -> object:
    """A connection with an admin key whose costs were fetched: `lines` per grouping."""
    connection = make_connection(team, name=name)
    connection.set_admin_key(ADMIN_KEY_OK)
    if spent:
        connection.month_spend = {
            "month": f"{TODAY:%Y-%m}",
            "amounts": {"usd": spent},
            "fetched_at": timezone.now().isoformat(),
        }
    connection.save()
    for group, group_lines in lines.items():
        report = costs.CostReport(
            group=group,
            start=costs.window_start(TODAY),
            end=TODAY,
            fetched_at=timezone.now() - timedelta(minutes=5),
            lines=group_lines,
        )
        CostSnapshot.objects.create(
            connection=connection,
            group=group,
            key_digest=costs._key_digest(connection),
            report=report.to_cache(),
            fetched_at=report.fetched_at,
        )
    return connection


def line(day: int, group: str, amount: str) -> CostLine:
    return CostLine(date(2026, 11, day), group, Decimal(amount), "usd")


@pytest.fixture
def billed(team):
    production = with_costs(
        team,
        "Production",
        {
            "line_item": [
                line(29, "gpt-4o, input", "1.50"),
                line(30, "gpt-4o, output", "2.00"),
                line(30, "gpt-4o, input", "0.25"),
            ],
            "project": [line(29, "proj_web", "3.00"), line(30, "", "0.75")],
        },
        spent="3.75",
    )
    staging = with_costs(
        team,
        "Staging",
        {"line_item": [line(30, "gpt-4o, input", "0.50")], "project": []},
        spent="0.50",
    )
    return production, staging


def url(team, **query) -> str:
    path = reverse("dashboard:spend", args=[team.pk])
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def page(client, path: str) -> str:
    with mock.patch.object(httpx.Client, "send", _no_network):
        response = client.get(path)
    assert response.status_code == 200
    return response.content.decode()


def table(body: str, table_id: str) -> list[list[str]]:
    import re

    part = body.split(f'id="{table_id}"', 1)[1].split("</tbody>", 1)[0]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", part.split("<tbody>", 1)[1], re.S)
    ]


def test_by_connection(owner_client, team, billed):
    body = page(owner_client, url(team))
    assert "4.25 USD" in body  # 1.50 + 2.25 + 0.50, the last 30 days
    assert table(body, "spend-table") == [
        ["Nov. 30, 2026", "Production", "2.25 USD"],
        ["Nov. 30, 2026", "Staging", "0.50 USD"],
        ["Nov. 29, 2026", "Production", "1.50 USD"],
    ]
    assert 'id="spend-chart"' in body and "Costs per day, by connection" in body


def test_by_line_item_names_the_model(admin_client_, team, billed):
    body = page(admin_client_, url(team, group="line_item"))
    assert table(body, "spend-table")[:2] == [
        ["Nov. 30, 2026", "Production", "gpt-4o, output", "2.00 USD"],
        ["Nov. 30, 2026", "Staging", "gpt-4o, input", "0.50 USD"],
    ]
    assert "Costs per day, by line item" in body


def test_by_model_sums_the_model_s_line_items(admin_client_, team, billed):
    body = page(admin_client_, url(team, group="model"))
    assert table(body, "spend-table") == [
        ["Nov. 30, 2026", "Production", "gpt-4o", "2.25 USD"],  # input and output
        ["Nov. 30, 2026", "Staging", "gpt-4o", "0.50 USD"],
        ["Nov. 29, 2026", "Production", "gpt-4o", "1.50 USD"],
    ]
    assert "Costs per day, by model" in body
    response = admin_client_.get(reverse("dashboard:spend_csv", args=[team.pk]) + "?group=model")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["Day", "Connection", "Model", "Amount", "Currency"]
    assert ["2026-11-30", "Production", "gpt-4o", "2.25", "usd"] in rows


def test_by_project_names_the_missing_project(admin_client_, team, billed):
    body = page(admin_client_, url(team, group="project"))
    rows = table(body, "spend-table")
    assert ["Nov. 30, 2026", "Production", "No project", "0.75 USD"] in rows
    assert ["Nov. 29, 2026", "Production", "proj_web", "3.00 USD"] in rows


def test_an_unknown_grouping_falls_back(admin_client_, team, billed):
    body = page(admin_client_, url(team, group="<b>"))
    assert "Costs per day, by connection" in body and "<b>" not in body.split("<main", 1)[1]


def test_the_csv(admin_client_, team, billed):
    response = admin_client_.get(
        reverse("dashboard:spend_csv", args=[team.pk]) + "?group=line_item"
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="tablero-spend-line_item.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["Day", "Connection", "Line item", "Amount", "Currency"],
        ["2026-11-29", "Production", "gpt-4o, input", "1.50", "usd"],
        ["2026-11-30", "Production", "gpt-4o, input", "0.25", "usd"],
        ["2026-11-30", "Production", "gpt-4o, output", "2.00", "usd"],
        ["2026-11-30", "Staging", "gpt-4o, input", "0.50", "usd"],
    ]
    by_connection = admin_client_.get(reverse("dashboard:spend_csv", args=[team.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(by_connection.streaming_content).decode())))
    assert rows[0] == ["Day", "Connection", "Amount", "Currency"]
    assert rows[1:] == [
        ["2026-11-29", "Production", "1.50", "usd"],
        ["2026-11-30", "Production", "2.25", "usd"],  # the line items of the day summed
        ["2026-11-30", "Staging", "0.50", "usd"],
    ]


def test_a_csv_cell_is_never_a_formula(admin_client_, team):
    with_costs(team, "=cmd", {"line_item": [line(30, "@SUM(A1)", "1")]})
    response = admin_client_.get(
        reverse("dashboard:spend_csv", args=[team.pk]) + "?group=line_item"
    )
    text = b"".join(response.streaming_content).decode()
    assert "'=cmd" in text and "'@SUM(A1)" in text


def test_the_threshold_is_shown_and_changed_in_one_place(owner_client, team, billed):
    body = page(owner_client, url(team))
    assert "None set: no spend alerts." in body
    settings = reverse("dashboard:alert_settings", args=[team.pk])
    assert f'<a href="{settings}">Set a threshold</a>' in body

    TeamAlertSettings.objects.create(team=team, spend_threshold=Decimal("4"))
    body = page(owner_client, url(team))
    assert "4.00 USD" in body  # the threshold
    assert "4.25 USD" in body  # this month: 3.75 + 0.50, as the alerts count it
    assert "Reached this month" in body
    assert f'<a href="{settings}">Change the threshold</a>' in body


def test_connections_without_costs_are_listed_with_what_to_do(admin_client_, team, billed):
    plain = make_connection(team, name="No admin key")
    body = page(admin_client_, url(team))
    admin_key = reverse("connections:admin_key", args=[team.pk, plain.pk])
    assert f'<a href="{admin_key}">Add an admin key to include its costs</a>' in body
    assert "Fetched 5\xa0minutes ago." in body


def test_a_failing_fetch_is_explained(admin_client_, team):
    connection = with_costs(team, "Broken", {})
    CostSnapshot.objects.create(
        connection=connection,
        group="line_item",
        key_digest=costs._key_digest(connection),
        report=None,
        error_kind="invalid_key",
        error_at=timezone.now(),
    )
    body = page(admin_client_, url(team))
    assert "Invalid authentication (401)" in body
    assert "No costs fetched yet." in body


def test_a_team_without_admin_keys(owner_client, team):
    make_connection(team)
    body = page(owner_client, url(team))
    assert "No connection has an admin key" in body
    assert "Download CSV" not in body


@pytest.mark.parametrize("role", ["viewer", "member"])
def test_refused_below_admin(users, team, billed, role):
    assert client_for(users[role]).get(url(team)).status_code == 403
    csv_url = reverse("dashboard:spend_csv", args=[team.pk])
    assert client_for(users[role]).get(csv_url).status_code == 403


def test_an_outsider_gets_404(outsider_client, team, billed):
    assert outsider_client.get(url(team)).status_code == 404


def test_in_the_navigation_for_admins_and_the_owner_only(users, team):
    spend = reverse("dashboard:spend", args=[team.pk])
    home = reverse("dashboard:team_home", args=[team.pk])
    for role, shown in (("viewer", False), ("member", False), ("admin", True), ("owner", True)):
        body = client_for(users[role]).get(home).content.decode()
        assert (f'href="{spend}"' in body) is shown, role


def test_linked_with_the_gateway_usage_page(admin_client_, team):
    spend = reverse("dashboard:spend", args=[team.pk])
    usage = reverse("gateway_usage:summary", args=[team.pk])
    assert f'href="{usage}"' in page(admin_client_, spend)
    assert f'href="{spend}"' in page(admin_client_, usage)


# A request in Spanish leaves Spanish active in the thread: put English back after.
@translation.override("en")
def test_in_spanish(owner, team, billed):
    client = client_for(owner)
    body = client.get(url(team), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Gasto" in body and "4,25 USD" in body


def test_queries_do_not_grow_with_the_team(admin_client_, team):
    def count() -> int:
        with CaptureQueriesContext(db) as queries:
            page(admin_client_, url(team, group="line_item"))
        return len(queries)

    with_costs(team, "A", {"line_item": [line(30, "x", "1")]})
    page(admin_client_, url(team))  # the session is saved on the first visit
    few = count()
    for n in range(6):
        with_costs(team, f"B{n}", {"line_item": [line(29, "y", "2")]})
        make_connection(team, name=f"C{n}")
    assert count() == few
