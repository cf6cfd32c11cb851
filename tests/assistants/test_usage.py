"""The usage page (assistants:usage): runs and tokens of the last 30 days per assistant, per
member and per day, from the runs Tablero started."""

import datetime
import uuid
import zoneinfo
from datetime import timedelta

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from assistants.models import RunStatus
from assistants.usage import usage_summary
from tests.assistants.helpers import check_refusals, make_assistant, make_run
from tests.connections.helpers import make_connection


@pytest.fixture(autouse=True)
def _pinned(pinned_clock):
    """The page shows the last 30 days: every test here stands at the same moment."""


@pytest.fixture
def production(team, owner):
    return make_connection(team, name="Production", created_by=owner)


@pytest.fixture
def research(team, owner):
    return make_connection(team, name="Research", created_by=owner)


def _url(team, **query) -> str:
    url = reverse("assistants:usage", args=[team.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _ago(days: float):
    return timezone.now() - timedelta(days=days)


@pytest.fixture
def history(team, other_team, production, research, owner, member, outsider):
    tutor = make_assistant(team, production, name="Math Tutor")
    writer = make_assistant(team, research, name="Writer")
    doomed = make_assistant(team, production, name="Old Helper")
    make_run(tutor, started_by=member, input_tokens=100, output_tokens=20, total_tokens=120)
    make_run(
        tutor,
        started_by=member,
        input_tokens=200,
        output_tokens=30,
        total_tokens=230,
        created_at=_ago(2),
    )
    make_run(tutor, started_by=owner, status=RunStatus.FAILED, created_at=_ago(3))
    # No total from the provider: input + output count.
    make_run(writer, started_by=owner, input_tokens=1000, output_tokens=500, created_at=_ago(1))
    make_run(doomed, started_by=member, total_tokens=7, created_at=_ago(5))
    doomed.delete()
    # Outside the window, or another team's: never counted.
    make_run(tutor, started_by=member, total_tokens=99999, created_at=_ago(31))
    foreign = make_connection(other_team, name="Theirs")
    make_run(
        make_assistant(other_team, foreign, name="Spy"), started_by=outsider, total_tokens=55555
    )
    return {"tutor": tutor, "writer": writer}


def _table(body: str, table_id: str) -> str:
    return body.split(f'id="{table_id}"')[1].split("<tbody>")[1].split("</tbody>")[0]


def test_summary_adds_up_in_the_database(team, history):
    usage = usage_summary(team=team)
    assert (usage.totals.runs, usage.totals.tokens, usage.totals.failed) == (5, 1857, 1)
    assert usage.totals.input == 1300 and usage.totals.output == 550
    by_assistant = {row.label: (row.runs, row.tokens, row.gone) for row in usage.per_assistant}
    assert by_assistant == {
        "Writer": (1, 1500, False),
        "Math Tutor": (3, 350, False),
        "Old Helper": (1, 7, True),
    }
    assert usage.per_assistant[0].label == "Writer"  # most tokens first
    by_member = {row.label: (row.runs, row.tokens) for row in usage.per_member}
    assert by_member == {"owner@example.com": (2, 1500), "member@example.com": (3, 357)}
    assert len(usage.per_day) == 30
    assert usage.per_day[-1][0] == timezone.localdate()
    assert usage.per_day[-1][1].tokens == 120
    assert sum(row.runs for _day, row in usage.per_day) == 5


def test_page_shows_totals_chart_and_tables(viewer_client, team, history):
    response = viewer_client.get(_url(team))
    assert response.status_code == 200
    body = response.content.decode()
    assert '<p class="stat">1,857</p>' in body
    assert body.count('class="bar-group"') == 30
    assert "Tokens per day" in body
    assert "120 tokens</title>" in body
    assistants = _table(body, "usage-assistants")
    assert reverse("assistants:detail", args=[team.pk, history["tutor"].pk]) in assistants
    assert "Old Helper" in assistants and "deleted" in assistants
    assert "Spy" not in body and "55,555" not in body and "99,999" not in body
    members = _table(body, "usage-members")
    assert "owner@example.com" in members and "member@example.com" in members
    assert _table(body, "usage-days").count("<tr>") == 5  # days with runs only


def test_filter_by_connection(viewer_client, team, history, research):
    body = viewer_client.get(_url(team, connection=research.pk)).content.decode()
    assistants = _table(body, "usage-assistants")
    assert "Writer" in assistants and "Math Tutor" not in assistants
    assert '<p class="stat">1,500</p>' in body


def test_another_teams_connection_is_not_a_choice(viewer_client, team, other_team, history):
    foreign = make_connection(other_team, name="Foreign")
    body = viewer_client.get(_url(team, connection=foreign.pk)).content.decode()
    assert "Select a valid choice." in body
    assert '<p class="stat">1,857</p>' in body  # falls back to every connection
    assert "Foreign" not in body


def test_empty(viewer_client, team):
    body = viewer_client.get(_url(team)).content.decode()
    assert "No runs in the last 30 days." in body
    assert 'class="bar-group"' not in body


def _queries(client, url) -> int:
    with CaptureQueriesContext(db) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_query_count_does_not_grow_with_runs(viewer_client, team, production, member, owner):
    assistants = [make_assistant(team, production, name=f"A{n}") for n in range(3)]
    for n, assistant in enumerate(assistants):
        make_run(assistant, started_by=member, total_tokens=n + 1, created_at=_ago(n))
    _queries(viewer_client, _url(team))  # the first visit also stores the team in the session
    few = _queries(viewer_client, _url(team))
    more = [make_assistant(team, production, name=f"B{n}") for n in range(20)]
    for n in range(60):
        make_run(
            more[n % 20],
            started_by=owner if n % 2 else member,
            total_tokens=n,
            created_at=_ago(n % 29),
        )
    assert _queries(viewer_client, _url(team)) == few


def test_nav_has_usage(viewer_client, team):
    body = viewer_client.get(_url(team)).content.decode()
    assert f'<a href="{_url(team)}" aria-current="page">Usage</a>' in body


def test_refusals(users, team):
    check_refusals(users, _url(team), min_role="viewer")
    assert client_get_unknown_team(users) == 404


def client_get_unknown_team(users) -> int:
    from tests.conftest import client_for

    url = reverse("assistants:usage", args=[uuid.uuid4()])
    return client_for(users["owner"]).get(url).status_code


def test_a_renamed_assistant_is_one_row_under_its_current_name(team, production, member):
    tutor = make_assistant(team, production, name="Math Tutor")
    make_run(tutor, started_by=member, total_tokens=10)
    tutor.name = "Algebra Tutor"
    tutor.save(update_fields=["name"])
    make_run(tutor, started_by=member, total_tokens=5)

    usage = usage_summary(team=team)

    rows = [(row.label, row.runs, row.tokens, row.key) for row in usage.per_assistant]
    assert rows == [("Algebra Tutor", 2, 15, tutor.pk)]


def test_days_are_days_in_the_current_time_zone(team, production, member):
    # 02:30 UTC on 10 March is still 9 March in Santiago (UTC-3): on SQLite and PostgreSQL.
    tutor = make_assistant(team, production)
    utc = datetime.UTC
    make_run(
        tutor,
        started_by=member,
        total_tokens=7,
        created_at=datetime.datetime(2026, 3, 10, 2, 30, tzinfo=utc),
    )
    make_run(
        tutor,
        started_by=member,
        total_tokens=1,
        created_at=datetime.datetime(2026, 3, 10, 3, 30, tzinfo=utc),
    )

    with timezone.override(zoneinfo.ZoneInfo("America/Santiago")):
        usage = usage_summary(team=team, today=datetime.date(2026, 3, 10))

    days = {day: row.tokens for day, row in usage.per_day if row.runs}
    assert days == {datetime.date(2026, 3, 9): 7, datetime.date(2026, 3, 10): 1}
