"""Walk every team-scoped URL for anonymous, outsider, viewer, member, admin and owner, and
every HTTP method: a URL answers the methods its cases use (a case with "get" means GET and
HEAD) and 405 to any other. A team-scoped URL without a case fails the walk."""

import importlib
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import ROLE_RANK, Role
from accounts.tokens import invitation_token
from tests.accounts.helpers import make_invitation
from tests.conftest import client_for
from tests.matrix import Case, World

APPS = ["accounts", "connections", "assistants", "dashboard", "gateway"]


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
METHODS = ("get", "head", "post", "put", "patch", "delete")


def _allowed(name: str) -> set[str]:
    """The methods a URL answers: those of its cases, HEAD wherever GET is."""
    methods = {case.method for case in CASES if case.name == name}
    return methods | {"head"} if "get" in methods else methods


def _one_case_per_url() -> list[Case]:
    seen: dict[str, Case] = {}
    for case in CASES:
        seen.setdefault(case.name, case)
    return list(seen.values())


def _team_scoped_url_names(resolver: URLResolver | None = None, prefix: str = "") -> set[str]:
    """The names of every URL whose route takes a team (`team_id`)."""
    resolver = resolver or get_resolver()
    found: set[str] = set()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            namespace = f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            found |= _team_scoped_url_names(entry, namespace)
        elif isinstance(entry, URLPattern) and entry.name and "team_id" in str(entry.pattern):
            found.add(prefix + entry.name)
    return found


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


def test_every_team_scoped_url_has_a_case():
    names = _team_scoped_url_names()
    assert len(names) >= 30
    missing = names - {case.name for case in CASES}
    assert not missing, f"add these URLs to tests/<app>/matrix.py: {sorted(missing)}"


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


@pytest.mark.parametrize("case", _one_case_per_url(), ids=lambda case: case.name)
def test_other_methods_are_405(case: Case, world: World):
    url, _data = _prepare(case, world)
    owner = client_for(world.users["owner"])
    allowed = _allowed(case.name)
    for method in METHODS:
        if method not in allowed:
            assert getattr(owner, method)(url).status_code == 405, method
    if "head" in allowed:
        head = owner.head(url)
        assert head.status_code == owner.get(url).status_code
        body = b"".join(head.streaming_content) if head.streaming else head.content
        assert body == b""


def test_pages_outside_teams_take_their_methods_only(client, owner_client, team):
    invitation = make_invitation(team)
    form_pages = [
        (owner_client, reverse("accounts:team_create")),
        (client, reverse("accounts:setup")),
        (client, reverse("accounts:invitation_accept", args=[invitation_token(invitation.pk)])),
    ]
    for browser, url in form_pages:
        for method in ("put", "patch", "delete"):
            assert getattr(browser, method)(url).status_code == 405, (url, method)
