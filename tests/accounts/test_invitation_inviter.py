"""An invitation gives a role only while the person who sent it may still give that role."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts import services
from accounts.models import AuditEvent, Invitation, Membership, Role, User
from accounts.tokens import invitation_token
from tests.accounts.helpers import make_invitation
from tests.conftest import client_for, make_user

NEW_PASSWORD = "plum-orbit-cascade-77"
NO_LONGER = "The person who invited you can no longer grant this role."
ASK_ADMIN = "Ask a team admin for a new invitation."


def _url(invitation) -> str:
    return reverse("accounts:invitation_accept", args=[invitation_token(invitation.pk)])


def _sign_up(client, invitation):
    data = {"name": "Nora New", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    return client.post(_url(invitation), data)


def _invite(client, team, email: str, role: Role) -> Invitation:
    response = client.post(
        reverse("accounts:member_invite", args=[team.pk]), {"email": email, "role": role}
    )
    assert response.status_code == 302
    return Invitation.objects.get(team=team, email=email, revoked_at__isnull=True)


def _set_role(team, user, role: Role) -> None:
    # As the Django admin or an older version could: no invitation is revoked on the way.
    Membership.objects.filter(team=team, user=user).update(role=role)


def _assert_refused(response) -> None:
    assert response.status_code == 410
    body = response.content.decode()
    assert NO_LONGER in body
    assert ASK_ADMIN in body
    assert "Ask the person who invited you" not in body


# --- Accepting an invitation whose inviter may no longer give its role -------------------------


def test_demoted_inviters_invitation_makes_no_new_account(client, admin_client_, users, team):
    invitation = _invite(admin_client_, team, "newcomer@example.com", Role.ADMIN)
    _set_role(team, users["admin"], Role.MEMBER)

    _assert_refused(client.get(_url(invitation)))
    _assert_refused(_sign_up(client, invitation))

    assert not User.objects.filter(email="newcomer@example.com").exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None
    assert not AuditEvent.objects.filter(action="invitation.accept").exists()


def test_demoted_inviters_invitation_does_not_join_a_signed_in_user(admin_client_, users, team):
    invitation = _invite(admin_client_, team, "outsider@example.com", Role.ADMIN)
    _set_role(team, users["admin"], Role.VIEWER)
    client = client_for(users["outsider"])

    _assert_refused(client.get(_url(invitation)))
    _assert_refused(client.post(_url(invitation)))

    assert not Membership.objects.filter(team=team, user=users["outsider"]).exists()


def test_removed_inviters_invitation_is_refused(admin_client_, users, team):
    invitation = _invite(admin_client_, team, "outsider@example.com", Role.MEMBER)
    Membership.objects.filter(team=team, user=users["admin"]).delete()
    client = client_for(users["outsider"])

    _assert_refused(client.post(_url(invitation)))
    assert not Membership.objects.filter(team=team, user=users["outsider"]).exists()


def test_deleted_inviters_invitation_is_refused(client, users, team):
    inviter = make_user("gone@example.com")
    Membership.objects.create(team=team, user=inviter, role=Role.ADMIN)
    invitation = make_invitation(team, invited_by=inviter, role=Role.MEMBER)
    inviter.delete()

    _assert_refused(_sign_up(client, invitation))
    assert not User.objects.filter(email="newcomer@example.com").exists()


def test_owner_demoted_to_admin_may_still_give_admin_but_not_owner(
    client, owner_client, users, team
):
    as_admin = _invite(owner_client, team, "outsider@example.com", Role.ADMIN)
    as_owner = _invite(owner_client, team, "newcomer@example.com", Role.OWNER)
    _set_role(team, users["owner"], Role.ADMIN)

    _assert_refused(_sign_up(client, as_owner))
    assert not User.objects.filter(email="newcomer@example.com").exists()

    outsider = client_for(users["outsider"])
    response = outsider.post(_url(as_admin))
    assert response["Location"] == reverse("dashboard:team_home", args=[team.pk])
    assert Membership.objects.get(team=team, user=users["outsider"]).role == Role.ADMIN


def test_the_service_refuses_too(users, team):
    invitation = make_invitation(
        team, email="outsider@example.com", role=Role.ADMIN, invited_by=users["admin"]
    )
    _set_role(team, users["admin"], Role.MEMBER)

    with pytest.raises(ValidationError) as error:
        services.invitation_accept(invitation=invitation, user=users["outsider"])
    assert error.value.messages == [NO_LONGER]
    with pytest.raises(ValidationError):
        services.invitation_sign_up(
            invitation=make_invitation(team, role=Role.ADMIN, invited_by=users["admin"]),
            name="Nora",
            password=NEW_PASSWORD,
        )
    assert not Membership.objects.filter(team=team, user=users["outsider"]).exists()
    assert not User.objects.filter(email="newcomer@example.com").exists()


def test_an_inviter_still_allowed_is_fine(client, admin_client_, team, users):
    invitation = _invite(admin_client_, team, "newcomer@example.com", Role.ADMIN)
    response = _sign_up(client, invitation)
    assert response["Location"] == reverse("dashboard:team_home", args=[team.pk])
    user = User.objects.get(email="newcomer@example.com")
    assert Membership.objects.get(team=team, user=user).role == Role.ADMIN


# --- Demoting or removing an inviter revokes what they may no longer give ---------------------


def _pending(team, inviter) -> set[str]:
    return {
        i.email for i in Invitation.objects.filter(team=team, invited_by=inviter) if i.is_pending
    }


def _change_role(client, team, user, role):
    membership = Membership.objects.get(team=team, user=user)
    return client.post(
        reverse("accounts:member_role", args=[team.pk, membership.pk]), {"role": role}
    )


def test_demoting_an_admin_revokes_their_invitations(owner_client, admin_client_, users, team):
    _invite(admin_client_, team, "a@example.com", Role.ADMIN)
    _invite(admin_client_, team, "v@example.com", Role.VIEWER)
    _invite(owner_client, team, "o@example.com", Role.ADMIN)

    _change_role(owner_client, team, users["admin"], "member")

    assert _pending(team, users["admin"]) == set()
    assert _pending(team, users["owner"]) == {"o@example.com"}
    events = AuditEvent.objects.filter(action="invitation.revoke").order_by("target_repr")
    assert [(e.actor, e.data) for e in events] == [
        (users["owner"], {"email": "a@example.com", "role": "admin", "reason": "inviter_demoted"}),
        (users["owner"], {"email": "v@example.com", "role": "viewer", "reason": "inviter_demoted"}),
    ]
    members_page = owner_client.get(reverse("accounts:members", args=[team.pk])).content.decode()
    assert "a@example.com" not in members_page
    assert "o@example.com" in members_page


def test_demoting_an_owner_to_admin_revokes_only_owner_invitations(owner_client, users, team):
    _change_role(owner_client, team, users["admin"], "owner")
    second_owner = client_for(users["admin"])
    _invite(second_owner, team, "owner2@example.com", Role.OWNER)
    _invite(second_owner, team, "admin2@example.com", Role.ADMIN)

    _change_role(owner_client, team, users["admin"], "admin")

    assert _pending(team, users["admin"]) == {"admin2@example.com"}
    event = AuditEvent.objects.get(action="invitation.revoke")
    assert event.data == {
        "email": "owner2@example.com",
        "role": "owner",
        "reason": "inviter_demoted",
    }


def test_removing_an_admin_revokes_their_invitations(owner_client, admin_client_, users, team):
    _invite(admin_client_, team, "v@example.com", Role.VIEWER)
    used = _invite(admin_client_, team, "outsider@example.com", Role.MEMBER)
    client_for(users["outsider"]).post(_url(used))

    membership = Membership.objects.get(team=team, user=users["admin"])
    owner_client.post(reverse("accounts:member_remove", args=[team.pk, membership.pk]))

    assert _pending(team, users["admin"]) == set()
    event = AuditEvent.objects.get(action="invitation.revoke")
    assert event.actor == users["owner"]
    assert event.data == {"email": "v@example.com", "role": "viewer", "reason": "inviter_removed"}
    # The invitation already accepted stays as it was.
    used.refresh_from_db()
    assert used.revoked_at is None
    assert Membership.objects.filter(team=team, user=users["outsider"]).exists()


def test_leaving_revokes_your_invitations(admin_client_, users, team):
    invitation = _invite(admin_client_, team, "v@example.com", Role.VIEWER)
    membership = Membership.objects.get(team=team, user=users["admin"])
    admin_client_.post(reverse("accounts:member_remove", args=[team.pk, membership.pk]))

    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    assert AuditEvent.objects.get(action="invitation.revoke").actor == users["admin"]
    page = client_for(None).get(_url(invitation))
    assert "This invitation was withdrawn." in page.content.decode()


def test_a_promotion_revokes_nothing(owner_client, admin_client_, users, team):
    _invite(admin_client_, team, "v@example.com", Role.VIEWER)
    _change_role(owner_client, team, users["admin"], "owner")
    assert _pending(team, users["admin"]) == {"v@example.com"}
    assert not AuditEvent.objects.filter(action="invitation.revoke").exists()
