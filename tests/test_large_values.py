"""The connection's cached model list (its one large value) is read only by the pages that
show models; the connections list counts errors without grouping by the connection's row."""

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.assistants.helpers import make_assistant, make_run
from tests.connections.helpers import make_connection


def _sql(client, url) -> list[str]:
    client.get(url)  # the first visit stores the team in the session
    with CaptureQueriesContext(db) as captured:
        assert client.get(url).status_code == 200
    return [query["sql"] for query in captured]


@pytest.fixture
def world(team, admin_user):
    connection = make_connection(team, models_cache=[{"id": "gpt-4o"}] * 50)
    assistant = make_assistant(team, connection)
    run = make_run(assistant, started_by=admin_user)
    return connection, assistant, run


@pytest.mark.parametrize(
    "page",
    [
        "connections:list",
        "connections:detail",
        "assistants:list",
        "assistants:detail",
        "assistants:runs",
        "assistants:run_detail",
        "assistants:usage",
        "dashboard:team_home",
        "admin:connections_connectionerrorevent_changelist",
        "admin:assistants_assistant_changelist",
        "admin:connections_connection_changelist",
    ],
)
def test_pages_without_models_do_not_read_them(admin_client_, admin_user, team, world, page):
    connection, assistant, run = world
    args = {
        "connections:detail": [team.pk, connection.pk],
        "assistants:detail": [team.pk, assistant.pk],
        "assistants:run_detail": [team.pk, run.pk],
    }.get(page, [] if page.startswith("admin:") else [team.pk])
    if page.startswith("admin:"):
        admin_user.is_staff = admin_user.is_superuser = True
        admin_user.save(update_fields=["is_staff", "is_superuser"])
    queries = _sql(admin_client_, reverse(page, args=args))
    assert not [sql for sql in queries if '."models_cache"' in sql]


def test_the_models_page_reads_them(admin_client_, team, world):
    connection, _assistant, _run = world
    queries = _sql(admin_client_, reverse("connections:models", args=[team.pk, connection.pk]))
    assert [sql for sql in queries if '."models_cache"' in sql]


def test_the_error_count_groups_nothing(admin_client_, team, world):
    queries = _sql(admin_client_, reverse("connections:list", args=[team.pk]))
    listing = [sql for sql in queries if "error_count" in sql]
    assert listing and "GROUP BY" not in listing[0].split("(SELECT")[0]
