"""The gateway's section on a connection's page (gateway.panels, through lib.panels)."""

from datetime import timedelta

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.gateway.tokenhelpers import make_token, token_connection
from tests.gateway.usage_helpers import make_call

pytestmark = pytest.mark.django_db


def _traffic(client, connection) -> str:
    url = reverse("connections:detail", args=[connection.team_id, connection.pk])
    page = client.get(url).content.decode()
    return page.split('id="gateway-traffic"')[1].split("</section>")[0]


@pytest.fixture
def calls(team, owner, member, pinned_clock):
    connection = token_connection(team)
    other = token_connection(team, name="Elsewhere")
    mine, mine_value = make_token(team, member, connection=connection, name="Notebook")
    theirs, theirs_value = make_token(team, owner, connection=connection, name="Nightly")
    make_call(mine)
    make_call(mine, status=403, refused=True)
    make_call(theirs, model="gpt-4o")
    make_call(theirs, when=timezone.now() - timedelta(days=3))
    elsewhere, _ = make_token(team, owner, connection=other, name="Other")
    make_call(elsewhere)  # another connection's: never counted here
    return connection, (mine_value, theirs_value)


def test_an_admin_sees_every_call_through_the_connection(admin_client_, calls):
    connection, values = calls
    section = _traffic(admin_client_, connection)
    assert "Gateway traffic" in section
    today, month = section.split('<p class="stat">')[1:3]
    assert today.startswith("3</p>") and "1 failed" in today
    assert month.startswith("4</p>")
    assert section.count("<tr>") == 1 + 4  # the head, and the latest calls
    assert "Notebook" in section and "Nightly" in section and "Other" not in section
    assert "403, refused by Tablero" in section
    for value in values:
        assert value not in section


def test_a_member_sees_their_own_calls_only(member_client, calls):
    connection, _ = calls
    section = _traffic(member_client, connection)
    assert "Your gateway traffic" in section
    today = section.split('<p class="stat">')[1]
    assert today.startswith("2</p>")
    assert "Notebook" in section and "Nightly" not in section


def test_a_viewer_with_no_calls_is_told_so(viewer_client, calls):
    connection, _ = calls
    assert "No calls through the gateway yet." in _traffic(viewer_client, connection)


def test_the_queries_do_not_grow_with_the_calls(
    admin_client_, calls, team, owner, django_assert_max_num_queries
):
    connection, _ = calls
    url = reverse("connections:detail", args=[team.pk, connection.pk])
    admin_client_.get(url)
    token, _value = make_token(team, owner, connection=connection, name="Busy script")
    for _ in range(30):
        make_call(token)
    with CaptureQueriesContext(db) as few:
        admin_client_.get(url)
    for _ in range(30):
        make_call(token, status=500)
    with django_assert_max_num_queries(len(few.captured_queries)):
        admin_client_.get(url)
