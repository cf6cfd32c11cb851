"""Hostile and clumsy input to the account pages: sign-in, language, invitation links, teams,
members and the audit log. The cross-app sweep is tests/test_hostile_inputs.py; payloads and
helpers are in tests/hostile.py."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, Invitation, Membership, Role, Team, User
from accounts.tokens import invitation_token
from tests.accounts.helpers import make_invitation
from tests.conftest import PASSWORD
from tests.hostile import (
    EMOJI,
    ONE_MB,
    RTL,
    SQLISH,
    XSS,
    assert_sane,
    body,
    form_errors,
    raw,
    shown,
    team_url,
)

# --- audit export ---------------------------------------------------------------------------


def test_audit_csv_neutralises_formulas_and_payloads(team, owner):
    AuditEvent.objects.create(
        team=team, actor=owner, actor_email=owner.email, action="x", target_repr="=cmd|'/c calc'!A1"
    )
    AuditEvent.objects.create(
        team=team, actor=owner, actor_email=owner.email, action="y", target_repr="@SUM(1)"
    )
    text = body(raw(owner).get(team_url("accounts:audit_export", team)))
    assert "'=cmd|" in text and "'@SUM(1)" in text
    assert "\n=cmd" not in text and ",=cmd" not in text


# --- sign-in, language, invitation links ---------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        " //evil.example",
        "http://testserver.evil.example/",
    ],
)
def test_login_never_redirects_off_site(target, owner):
    client = raw(None)
    response = client.post(
        reverse("accounts:login") + "?next=" + target,
        {"username": owner.email, "password": PASSWORD, "next": target},
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    # Already signed in: the login page sends them on, still not off site.
    assert client.get(reverse("accounts:login") + "?next=" + target)["Location"] == "/"


@pytest.mark.parametrize(
    "username",
    ["", "\x00", "x" * 254 + "@e.com", XSS, SQLISH, "OWNER@EXAMPLE.COM\u200b"],
    ids=["empty", "nul", "long", "xss", "sqlish", "zero-width"],
)
def test_login_with_junk_username_re_renders(username, owner):
    client = raw(None)
    response = client.post(reverse("accounts:login"), {"username": username, "password": "x"})
    assert response.status_code == 200
    assert_sane(response)
    assert "_auth_user_id" not in client.session


def test_login_with_a_huge_username(owner):
    response = raw(None).post(reverse("accounts:login"), {"username": ONE_MB, "password": "x"})
    assert response.status_code == 200


def test_login_with_lists_and_missing_fields(owner):
    assert raw(None).post(reverse("accounts:login"), {"username": ["a", "b"]}).status_code == 200
    assert raw(None).post(reverse("accounts:login"), {}).status_code == 200


@pytest.mark.parametrize(
    "header",
    ["zz", "*", "en;q=nan,es;q=1e999", ";;;,,,q=", "x" * 10_000, "../../etc/passwd", "é-ÉÉ"],
)
def test_accept_language_garbage(header, team, owner):
    client = raw(owner)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = header
    assert client.get(team_url("dashboard:team_home", team)).status_code == 200
    assert Client(HTTP_ACCEPT_LANGUAGE=header).get(reverse("accounts:login")).status_code == 200


def test_set_language_refuses_unknown_languages_and_foreign_next(owner):
    client = raw(owner)
    for language in ["xx", "x" * 10_000, "\x00"]:
        response = client.post(reverse("set_language"), {"language": language})
        assert response.status_code == 302
    response = client.post(
        reverse("set_language"), {"language": "es", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


@pytest.mark.parametrize(
    "token",
    ["abc", "x" * 5000, "a:b:c", "%00", "..%2F..%2Fadmin", "tampered"],
)
def test_bad_invitation_links_are_410_not_500(token, team, owner):
    if token == "tampered":
        real = invitation_token(make_invitation(team, invited_by=owner).pk)
        token = real[:-2] + ("AA" if not real.endswith("AA") else "BB")
    response = raw(None).get(f"/invitations/{token}/")
    assert response.status_code in (404, 410)
    assert_sane(response)
    if response.status_code == 410:
        assert "This invitation link is not valid." in shown(response)


def test_invitation_sign_up_keeps_the_invited_address(team, owner):
    invitation = make_invitation(team, email="new@example.com", invited_by=owner)
    url = reverse("accounts:invitation_accept", args=[invitation_token(invitation.pk)])
    password = "plum-orbit-cascade-77"
    bad = raw(None).post(url, {"name": "\x00", "password1": password, "password2": password})
    assert bad.status_code == 200
    assert "Null characters are not allowed." in form_errors(bad)[0]
    response = raw(None).post(
        url,
        {
            "name": "Nora",
            "password1": password,
            "password2": password,
            "email": "attacker@evil.example",
        },
    )
    assert response.status_code == 302
    assert User.objects.filter(email="new@example.com").exists()
    assert not User.objects.filter(email="attacker@evil.example").exists()


def test_invitation_accepted_twice_only_joins_once(team, owner):
    invitation = make_invitation(team, email="new@example.com", invited_by=owner)
    url = reverse("accounts:invitation_accept", args=[invitation_token(invitation.pk)])
    password = "plum-orbit-cascade-77"
    client = raw(None)
    data = {"name": "Nora", "password1": password, "password2": password}
    assert client.post(url, data).status_code == 302
    again = client.post(url, data)
    assert again.status_code == 302
    assert Membership.objects.filter(team=team, user__email="new@example.com").count() == 1


def test_setup_is_gone_once_someone_exists(owner):
    assert raw(None).get(reverse("accounts:setup")).status_code == 404
    response = raw(None).post(
        reverse("accounts:setup"),
        {"email": "x@e.com", "name": "x", "password1": "p", "password2": "p", "team_name": "t"},
    )
    assert response.status_code == 404
    assert not User.objects.filter(email="x@e.com").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "This field is required."),
        ({"email": "a\x00@x.com"}, "Null characters are not allowed."),
        ({"name": ONE_MB}, "Ensure this value has at most 150 characters"),
        ({"team_name": "t" * 1000}, "Ensure this value has at most 100 characters"),
        ({"password2": "different-Pass-123"}, "The two passwords differ."),
    ],
)
def test_setup_form_rejects_junk(data, message, db):
    good = {
        "email": "first@example.com",
        "name": "First",
        "password1": "plum-orbit-cascade-77",
        "password2": "plum-orbit-cascade-77",
        "team_name": "Team",
    }
    response = raw(None).post(reverse("accounts:setup"), {**good, **data} if data else {})
    assert response.status_code == 200
    assert any(message in error for error in form_errors(response))
    assert not User.objects.exists()


# --- teams ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("x" * 1000, "Ensure this value has at most 100 characters (it has 1000)."),
        (ONE_MB, "Ensure this value has at most 100 characters"),
        ("a\x00b", "Null characters are not allowed."),
    ],
    ids=["empty", "blank", "1000", "1mb", "nul"],
)
def test_team_name_junk_is_refused_and_name_kept(name, message, team, owner):
    for url in [reverse("accounts:team_create"), team_url("accounts:team_settings", team)]:
        response = raw(owner).post(url, {"name": name})
        assert response.status_code == 200
        assert any(message in error for error in form_errors(response))
    team.refresh_from_db()
    assert team.name == "Acme"
    assert Team.objects.count() == 1


@pytest.mark.parametrize(
    "name", [XSS[:100], RTL, EMOJI, SQLISH], ids=["xss", "rtl", "emoji", "sql"]
)
def test_odd_team_names_are_kept_verbatim_and_escaped(name, team, owner):
    response = raw(owner).post(
        team_url("accounts:team_settings", team), {"name": name}, follow=True
    )
    assert response.status_code == 200
    assert_sane(response)
    team.refresh_from_db()
    assert team.name == name
    assert name in shown(response)


def test_team_delete_needs_the_exact_name(team, owner, other_team):
    for confirm in ["", "acme", other_team.name, "x" * 1000, "\x00", "Acme\u200b"]:
        response = raw(owner).post(team_url("accounts:team_delete", team), {"confirm": confirm})
        assert response.status_code == 200
    assert Team.objects.filter(pk=team.pk).exists()


# --- members and invitations ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "", "role": "viewer"}, "This field is required."),
        ({"email": "not-an-email", "role": "viewer"}, "Enter a valid email address."),
        ({"email": "a\x00@x.com", "role": "viewer"}, "Null characters are not allowed."),
        ({"email": "x" * 1000 + "@e.com", "role": "viewer"}, "at most 254 characters"),
        ({"email": "new@example.com", "role": "god"}, "Select a valid choice."),
        ({"email": "new@example.com", "role": "owner"}, "Select a valid choice."),
        ({"email": "OWNER@EXAMPLE.COM", "role": "viewer"}, "already a member of the team"),
    ],
    ids=["empty", "not-email", "nul", "long", "unknown-role", "owner-by-admin", "member"],
)
def test_invite_junk_is_refused(data, message, team, owner, admin_user):
    response = raw(admin_user).post(team_url("accounts:member_invite", team), data)
    assert response.status_code == 200
    assert any(message in error for error in form_errors(response)), form_errors(response)
    assert not Invitation.objects.exists()


def test_inviting_twice_keeps_one_pending_invitation(team, admin_user):
    url = team_url("accounts:member_invite", team)
    for _ in range(2):
        assert (
            raw(admin_user).post(url, {"email": "new@example.com", "role": "viewer"}).status_code
            == 302
        )
    pending = Invitation.objects.filter(revoked_at__isnull=True)
    assert pending.count() == 1


@pytest.mark.parametrize("role", ["", "god", "\x00", "x" * 100_000, "OWNER"])
def test_role_change_to_junk_role_changes_nothing(role, team, admin_user, member):
    membership = Membership.objects.get(team=team, user=member)
    response = raw(admin_user).post(
        team_url("accounts:member_role", team, membership.pk), {"role": role}, follow=True
    )
    assert response.status_code == 200
    assert "Choose one of the offered roles." in shown(response)
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER


def test_admin_cannot_make_anyone_owner(team, admin_user, member):
    membership = Membership.objects.get(team=team, user=member)
    response = raw(admin_user).post(
        team_url("accounts:member_role", team, membership.pk), {"role": "owner"}
    )
    assert response.status_code == 403
    membership.refresh_from_db()
    assert membership.role == Role.MEMBER


def test_other_teams_membership_and_invitation_ids_are_404(team, owner, outsider, other_team):
    theirs = Membership.objects.get(user=outsider)
    their_invitation = make_invitation(other_team, invited_by=outsider)
    client = raw(owner)
    assert (
        client.post(
            team_url("accounts:member_role", team, theirs.pk), {"role": "viewer"}
        ).status_code
        == 404
    )
    assert client.post(team_url("accounts:member_remove", team, theirs.pk)).status_code == 404
    assert (
        client.post(team_url("accounts:invitation_revoke", team, their_invitation.pk)).status_code
        == 404
    )
    theirs.refresh_from_db()
    assert theirs.role == Role.OWNER
    their_invitation.refresh_from_db()
    assert their_invitation.revoked_at is None


# --- audit log filters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "page=-1",
        "page=abc",
        "page=99999999999999999999",
        "page=1e3",
        "page=%00",
        "since=2026-13-45",
        "until=abc&since=2026-01-01",
        "since=2026-01-02&until=2026-01-01",
        "since=0001-01-01&until=0001-01-01",
        "since=9999-12-31",
        "action=nope",
        "actor=not-a-uuid",
        "connection=zzz",
        "page=%ff%fe&since=%ff",
    ],
)
def test_audit_log_survives_odd_filters(query, team, owner):
    response = raw(owner).get(team_url("accounts:audit", team) + "?" + query)
    assert response.status_code == 200
    assert_sane(response)


def test_audit_log_filter_by_another_teams_member_shows_nothing_of_theirs(
    team, owner, outsider, other_team
):
    AuditEvent.objects.create(
        team=other_team, actor=outsider, actor_email=outsider.email, action="secret.thing"
    )
    response = raw(owner).get(team_url("accounts:audit", team) + f"?actor={outsider.pk}")
    assert response.status_code == 200
    assert "secret.thing" not in shown(response)


@pytest.mark.parametrize(
    "query",
    ["since=2026-13-45", "action=nope", f"actor={uuid.UUID(int=1)}", "connection=zzz"],
)
def test_audit_export_with_bad_filters_is_a_400_with_a_message(query, team, owner):
    response = raw(owner).get(team_url("accounts:audit_export", team) + "?" + query)
    assert response.status_code == 400
    assert "The filters are not valid." in response.content.decode()


@pytest.mark.parametrize("name", ["accounts:audit", "accounts:audit_export"])
@pytest.mark.parametrize("query", ["until=9999-12-31", "since=9999-12-31&until=9999-12-31"])
def test_audit_filter_last_representable_day(name, query, team, owner):
    # Was an OverflowError (a 500) in selectors.audit_event_list.
    response = raw(owner).get(team_url(name, team) + "?" + query)
    assert response.status_code == 200
    assert_sane(response)
