"""Walk every team-scoped URL for anonymous, outsider, viewer, member, admin and owner."""

import importlib
import uuid

import pytest
from django.urls import reverse

from accounts.models import ROLE_RANK, Role
from tests.conftest import client_for
from tests.matrix import Case, World

APPS = ["accounts", "connections", "assistants"]


def _collect() -> tuple[list[Case], dict]:
    cases: list[Case] = []
    builders: dict = {}
    for app in APPS:
        try:
            module = importlib.import_module(f"tests.{app}.matrix")
        except ModuleNotFoundError:
            continue
        cases.extend(module.CASES)
        builders.update(getattr(module, "BUILDERS", {}))
    return cases, builders


CASES, BUILDERS = _collect()
VISITORS = ["anonymous", "outsider", "viewer", "member", "admin", "owner"]


@pytest.fixture
def world(team, users) -> World:
    return World(team=team, users=users)


def _prepare(case: Case, world: World) -> tuple[str, dict]:
    for need in case.needs:
        if need not in world.objects:
            world.objects[need] = BUILDERS[need](world)
    url = reverse(case.name, kwargs=case.kwargs(world))
    data = case.data(world) if case.data else {}
    return url, data


def _request(client, case: Case, url: str, data: dict):
    return getattr(client, case.method)(url, data=data)


def test_matrix_is_not_empty():
    assert len(CASES) >= 5


@pytest.mark.parametrize("visitor", VISITORS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_access(case: Case, visitor: str, world: World):
    url, data = _prepare(case, world)
    user = None if visitor == "anonymous" else world.users[visitor]
    response = _request(client_for(user), case, url, data)

    if visitor == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    elif visitor == "outsider":
        assert response.status_code == 404
    elif ROLE_RANK[Role(visitor)] < ROLE_RANK[case.min_role]:
        assert response.status_code == 403
    else:
        assert response.status_code not in (403, 404, 405, 500), response.status_code


@pytest.mark.parametrize("case", [c for c in CASES if c.bad_uuid], ids=str)
def test_unknown_uuid_is_404(case: Case, world: World):
    _url, data = _prepare(case, world)
    kwargs = case.kwargs(world)
    kwargs[case.bad_uuid] = uuid.uuid4()
    response = _request(
        client_for(world.users["owner"]), case, reverse(case.name, kwargs=kwargs), data
    )
    assert response.status_code == 404
