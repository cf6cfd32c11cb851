import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts import services
from accounts.access import SESSION_TEAM_KEY
from accounts.models import AuditEvent, Membership, Role


def _remove(client, team, user):
    membership = Membership.objects.get(team=team, user=user)
    return client.post(reverse("accounts:member_remove", args=[team.pk, membership.pk]))


def _is_member(team, user) -> bool:
    return Membership.objects.filter(team=team, user=user).exists()


def test_admin_removes_a_member(admin_client_, admin_user, users, team):
    response = _remove(admin_client_, team, users["member"])
    assert response["Location"] == reverse("accounts:members", args=[team.pk])
    assert not _is_member(team, users["member"])
    body = admin_client_.get(response["Location"]).content.decode()
    assert "“member@example.com” was removed from the team." in body
    event = AuditEvent.objects.get(action="member.remove")
    assert event.actor == admin_user
    assert event.data == {"email": "member@example.com", "role": "member", "left": False}


def test_admin_cannot_remove_an_owner(admin_client_, users, team):
    assert _remove(admin_client_, team, users["owner"]).status_code == 403
    assert _is_member(team, users["owner"])


def test_member_cannot_remove_others(member_client, users, team):
    assert _remove(member_client, team, users["viewer"]).status_code == 403
    assert _is_member(team, users["viewer"])


def test_anyone_can_leave(viewer_client, users, team):
    viewer_client.get(reverse("dashboard:team_home", args=[team.pk]))
    response = _remove(viewer_client, team, users["viewer"])
    assert response["Location"] == reverse("home")
    assert not _is_member(team, users["viewer"])
    assert SESSION_TEAM_KEY not in viewer_client.session
    event = AuditEvent.objects.get(action="member.remove")
    assert event.data["left"] is True
    # Without a team the home page offers to create one.
    assert viewer_client.get(response["Location"])["Location"] == reverse("accounts:team_create")


def test_last_owner_cannot_leave(owner_client, users, team):
    response = _remove(owner_client, team, users["owner"])
    assert _is_member(team, users["owner"])
    body = owner_client.get(response["Location"]).content.decode()
    assert "A team needs at least one owner." in body


def test_owner_removes_another_owner(owner_client, users, team):
    Membership.objects.filter(team=team, user=users["admin"]).update(role=Role.OWNER)
    _remove(owner_client, team, users["admin"])
    assert not _is_member(team, users["admin"])


def test_membership_of_another_team_is_404(owner_client, users, team, other_team):
    membership = Membership.objects.get(team=other_team, user=users["outsider"])
    response = owner_client.post(reverse("accounts:member_remove", args=[team.pk, membership.pk]))
    assert response.status_code == 404
    assert _is_member(other_team, users["outsider"])


def test_someone_removed_meanwhile_is_explained(owner, member, team):
    # Two admins (or a double click) remove the same person: the second request found the
    # membership, then the first one deleted it.
    membership = Membership.objects.get(team=team, user=member)
    Membership.objects.filter(pk=membership.pk).delete()
    with pytest.raises(ValidationError, match="no longer a member of the team"):
        services.member_remove(membership=membership, actor=owner, actor_role=Role.OWNER)


def _confirm_url(team, user) -> str:
    membership = Membership.objects.get(team=team, user=user)
    return reverse("accounts:member_remove", args=[team.pk, membership.pk])


def test_removing_asks_first_and_get_changes_nothing(admin_client_, users, team):
    url = _confirm_url(team, users["member"])
    body = admin_client_.get(url).content.decode()

    assert "<h1>Remove member</h1>" in body
    assert "(member@example.com) leaves the team “" in body
    assert f'action="{url}"' in body
    assert _is_member(team, users["member"])
    # The members page links to this page; it has no form that removes at once.
    members = admin_client_.get(reverse("accounts:members", args=[team.pk])).content.decode()
    assert f'href="{url}"' in members
    assert f'action="{url}"' not in members


def test_leaving_asks_first(viewer_client, users, team):
    body = viewer_client.get(_confirm_url(team, users["viewer"])).content.decode()

    assert "<h1>Leave team</h1>" in body
    assert "You leave the team “" in body
    assert _is_member(team, users["viewer"])


def test_the_question_is_refused_to_whoever_may_not_remove(member_client, users, team):
    assert member_client.get(_confirm_url(team, users["viewer"])).status_code == 403
