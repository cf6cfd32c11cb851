import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts import services
from accounts.models import AuditEvent, Membership, Role


def _change(client, team, user, role):
    membership = Membership.objects.get(team=team, user=user)
    return client.post(
        reverse("accounts:member_role", args=[team.pk, membership.pk]), {"role": role}
    )


def _role(team, user) -> str:
    return Membership.objects.get(team=team, user=user).role


def test_admin_changes_a_role(admin_client_, admin_user, users, team):
    response = _change(admin_client_, team, users["viewer"], "member")
    assert response["Location"] == reverse("accounts:members", args=[team.pk])
    assert _role(team, users["viewer"]) == Role.MEMBER
    body = admin_client_.get(response["Location"]).content.decode()
    assert "“viewer@example.com” is now Member." in body
    event = AuditEvent.objects.get(action="member.role_change")
    assert event.actor == admin_user
    assert event.data == {"email": "viewer@example.com", "from": "viewer", "to": "member"}


def test_admin_cannot_grant_owner(admin_client_, users, team):
    assert _change(admin_client_, team, users["member"], "owner").status_code == 403
    assert _role(team, users["member"]) == Role.MEMBER


def test_admin_cannot_change_an_owner(admin_client_, users, team):
    assert _change(admin_client_, team, users["owner"], "viewer").status_code == 403
    assert _role(team, users["owner"]) == Role.OWNER


def test_owner_transfers_ownership(owner_client, users, team):
    _change(owner_client, team, users["admin"], "owner")
    assert _role(team, users["admin"]) == Role.OWNER
    _change(owner_client, team, users["owner"], "admin")
    assert _role(team, users["owner"]) == Role.ADMIN


def test_last_owner_cannot_be_demoted(owner_client, users, team):
    response = _change(owner_client, team, users["owner"], "admin")
    assert _role(team, users["owner"]) == Role.OWNER
    body = owner_client.get(response["Location"]).content.decode()
    assert "A team needs at least one owner." in body
    assert not AuditEvent.objects.filter(action="member.role_change").exists()


def test_unknown_role(admin_client_, users, team):
    response = _change(admin_client_, team, users["viewer"], "emperor")
    assert (
        "Choose one of the offered roles."
        in admin_client_.get(response["Location"]).content.decode()
    )
    assert _role(team, users["viewer"]) == Role.VIEWER


def test_membership_of_another_team_is_404(owner_client, users, team, other_team):
    membership = Membership.objects.get(team=other_team, user=users["outsider"])
    response = owner_client.post(
        reverse("accounts:member_role", args=[team.pk, membership.pk]), {"role": "viewer"}
    )
    assert response.status_code == 404
    membership.refresh_from_db()
    assert membership.role == Role.OWNER


def test_member_refused(member_client, users, team):
    assert _change(member_client, team, users["viewer"], "member").status_code == 403


def test_someone_removed_meanwhile_is_explained(owner, member, team):
    membership = Membership.objects.get(team=team, user=member)
    Membership.objects.filter(pk=membership.pk).delete()
    with pytest.raises(ValidationError, match="no longer a member of the team"):
        services.member_role_change(
            membership=membership, role=Role.VIEWER, actor=owner, actor_role=Role.OWNER
        )
