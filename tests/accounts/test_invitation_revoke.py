from django.urls import reverse

from accounts.models import AuditEvent, Role
from accounts.tokens import invitation_token
from tests.accounts.helpers import make_invitation


def _revoke(client, team, invitation):
    return client.post(reverse("accounts:invitation_revoke", args=[team.pk, invitation.pk]))


def test_revokes(admin_client_, admin_user, team, client):
    invitation = make_invitation(team)
    response = _revoke(admin_client_, team, invitation)
    assert response["Location"] == reverse("accounts:members", args=[team.pk])
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    body = admin_client_.get(response["Location"]).content.decode()
    assert "The invitation for newcomer@example.com was revoked." in body
    assert "No pending invitations." in body
    event = AuditEvent.objects.get(action="invitation.revoke")
    assert event.actor == admin_user
    assert event.data == {"email": "newcomer@example.com", "role": "viewer"}

    # The link no longer works.
    page = client.get(reverse("accounts:invitation_accept", args=[invitation_token(invitation.pk)]))
    assert page.status_code == 410
    assert "This invitation was withdrawn." in page.content.decode()


def test_already_revoked_is_explained(admin_client_, team):
    invitation = make_invitation(team)
    _revoke(admin_client_, team, invitation)
    response = _revoke(admin_client_, team, invitation)
    body = admin_client_.get(response["Location"]).content.decode()
    assert "This invitation is no longer pending." in body
    assert AuditEvent.objects.filter(action="invitation.revoke").count() == 1


def test_admin_cannot_revoke_an_owner_invitation(admin_client_, owner_client, team):
    invitation = make_invitation(team, role=Role.OWNER)
    assert _revoke(admin_client_, team, invitation).status_code == 403
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
    _revoke(owner_client, team, invitation)
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


def test_invitation_of_another_team_is_404(admin_client_, team, other_team):
    invitation = make_invitation(other_team)
    response = admin_client_.post(
        reverse("accounts:invitation_revoke", args=[team.pk, invitation.pk])
    )
    assert response.status_code == 404
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
