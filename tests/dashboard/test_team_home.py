"""The team's home page (dashboard:team_home): health, spend, usage and what went wrong."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags

from accounts.access import SESSION_TEAM_KEY
from assistants.models import RunStatus
from connections import costs, services
from connections.charts import format_amount
from connections.models import Connection, ConnectionErrorEvent, ErrorOperation, Health
from dashboard import home_cache
from fakeprovider import ADMIN_KEY_OK
from tests.assistants.helpers import make_assistant, make_run
from tests.connections.helpers import make_connection
from tests.dashboard.conftest import section

RATE_LIMIT = {
    "limit_requests": 5000,
    "remaining_requests": 4990,
    "reset_requests": "12ms",
    "limit_tokens": 800000,
    "remaining_tokens": 40000,
    "reset_tokens": "6m0s",
    "captured_at": "2026-08-01T10:00:00+00:00",
}


def _url(team) -> str:
    return reverse("dashboard:team_home", args=[team.pk])


def test_shows_team_and_role(viewer_client, team):
    response = viewer_client.get(_url(team))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Acme" in body
    assert "Your role in this team: Viewer." in body
    assert viewer_client.session[SESSION_TEAM_KEY] == str(team.pk)


def test_switcher_lists_teams_and_offers_a_new_one(viewer_client, team):
    body = viewer_client.get(_url(team)).content.decode()
    assert reverse("accounts:team_create") in body
    assert "New team" in body


def test_empty_team_invites_admins_to_add_a_connection(admin_client_, viewer_client, team):
    body = admin_client_.get(_url(team)).content.decode()
    assert "No connections yet." in body
    assert reverse("connections:create", args=[team.pk]) in body
    assert "No run is in progress." in body and "Nothing went wrong lately." in body
    assert (
        reverse("connections:create", args=[team.pk])
        not in viewer_client.get(_url(team)).content.decode()
    )


def test_every_connection_at_a_glance_problems_first(viewer_client, team):
    now = timezone.now()
    make_connection(
        team,
        name="Alpha",
        health=Health.OK,
        last_checked_at=now,
        rate_limit=RATE_LIMIT,
        key="sk-test-ok-0000000000001111",
    )
    make_connection(
        team,
        name="Broke",
        health=Health.NO_QUOTA,
        last_checked_at=now,
        last_error_kind="quota_exhausted",
        rate_limit={**RATE_LIMIT, "limit_requests": 7777},
    )
    make_connection(team, name="Calm", health=Health.UNCHECKED)
    body = viewer_client.get(_url(team)).content.decode()
    table = section(body, "connections")
    assert table.index("Broke") < table.index("Calm") < table.index("Alpha")
    assert "sk-…1111" in table
    assert "badge-danger" in table and "No quota left" in table
    assert "You exceeded your current quota (429)" in table
    # Headroom from the last answer's headers, as a percentage bar with grouped figures; the
    # reset time of figures this old has passed.
    assert "4,990 of 5,000 left" in table and 'value="100"' in table
    assert "40,000 of 800,000 left" in table and 'value="5"' in table and "5%" in table
    assert "has reset since" in table and "12ms" not in table and "6m0s" not in table
    # No headroom for a key that does not work, nor for one not checked yet.
    assert "7,777" not in table and "Not shown: the key does not work." in table
    assert "Not checked yet" in table
    assert "Never" in table
    summary = section(body, "summary")
    assert "1 with a problem" in summary and "1 not checked yet" in summary
    assert '<p class="stat">1 <span class="muted small">/ 3</span></p>' in summary


def test_one_banner_says_what_to_do(admin_client_, viewer_client, team):
    production = make_connection(team, name="Production", health=Health.NO_QUOTA)
    revoked = make_connection(team, name="Old key", health=Health.INVALID_KEY)
    make_connection(team, name="Fine", health=Health.OK)
    body = admin_client_.get(_url(team)).content.decode()
    assert body.count('id="needs-attention"') == 1
    assert body.count('class="callout ') == 1  # one banner, not a callout per connection
    steps = section(body, "needs-attention")
    assert "No credit left on Production: add credit, then test again." in steps
    assert "The key of Old key was refused: replace the key, then test again." in steps
    assert "Fine" not in steps
    assert reverse("connections:detail", args=[team.pk, production.pk]) in steps
    assert reverse("connections:replace_key", args=[team.pk, revoked.pk]) in steps
    assert reverse("connections:replace_key", args=[team.pk, production.pk]) not in steps
    # "Test again" is in each row of the table, for admins.
    table = section(body, "connections")
    assert reverse("dashboard:connection_test", args=[team.pk, production.pk]) in table
    assert table.count("Test again") == 3

    viewer_body = viewer_client.get(_url(team)).content.decode()
    assert "No credit left on Production" in section(viewer_body, "needs-attention")
    assert "Test again" not in viewer_body and "Replace key" not in viewer_body


def test_no_banner_when_all_is_well(viewer_client, team):
    make_connection(team, name="Fine", health=Health.OK)
    assert 'id="needs-attention"' not in viewer_client.get(_url(team)).content.decode()


def test_runs_in_progress_with_links_and_a_see_all(viewer_client, team, member):
    connection = make_connection(team)
    assistant = make_assistant(team, connection, name="Math Tutor")
    queued = make_run(assistant, status=RunStatus.QUEUED, started_by=member)
    make_run(assistant, status=RunStatus.IN_PROGRESS, started_by=member)
    done = make_run(assistant, status=RunStatus.COMPLETED, started_by=member)
    runs = section(viewer_client.get(_url(team)).content.decode(), "active-runs")
    assert reverse("assistants:run_detail", args=[team.pk, queued.pk]) in runs
    assert reverse("assistants:run_detail", args=[team.pk, done.pk]) not in runs
    assert "Queued" in runs and "In progress" in runs and "member@example.com" in runs
    assert "more run" not in runs

    for _n in range(20):
        make_run(assistant, status=RunStatus.IN_PROGRESS, started_by=member)
    runs = section(viewer_client.get(_url(team)).content.decode(), "active-runs")
    assert runs.count(reverse("assistants:runs", args=[team.pk]) + "?status=in_progress") == 1
    assert "2 more runs in progress." in runs
    assert runs.count("<tr>") == 21  # the header and 20 runs


def test_a_run_tablero_stopped_checking_is_not_in_progress(viewer_client, team, member):
    connection = make_connection(team)
    assistant = make_assistant(team, connection, name="Math Tutor")
    stalled = make_run(
        assistant,
        status=RunStatus.IN_PROGRESS,
        started_by=member,
        created_at=timezone.now() - timedelta(hours=30),
    )
    body = viewer_client.get(_url(team)).content.decode()
    runs = section(body, "active-runs")
    assert reverse("assistants:run_detail", args=[team.pk, stalled.pk]) not in runs
    assert "No run is in progress." in body


def test_latest_errors_with_explanations(admin_client_, viewer_client, team, member):
    connection = make_connection(team, name="Production")
    ConnectionErrorEvent.objects.create(
        connection=connection,
        kind="quota_exhausted",
        code="insufficient_quota",
        status=429,
        operation="connection.test",
        message="You exceeded your current quota",
    )
    assistant = make_assistant(team, connection, name="Math Tutor")
    failed = make_run(
        assistant,
        status=RunStatus.FAILED,
        started_by=member,
        last_error_code="server_error",
        last_error_message="Something broke",
        created_at=timezone.now() - timedelta(hours=1),
        completed_at=timezone.now() - timedelta(minutes=59),
    )
    errors = section(admin_client_.get(_url(team)).content.decode(), "latest-errors")
    assert "You exceeded your current quota (429)" in errors
    assert "Add credit or raise the spending limit" in errors
    assert "insufficient_quota" in errors  # provider details, for admins
    assert reverse("assistants:run_detail", args=[team.pk, failed.pk]) in errors
    assert "The provider had an error (5xx)" in errors
    assert errors.index("Testing the connection") < errors.index("Run of Math Tutor")  # newest 1st

    viewer_errors = section(viewer_client.get(_url(team)).content.decode(), "latest-errors")
    assert "You exceeded your current quota (429)" not in viewer_errors  # admins only
    assert "Run of Math Tutor" in viewer_errors


def test_latest_errors_are_limited_to_ten(admin_client_, team):
    connection = make_connection(team)
    operations = [operation.value for operation in ErrorOperation][:12]
    for operation in operations:
        ConnectionErrorEvent.objects.create(
            connection=connection, kind="timeout", operation=operation
        )
    errors = section(admin_client_.get(_url(team)).content.decode(), "latest-errors")
    assert errors.count("<details") == 10


def test_stats_runs_today_and_tokens_this_month(viewer_client, team, member, pinned_clock):
    connection = make_connection(team)
    assistant = make_assistant(team, connection)
    now = timezone.now()
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    make_run(assistant, started_by=member, total_tokens=100, created_at=now)
    make_run(assistant, started_by=member, input_tokens=20, output_tokens=5, created_at=now)
    make_run(
        assistant, started_by=member, total_tokens=5000, created_at=month_start - timedelta(days=1)
    )
    summary = section(viewer_client.get(_url(team)).content.decode(), "summary")
    assert "Runs today" in summary and '<p class="stat">2</p>' in summary
    assert '<p class="stat">125</p>' in summary


def test_spend_this_month_is_what_the_costs_refresh_last_fetched(
    admin_client_, viewer_client, team, owner, fake_upstream, pinned_clock
):
    known = make_connection(team, name="Known", base_url=fake_upstream.base_url)
    known.set_admin_key(ADMIN_KEY_OK)
    known.save()
    unfetched = make_connection(team, name="Unfetched", base_url=fake_upstream.base_url)
    unfetched.set_admin_key(ADMIN_KEY_OK)
    unfetched.save()
    keyless = make_connection(team, name="Keyless", base_url=fake_upstream.base_url)
    report = costs.costs_refresh(connection=known, group="line_item").value
    assert report is not None
    fake_upstream.reset()
    cache.clear()  # another process, or a restart: the figure is kept on the connection

    body = admin_client_.get(_url(team)).content.decode()
    assert fake_upstream.requests == []  # the home page never asks the provider
    month = report.month_totals(costs.utc_today())
    expected = format_amount(month["usd"], "usd")
    assert f'<p class="stat">{expected}</p>' in section(body, "summary")
    table = section(body, "connections")
    # Spend shown once, where it is known: no advice repeated row after row.
    assert table.count(expected) == 1
    assert reverse("connections:costs", args=[team.pk, known.pk]) in table
    assert reverse("connections:costs", args=[team.pk, unfetched.pk]) not in table
    assert reverse("connections:admin_key", args=[team.pk, keyless.pk]) not in table

    viewer_body = viewer_client.get(_url(team)).content.decode()
    assert "Spend this month" not in viewer_body and expected not in viewer_body


def test_spend_fetched_last_month_or_with_a_replaced_admin_key_is_not_shown(
    admin_client_, team, owner, fake_upstream, pinned_clock
):
    old_month = make_connection(team, name="Old month", base_url=fake_upstream.base_url)
    old_month.set_admin_key(ADMIN_KEY_OK)
    old_month.save()
    replaced = make_connection(team, name="Replaced", base_url=fake_upstream.base_url)
    replaced.set_admin_key(ADMIN_KEY_OK)
    replaced.save()
    for connection in (old_month, replaced):
        assert costs.costs_refresh(connection=connection, group="line_item").ok
    last_month = costs.utc_today().replace(day=1) - timedelta(days=1)
    Connection.objects.filter(pk=old_month.pk).update(
        month_spend={**old_month.month_spend, "month": f"{last_month:%Y-%m}"}
    )
    services.connection_set_admin_key(
        connection=replaced, user=owner, admin_key="sk-admin-test-00000000000000new1"
    )

    body = admin_client_.get(_url(team)).content.decode()
    assert "Spend this month" not in section(body, "connections")
    summary = section(body, "summary")
    assert "Not known" in summary and "Open a connection's costs to fetch them." in summary


def test_spend_not_known_without_admin_keys(admin_client_, team):
    make_connection(team)
    summary = section(admin_client_.get(_url(team)).content.decode(), "summary")
    assert "Not known" in summary
    assert "Add an admin key to a connection to see its costs." in summary


def test_long_connection_lists_are_cut_with_a_link(viewer_client, team):
    for number in range(25):
        make_connection(team, name=f"Conn {number:02d}", health=Health.OK)
    body = viewer_client.get(_url(team)).content.decode()
    table = section(body, "connections")
    assert "Showing the 20 that need attention first, of 25." in table
    assert table.count('id="connection-row-') == 20
    assert reverse("connections:list", args=[team.pk]) in table


def _world(team, member, size: int) -> None:
    """`size` connections (half failing, with rate limits and admin keys), assistants, runs
    in progress, failed runs and provider errors."""
    for number in range(size):
        connection = make_connection(
            team,
            name=f"Conn {size}-{number}",
            health=Health.NO_QUOTA if number % 2 else Health.OK,
            rate_limit=RATE_LIMIT,
        )
        connection.set_admin_key(ADMIN_KEY_OK)
        connection.save()
        assistant = make_assistant(team, connection, name=f"Assistant {size}-{number}")
        make_run(assistant, status=RunStatus.IN_PROGRESS, started_by=member, total_tokens=3)
        make_run(
            assistant, status=RunStatus.FAILED, started_by=member, last_error_code="server_error"
        )
        ConnectionErrorEvent.objects.create(
            connection=connection,
            kind="quota_exhausted",
            operation="connection.test",
            user=member,
        )


def _count(client, team) -> int:
    with CaptureQueriesContext(db) as queries:
        assert client.get(_url(team)).status_code == 200
    return len(queries)


@pytest.mark.parametrize("role_client", ["admin_client_", "viewer_client"])
def test_query_count_does_not_grow_with_rows(request, role_client, team, member):
    client = request.getfixturevalue(role_client)
    _world(team, member, 3)
    _count(client, team)  # the first visit also stores the team in the session
    cached_few = _count(client, team)
    # Only the page's parts: the team switcher's cached memberships stay, as _world keeps them.
    home_cache.invalidate(team.pk, *home_cache.Part)
    computed_few = _count(client, team)
    _world(team, member, 60)
    computed_many = _count(client, team)  # the new rows dropped the cached parts
    cached_many = _count(client, team)
    assert computed_many == computed_few
    assert cached_many == cached_few < computed_few


def test_query_budget(admin_client_, team, member, django_assert_max_num_queries):
    _world(team, member, 10)
    admin_client_.get(_url(team))
    cache.clear()
    with django_assert_max_num_queries(16):
        admin_client_.get(_url(team))
    # Cached: the session, the reader's membership and the checklist; no part of the page.
    with django_assert_max_num_queries(6):
        admin_client_.get(_url(team))


def test_takes_get_and_head_only(owner_client, team):
    url = _url(team)
    assert owner_client.get(url).status_code == 200
    assert owner_client.head(url).status_code == 200
    for method in ("post", "put", "patch", "delete"):
        assert getattr(owner_client, method)(url).status_code == 405, method


def test_a_reader_is_told_whom_to_ask(viewer_client, member_client, team, users):
    make_connection(team, name="Broken", health=Health.INVALID_KEY, last_error_kind="invalid_key")
    make_connection(team, name="Busy", health=Health.RATE_LIMITED, last_error_kind="rate_limited")
    for client in (viewer_client, member_client):
        steps = strip_tags(section(client.get(_url(team)).content.decode(), "needs-attention"))
        assert "The key of Broken was refused." in steps
        assert (
            "Only an admin of the team can fix this. Ask an admin: admin@example.com, "
            "owner@example.com." in steps
        )
        assert "replace the key" not in steps
        assert "Busy hit its rate limit: wait a moment, Tablero checks it again by itself." in (
            steps
        )
        assert steps.count("Only an admin") == 1


def test_an_admin_is_told_what_to_do(admin_client_, team, users):
    make_connection(team, name="Broken", health=Health.INVALID_KEY, last_error_kind="invalid_key")
    steps = section(admin_client_.get(_url(team)).content.decode(), "needs-attention")
    assert "The key of Broken was refused: replace the key, then test again." in steps
    assert "Only an admin" not in steps


def _gateway_today(client, team) -> str:
    page = client.get(reverse("dashboard:team_home", args=[team.pk])).content.decode()
    return page.split('id="gateway-today"')[1].split("</div>")[0]


def test_gateway_calls_today_the_team_for_admins_their_own_for_members(
    admin_client_, member_client, team, owner, member, pinned_clock
):
    from tests.gateway.tokenhelpers import make_token, token_connection
    from tests.gateway.usage_helpers import make_call

    connection = token_connection(team)
    mine, _ = make_token(team, member, connection=connection)
    theirs, _ = make_token(team, owner, connection=connection)
    make_call(mine)
    make_call(mine, status=429)
    make_call(theirs)
    make_call(theirs, when=timezone.now() - timedelta(days=1))  # yesterday: not counted

    team_wide = _gateway_today(admin_client_, team)
    assert "API calls today" in team_wide
    assert '<p class="stat">3</p>' in team_wide
    assert "1 failed" in team_wide
    own = _gateway_today(member_client, team)
    assert "Your API calls today" in own
    assert '<p class="stat">2</p>' in own
