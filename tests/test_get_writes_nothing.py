"""A GET writes nothing: every team-scoped page of the permission matrix, fetched by every
role that may see it, runs no INSERT, UPDATE or DELETE on the database.

Pages show what Tablero last knew; asking the provider again and recording its answer (health,
model list, error history, month spend, a run's status) is a POST's job, or background work's.
The world is built so that a page that wrote would have something to write: a connection whose
model list was never cached in Django's cache, one with an admin key whose costs cannot be
fetched, a run still going at the provider and never polled, a model the provider refuses.
"""

import re

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import ROLE_RANK, Role
from assistants.models import RunStatus
from tests.assistants.helpers import make_run
from tests.conftest import client_for
from tests.matrix import Case, World
from tests.test_permission_matrix import BUILDERS, CASES

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
ROLES = [Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER]
GET_CASES = [case for case in CASES if case.method == "get"]


def _writes(queries: list[dict]) -> list[str]:
    return [query["sql"] for query in queries if WRITE.match(query["sql"])]


def _world(team, users) -> World:
    world = World(team=team, users=users)
    for need in sorted({need for case in CASES for need in case.needs}):
        if need not in world.objects:  # a builder may make another's object on its way
            world.objects[need] = BUILDERS[need](world)
    return world


def _urls(world: World) -> list[tuple[Case, str]]:
    urls = [(case, reverse(case.name, kwargs=case.kwargs(world))) for case in GET_CASES]
    # A run still going at the provider, never asked about: its page and its live fragment
    # are where a GET was most tempted to write.
    running = make_run(
        world.objects["assistant"], status=RunStatus.IN_PROGRESS, started_by=world.users["member"]
    )
    for name in ("assistants:run_detail", "assistants:run_status"):
        case = next(case for case in GET_CASES if case.name == name)
        urls.append((case, reverse(name, kwargs={"team_id": world.team.pk, "run_id": running.pk})))
    # A model the provider is asked about live (and refuses: nothing listens there).
    case = next(case for case in GET_CASES if case.name == "connections:model_detail")
    urls.append(
        (
            case,
            reverse(
                "connections:model_detail",
                kwargs={
                    "team_id": world.team.pk,
                    "connection_id": world.objects["connection"].pk,
                    "model_id": "gpt-unknown",
                },
            ),
        )
    )
    return urls


def test_the_crawl_covers_the_pages_that_used_to_write():
    names = {case.name for case in GET_CASES}
    assert {
        "connections:models",
        "connections:model_detail",
        "connections:costs",
        "assistants:run_detail",
        "assistants:run_status",
        "assistants:create",
        "dashboard:team_home",
        "gateway:tokens",
        "gateway:token_create",
        "gateway:token_revoke",
    } <= names


@pytest.mark.parametrize("role", ROLES, ids=str)
def test_get_requests_write_nothing(role: Role, team, users):
    world = _world(team, users)
    urls = _urls(world)
    browser = client_for(world.users[role])
    # The session remembers which team the visitor last looked at (accounts.access): it is
    # written when the visitor switches teams, not on every page. The crawl stays in one team.
    browser.get(reverse("dashboard:team_home", kwargs={"team_id": world.team.pk}))
    seen = 0
    for case, url in urls:
        if ROLE_RANK[role] < ROLE_RANK[case.min_role]:
            continue
        for method in ("get", "head"):
            with CaptureQueriesContext(db_connection) as captured:
                response = getattr(browser, method)(url)
            assert response.status_code < 500, (method, url, response.status_code)
            assert not _writes(captured.captured_queries), (method, url)
            seen += 1
    assert seen >= 20
