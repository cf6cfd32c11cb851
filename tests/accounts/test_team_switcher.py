"""The team switcher in every page's frame: read once, then from the cache, and shown anew as
soon as one of the user's teams or memberships changes (renamed, joined, left, role changed)."""

from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services
from accounts.models import Membership, Role, Team

PAGE = reverse("accounts:password_change_done")  # the frame and little else


def _switcher(client) -> str:
    body = client.get(PAGE).content.decode()
    start = body.index('class="menu team-switcher"')
    return body[start : body.index("</details>", start)]


def test_the_switcher_is_read_once_then_from_the_cache(member_client, member, team):
    member_client.get(PAGE)
    with CaptureQueriesContext(db) as captured:
        assert member_client.get(PAGE).status_code == 200
    assert not [q for q in captured if '"accounts_membership"' in q["sql"]]
    assert team.name in _switcher(member_client)


def test_a_renamed_team_shows_its_new_name(member_client, owner, team):
    assert team.name in _switcher(member_client)
    services.team_rename(team=team, name="Renamed crew", actor=owner)
    assert "Renamed crew" in _switcher(member_client)


def test_joining_leaving_and_a_new_role_show_at_once(member_client, member, owner, team):
    assert "Second crew" not in _switcher(member_client)
    second = services.team_create(name="Second crew", owner=owner)
    joined = Membership.objects.create(team=second, user=member, role=Role.VIEWER)
    switcher = _switcher(member_client)
    assert "Second crew" in switcher and "Viewer" in switcher

    services.member_role_change(
        membership=joined, role=Role.ADMIN, actor=owner, actor_role=Role.OWNER
    )
    assert "Admin" in _switcher(member_client)

    services.member_remove(membership=joined, actor=owner, actor_role=Role.OWNER)
    assert "Second crew" not in _switcher(member_client)


def test_a_deleted_team_leaves_the_switcher(member_client, member, owner, team):
    other = Team.objects.create(name="Short-lived crew")
    Membership.objects.create(team=other, user=member, role=Role.MEMBER)
    assert "Short-lived crew" in _switcher(member_client)
    services.team_delete(team=other, actor=owner)
    assert "Short-lived crew" not in _switcher(member_client)
