"""The whole team home is kept for each reader (dashboard.home_fragments.kept_page): what it
shows of the reader, their teams and their role is theirs and current, messages are shown
once, and the CSRF token in a kept page is the reader's own."""

import re

from django.test import Client
from django.urls import reverse

from accounts import services as account_services
from accounts.models import Membership, Role


def _home(client, team) -> str:
    response = client.get(reverse("dashboard:team_home", args=[team.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_each_reader_gets_a_page_with_their_own_name_and_email(team, admin_user, member):
    admin_user.name, member.name = "Ada Admin", "Max Member"
    admin_user.save()
    member.save()
    admin_client, member_client = Client(), Client()
    admin_client.force_login(admin_user)
    member_client.force_login(member)

    for _ in range(2):  # computed, then kept
        admin_page, member_page = _home(admin_client, team), _home(member_client, team)
        assert "Ada Admin" in admin_page and "admin@example.com" in admin_page
        assert "Max Member" not in admin_page and "member@example.com" not in admin_page
        assert "Max Member" in member_page and "member@example.com" in member_page
        assert "admin@example.com" not in member_page
        assert "csrf-token-of-the-reader" not in admin_page + member_page


def test_the_token_in_a_kept_page_is_the_readers_own(team, owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    _home(client, team)
    page = _home(client, team)  # kept
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    response = client.post(
        reverse("dashboard:checklist_dismiss", args=[team.pk]), {"csrfmiddlewaretoken": token}
    )

    assert response.status_code == 302


def test_a_message_is_shown_once_on_the_next_page_then_gone(owner_client, team):
    _home(owner_client, team)
    response = owner_client.post(
        reverse("dashboard:checklist_dismiss", args=[team.pk]), follow=True
    )
    hidden = "The getting-started checklist is hidden for the whole team."
    assert hidden in response.content.decode()
    assert "csrf-token-of-the-reader" not in response.content.decode()

    assert hidden not in _home(owner_client, team)


def test_a_team_joined_and_a_team_renamed_show_in_the_switcher_at_once(
    member_client, team, member, owner
):
    assert "Zeta Labs" not in _home(member_client, team)
    other = account_services.team_create(name="Zeta Labs", owner=member)
    assert "Zeta Labs" in _home(member_client, team)

    account_services.team_rename(team=other, name="Omega Labs", actor=member)
    page = _home(member_client, team)
    assert "Omega Labs" in page and "Zeta Labs" not in page


def test_a_new_role_and_a_new_name_show_at_once(member_client, team, member, owner):
    assert "Your role in this team: Member." in _home(member_client, team)
    account_services.member_role_change(
        membership=Membership.objects.get(team=team, user=member),
        role=Role.VIEWER,
        actor=owner,
        actor_role=Role.OWNER,
    )
    assert "Your role in this team: Viewer." in _home(member_client, team)

    member.name = "Renamed Reader"
    member.save()
    assert "Renamed Reader" in _home(member_client, team)
