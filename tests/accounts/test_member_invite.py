import smtplib
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Invitation, Role
from accounts.tokens import invitation_id_from_token
from tests.accounts.helpers import make_invitation


class FailingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("gone")


def _invite(client, team, email="New.Person@Example.com", role="viewer"):
    return client.post(
        reverse("accounts:member_invite", args=[team.pk]), {"email": email, "role": role}
    )


def _link_from_page(body: str) -> str:
    marker = 'id="invitation-link" value="'
    start = body.index(marker) + len(marker)
    return body[start : body.index('"', start)]


@pytest.fixture(autouse=True)
def _no_mail(settings):
    settings.TABLERO_SEND_EMAIL = False


def test_invite_creates_invitation_and_shows_link(admin_client_, admin_user, team, settings):
    before = timezone.now()
    response = _invite(admin_client_, team)
    assert response["Location"] == reverse("accounts:members", args=[team.pk])

    invitation = Invitation.objects.get()
    assert invitation.email == "new.person@example.com"
    assert invitation.role == Role.VIEWER
    assert invitation.invited_by == admin_user
    expected = before + settings.INVITATION_MAX_AGE
    assert expected <= invitation.expires_at <= expected + timedelta(seconds=5)

    body = admin_client_.get(response["Location"]).content.decode()
    assert "Invitation created for new.person@example.com." in body
    link = _link_from_page(body)
    assert link.startswith("http://testserver/invitations/")
    assert 'data-copy="invitation-link"' in body
    assert "readonly" in body
    token = link.rsplit("/", 2)[-2]
    assert invitation_id_from_token(token) == invitation.pk
    assert mail.outbox == []

    # The link is shown once, right after inviting.
    assert 'id="invitation-link"' not in admin_client_.get(response["Location"]).content.decode()

    event = AuditEvent.objects.get(action="member.invite")
    assert event.actor == admin_user
    assert event.data == {"email": "new.person@example.com", "role": "viewer"}


def test_link_is_mailed_when_mail_is_configured(admin_client_, team, settings):
    settings.TABLERO_SEND_EMAIL = True
    response = _invite(admin_client_, team, role="member")
    body = admin_client_.get(response["Location"]).content.decode()
    assert "Invitation sent to new.person@example.com." in body
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["new.person@example.com"]
    assert "Acme" in message.subject
    assert "as Member" in message.body
    link = next(line for line in message.body.splitlines() if "/invitations/" in line)
    assert link.startswith("http://testserver/invitations/")
    assert invitation_id_from_token(link.rsplit("/", 2)[-2]) == Invitation.objects.get().pk


def test_mail_failure_is_explained(admin_client_, team, settings):
    settings.TABLERO_SEND_EMAIL = True
    settings.EMAIL_BACKEND = "tests.accounts.test_member_invite.FailingBackend"
    response = _invite(admin_client_, team)
    body = admin_client_.get(response["Location"]).content.decode()
    assert "The email could not be sent." in body
    assert 'id="invitation-link"' in body
    assert Invitation.objects.count() == 1


def test_admin_cannot_invite_an_owner(admin_client_, team):
    response = _invite(admin_client_, team, role="owner")
    assert response.status_code == 200
    assert "Select a valid choice." in response.content.decode()
    assert not Invitation.objects.exists()


def test_owner_can_invite_an_owner(owner_client, team):
    _invite(owner_client, team, role="owner")
    assert Invitation.objects.get().role == Role.OWNER


def test_existing_member_is_a_form_error(admin_client_, team, member):
    response = _invite(admin_client_, team, email="MEMBER@example.com")
    assert response.status_code == 200
    body = response.content.decode()
    assert "This person is already a member of the team." in body
    assert 'value="MEMBER@example.com"' in body
    assert not Invitation.objects.exists()


def test_bad_email_is_a_form_error(admin_client_, team):
    response = _invite(admin_client_, team, email="not-an-address")
    assert "Enter a valid email address." in response.content.decode()
    assert not Invitation.objects.exists()


def test_reinviting_replaces_the_pending_invitation(admin_client_, team):
    old = make_invitation(team, email="new.person@example.com")
    _invite(admin_client_, team)
    old.refresh_from_db()
    assert old.revoked_at is not None
    assert Invitation.objects.filter(revoked_at__isnull=True).count() == 1


def test_member_refused(member_client, team):
    assert _invite(member_client, team).status_code == 403
    assert not Invitation.objects.exists()


def test_get_not_allowed(admin_client_, team):
    response = admin_client_.get(reverse("accounts:member_invite", args=[team.pk]))
    assert response.status_code == 405


def test_admin_cannot_replace_an_owners_invitation(admin_client_, team, owner):
    # Replacing revokes, and an admin may not revoke an invitation to become owner.
    owners_invitation = make_invitation(team, role=Role.OWNER, invited_by=owner)
    response = _invite(admin_client_, team, email="newcomer@example.com", role="admin")
    assert response.status_code == 200
    assert (
        "An owner invited newcomer@example.com already; only an owner can replace that "
        "invitation." in response.content.decode()
    )
    owners_invitation.refresh_from_db()
    assert owners_invitation.is_pending
    assert Invitation.objects.filter(team=team).count() == 1
