"""The navigation in every team page's frame: the links a role may follow, to the team shown,
in both the sidebar and the phone Menu, with the current page marked."""

import re

import pytest
from django.urls import reverse

from accounts.models import Membership, Role
from tests.conftest import client_for

ADMIN_ONLY = ("Spend", "Audit log", "Team settings")


def _menus(client, url: str) -> tuple[str, str]:
    body = client.get(url).content.decode()
    sidebar = body[body.index('class="sidebar-nav"') : body.index('class="nav-drawer"')]
    start = body.index('class="nav-drawer"')
    drawer = body[start : body.index("</details>", start)]
    return sidebar, drawer


def _links(menu: str) -> list[tuple[str, str]]:
    return re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', menu)


@pytest.mark.parametrize(
    ("person", "sees_admin_links"),
    [("owner", True), ("admin_user", True), ("member", False), ("viewer", False)],
)
def test_each_role_sees_its_links_in_both_menus(request, team, person, sees_admin_links):
    user = request.getfixturevalue(person)
    sidebar, drawer = _menus(client_for(user), reverse("gateway:tokens", args=[team.pk]))
    for menu in (sidebar, drawer):
        links = {label: href for href, label in _links(menu)}
        assert links["Overview"] == reverse("dashboard:team_home", args=[team.pk])
        assert links["API tokens"] == reverse("gateway:tokens", args=[team.pk])
        assert links["Members"] == reverse("accounts:members", args=[team.pk])
        assert all((label in links) == sees_admin_links for label in ADMIN_ONLY)
        current = re.findall(r'<a href="[^"]+" aria-current="page">([^<]+)</a>', menu)
        assert current == ["API tokens"]
    assert _links(sidebar) == _links(drawer)


def test_each_team_links_to_itself(owner, team, other_team):
    Membership.objects.create(team=other_team, user=owner, role=Role.VIEWER)
    client = client_for(owner)
    for shown in (team, other_team, team):
        sidebar, _drawer = _menus(client, reverse("dashboard:team_home", args=[shown.pk]))
        hrefs = [href for href, _label in _links(sidebar)]
        assert hrefs and all(f"/{shown.pk}/" in href for href in hrefs)
