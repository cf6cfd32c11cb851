from datetime import timedelta

from django.contrib.auth import SESSION_KEY
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent, Membership, Role, User
from accounts.tokens import invitation_token
from tests.accounts.helpers import make_invitation
from tests.conftest import PASSWORD, client_for, make_user

NEW_PASSWORD = "plum-orbit-cascade-77"


def _url(invitation) -> str:
    return reverse("accounts:invitation_accept", args=[invitation_token(invitation.pk)])


def _sign_up(client, invitation, **overrides):
    data = {"name": "Nora New", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    return client.post(_url(invitation), {**data, **overrides})


# --- Links that do not work ------------------------------------------------------------------


def test_bad_signature(client, db):
    response = client.get(reverse("accounts:invitation_accept", args=["abc:def:ghi"]))
    assert response.status_code == 410
    assert "This invitation link is not valid." in response.content.decode()


def test_tampered_token(client, team):
    token = invitation_token(make_invitation(team).pk)
    response = client.get(reverse("accounts:invitation_accept", args=[token[:-1] + "x"]))
    assert response.status_code == 410


def test_link_older_than_max_age(client, team, settings):
    invitation = make_invitation(team)
    settings.INVITATION_MAX_AGE = timedelta(seconds=-1)
    response = client.get(_url(invitation))
    assert response.status_code == 410
    assert "This invitation has expired." in response.content.decode()


def test_expired_invitation(client, team):
    invitation = make_invitation(team, expires_in=timedelta(minutes=-1))
    response = client.get(_url(invitation))
    assert response.status_code == 410
    assert "This invitation has expired." in response.content.decode()


def test_revoked_invitation(client, team):
    invitation = make_invitation(team, revoked_at=timezone.now())
    response = client.get(_url(invitation))
    assert response.status_code == 410
    assert "This invitation was withdrawn." in response.content.decode()


def test_used_invitation(client, team):
    invitation = make_invitation(team, accepted_at=timezone.now())
    response = _sign_up(client, invitation)
    assert response.status_code == 410
    assert "This invitation has already been used." in response.content.decode()
    assert not User.objects.filter(email="newcomer@example.com").exists()


def test_deleted_team(client, team):
    invitation = make_invitation(team)
    url = _url(invitation)
    team.delete()
    response = client.get(url)
    assert response.status_code == 410
    assert "This invitation no longer exists." in response.content.decode()


# --- Anonymous, no account yet: sign up -----------------------------------------------------


def test_sign_up_form_has_the_invited_address(client, owner, team):
    invitation = make_invitation(team, invited_by=owner, role=Role.MEMBER)
    body = client.get(_url(invitation)).content.decode()
    assert "Join Acme" in body
    assert "as <strong>Member</strong>" in body
    assert 'value="newcomer@example.com"' in body
    assert "disabled" in body
    assert "Create account and join" in body


def test_sign_up_creates_account_joins_and_signs_in(client, owner, team):
    invitation = make_invitation(team, invited_by=owner, role=Role.MEMBER)
    # A changed email in the request is ignored: the invitation decides.
    response = _sign_up(client, invitation, email="someone.else@example.com")

    user = User.objects.get(email="newcomer@example.com")
    assert not User.objects.filter(email="someone.else@example.com").exists()
    assert user.name == "Nora New"
    assert not user.is_staff
    assert Membership.objects.get(team=team, user=user).role == Role.MEMBER
    invitation.refresh_from_db()
    assert invitation.accepted_by == user
    assert invitation.accepted_at is not None
    assert response["Location"] == reverse("dashboard:team_home", args=[team.pk])
    assert client.session[SESSION_KEY] == str(user.pk)
    assert "Welcome to “Acme”." in client.get(response["Location"]).content.decode()
    event = AuditEvent.objects.get(action="invitation.accept")
    assert event.actor == user
    assert event.data == {"email": "newcomer@example.com", "role": "member"}


def test_sign_up_errors_keep_what_was_typed(client, team):
    invitation = make_invitation(team)
    response = _sign_up(client, invitation, password2="different-99-words")
    assert response.status_code == 200
    body = response.content.decode()
    assert "The two passwords differ." in body
    assert 'value="Nora New"' in body
    assert not User.objects.filter(email="newcomer@example.com").exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_sign_up_password_validators(client, team):
    invitation = make_invitation(team, email="x@example.com")
    response = _sign_up(client, invitation, password1="12345678", password2="12345678")
    assert "This password is entirely numeric." in response.content.decode()
    assert not User.objects.filter(email="x@example.com").exists()


# --- Anonymous with an account: sign in first -----------------------------------------------


def test_existing_account_is_asked_to_sign_in(client, team, outsider):
    invitation = make_invitation(team, email="Outsider@Example.com")
    response = client.get(_url(invitation))
    assert response.status_code == 200
    body = response.content.decode()
    assert "There is already an account for" in body
    login = reverse("accounts:login")
    assert f'href="{login}?next=%2Finvitations%2F' in body
    assert 'name="password1"' not in body


def test_sign_in_then_accept(client, team, outsider):
    invitation = make_invitation(team, email="outsider@example.com", role=Role.ADMIN)
    response = client.post(
        reverse("accounts:login"),
        {"username": "outsider@example.com", "password": PASSWORD, "next": _url(invitation)},
    )
    assert response["Location"].startswith("/invitations/")
    page = client.get(response["Location"])
    assert "Accept" in page.content.decode()
    accepted = client.post(response["Location"])
    assert accepted["Location"] == reverse("dashboard:team_home", args=[team.pk])
    assert Membership.objects.get(team=team, user=outsider).role == Role.ADMIN


# --- Signed in ------------------------------------------------------------------------------


def test_signed_in_get_only_shows_the_button(team, outsider):
    invitation = make_invitation(team, email="outsider@example.com")
    client = client_for(outsider)
    body = client.get(_url(invitation)).content.decode()
    assert ">Accept</button>" in body
    assert not Membership.objects.filter(team=team, user=outsider).exists()


def test_accept_is_idempotent_for_the_person_who_accepted(team, outsider):
    invitation = make_invitation(team, email="outsider@example.com")
    client = client_for(outsider)
    client.post(_url(invitation))
    again = client.post(_url(invitation))
    assert again["Location"] == reverse("dashboard:team_home", args=[team.pk])
    assert Membership.objects.filter(team=team, user=outsider).count() == 1
    assert AuditEvent.objects.filter(action="invitation.accept").count() == 1


def test_other_address_is_explained(team, outsider):
    invitation = make_invitation(team, email="newcomer@example.com")
    client = client_for(outsider)
    for response in (client.get(_url(invitation)), client.post(_url(invitation))):
        assert response.status_code == 403
        body = response.content.decode()
        assert "This invitation was sent to newcomer@example.com" in body
        assert "you are signed in as outsider@example.com" in body
    assert not Membership.objects.filter(team=team, user=outsider).exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_already_a_member(team, member):
    invitation = make_invitation(team, email="member@example.com", role=Role.ADMIN)
    client = client_for(member)
    body = client.get(_url(invitation)).content.decode()
    assert "You are already a member of this team." in body
    response = client.post(_url(invitation))
    assert response.status_code == 302
    assert Membership.objects.get(team=team, user=member).role == Role.MEMBER
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_user_created_meanwhile_is_not_duplicated(client, team):
    invitation = make_invitation(team)
    client.get(_url(invitation))
    make_user("newcomer@example.com")
    response = _sign_up(client, invitation)
    assert response.status_code == 200
    assert "There is already an account for" in response.content.decode()
    assert User.objects.filter(email="newcomer@example.com").count() == 1
