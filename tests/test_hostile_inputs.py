"""Hostile and clumsy input, from the outside: what a user (or a broken provider) can send.

Every request goes through the Django test client as one of the fixture roles; provider calls
go to the fake on loopback (tests/fakeupstream.py), with `fake_upstream.queue(...)` for bad
answers. The client does not re-raise view exceptions (`raise_request_exception=False`), so a
crash shows up as what the user would get: a 500.

Tests marked `xfail(strict=True)` pin defects found this way; each reason says what breaks.
Whoever fixes one removes its mark.
"""

import html
import json
import re
import uuid
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, Invitation, Membership, Role, Team, User
from accounts.tokens import invitation_token
from assistants.models import Assistant, Run, RunStatus
from connections import services as connection_services
from connections.models import Connection
from tests.accounts.helpers import make_invitation
from tests.assistants.helpers import fake_connection, make_assistant, make_run
from tests.conftest import PASSWORD
from tests.fakeupstream import ADMIN_KEY_OK, KEY_OK, Reply

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
RAW_XSS_MARKERS = ("<script>alert", "<img src=x")
ONE_MB = "x" * (1024 * 1024)
RTL = "\u202e\u200fevil\u200e"
EMOJI = "🦊🔑👩‍👩‍👧"
SQLISH = "'; DROP TABLE accounts_team; --"
DEEP_LIST = "[" * 100_000 + "]" * 100_000
TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', "Exception Value")


# --- helpers -------------------------------------------------------------------------------


def raw(user: User | None) -> Client:
    """A client that answers a crash with the 500 page instead of raising it."""
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


def body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def shown(response) -> str:
    """The page as the user reads it (entities decoded)."""
    return html.unescape(body(response))


def assert_sane(response) -> str:
    """No server error, no stack trace, no unescaped payload; returns the body."""
    assert response.status_code < 500, response.status_code
    text = body(response)
    for marker in TRACE_MARKERS:
        assert marker not in text
    for marker in RAW_XSS_MARKERS:
        assert marker not in text
    return text


def form_errors(response) -> list[str]:
    found = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', body(response), re.S)
    return [html.unescape(re.sub(r"<[^>]+>", " ", chunk)).strip() for chunk in found]


def team_url(name: str, team: Team, *args: Any) -> str:
    return reverse(name, args=[team.pk, *args])


@pytest.fixture
def conn(team, owner, fake_upstream) -> Connection:
    """The team's connection to the fake provider, running assistants through Responses."""
    fake_upstream.run_step_seconds = 0
    connection = fake_connection(team, fake_upstream, created_by=owner, run_api="responses")
    connection_services.models_refresh(connection=connection, user=None)  # as adding it does
    fake_upstream.requests.clear()
    return connection


@pytest.fixture
def other_conn(other_team, outsider, fake_upstream) -> Connection:
    return fake_connection(other_team, fake_upstream, name="Their secret connection")


@pytest.fixture
def assistant(team, conn, member) -> Assistant:
    return make_assistant(team, conn, created_by=member, sync_state="synced")


# --- every page, as every role, with hostile content everywhere ----------------------------


@pytest.fixture
def hostile_world(team, owner, admin_user, member, viewer, fake_upstream):
    """A team whose every name and text is a payload; returns the URLs of all its pages."""
    fake_upstream.run_step_seconds = 0
    team.name = XSS
    team.save()
    connection = fake_connection(
        team, fake_upstream, name=XSS[:100], organization_id="org-<b>", run_api="responses"
    )
    helper = make_assistant(
        team,
        connection,
        name=XSS + RTL + EMOJI,
        description=XSS,
        instructions=XSS,
        metadata={"note": XSS},
        tools=[{"type": "function", "function": {"name": "f", "description": XSS}}],
    )
    run = make_run(
        helper,
        backend="responses",
        status=RunStatus.FAILED,
        input=XSS,
        output_text=XSS,
        last_error_code=XSS[:100],
        last_error_message=XSS,
    )
    invitation = make_invitation(team, email="invitee@example.com", invited_by=owner)
    AuditEvent.objects.create(
        team=team, actor=owner, actor_email=owner.email, action=XSS[:64], target_repr=XSS
    )
    pages = [
        reverse("home"),
        team_url("dashboard:team_home", team),
        team_url("accounts:members", team),
        team_url("accounts:team_settings", team),
        team_url("accounts:team_delete", team),
        team_url("accounts:audit", team),
        team_url("connections:list", team),
        team_url("connections:create", team),
        team_url("connections:detail", team, connection.pk),
        team_url("connections:edit", team, connection.pk),
        team_url("connections:replace_key", team, connection.pk),
        team_url("connections:delete", team, connection.pk),
        team_url("connections:models", team, connection.pk),
        team_url("connections:model_detail", team, connection.pk, "gpt-4o"),
        team_url("connections:costs", team, connection.pk),
        team_url("connections:admin_key", team, connection.pk),
        team_url("assistants:list", team),
        team_url("assistants:create", team),
        team_url("assistants:detail", team, helper.pk),
        team_url("assistants:edit", team, helper.pk),
        team_url("assistants:delete", team, helper.pk),
        team_url("assistants:runs", team),
        team_url("assistants:run_detail", team, run.pk),
        team_url("assistants:run_status", team, run.pk),
        team_url("assistants:run_lookup", team),
        team_url("assistants:usage", team),
        reverse("accounts:invitation_accept", args=[invitation_token(invitation.pk)]),
        reverse("accounts:password_change"),
    ]
    return pages


@pytest.mark.parametrize("role", ["owner", "admin", "member", "viewer"])
def test_every_page_escapes_hostile_content_and_never_crashes(role, users, hostile_world):
    client = raw(users[role])
    for url in hostile_world:
        response = client.get(url)
        assert response.status_code in (200, 302, 403, 410), (url, response.status_code)
        assert_sane(response)


def test_anonymous_pages_never_crash(db):
    for url in ["/", "/login/", "/setup/", "/password/reset/", "/password/reset/abc/def/"]:
        assert_sane(raw(None).get(url))


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


# --- methods -------------------------------------------------------------------------------


@pytest.fixture
def objects(team, owner, member, conn, assistant):
    run = make_run(assistant, backend="responses", started_by=member)
    invitation = make_invitation(team, invited_by=owner)
    membership = Membership.objects.get(team=team, user=member)
    return {"run": run, "invitation": invitation, "membership": membership}


def _post_only_urls(team, conn, assistant, objects) -> list[str]:
    return [
        team_url("accounts:member_invite", team),
        team_url("accounts:member_role", team, objects["membership"].pk),
        team_url("accounts:member_remove", team, objects["membership"].pk),
        team_url("accounts:invitation_revoke", team, objects["invitation"].pk),
        team_url("connections:test", team, conn.pk),
        team_url("connections:models_refresh", team, conn.pk),
        team_url("connections:costs_refresh", team, conn.pk),
        team_url("connections:admin_key_remove", team, conn.pk),
        team_url("assistants:sync", team, assistant.pk),
        team_url("assistants:import", team, conn.pk),
        team_url("assistants:run_start", team, assistant.pk),
        team_url("assistants:run_cancel", team, objects["run"].pk),
        reverse("accounts:logout"),
    ]


def test_get_on_post_only_urls_is_405_and_changes_nothing(
    team, owner, member, conn, assistant, objects, fake_upstream
):
    client = raw(owner)
    for url in _post_only_urls(team, conn, assistant, objects):
        for method in ("get", "put", "delete"):
            response = getattr(client, method)(url)
            assert response.status_code == 405, (method, url)
    assert Membership.objects.filter(team=team, user=member).exists()
    assert Invitation.objects.get(pk=objects["invitation"].pk).revoked_at is None
    assert Run.objects.get(pk=objects["run"].pk).status == RunStatus.COMPLETED
    assert fake_upstream.requests == []


def test_post_on_get_only_pages_of_connections_and_assistants_is_405(
    team, owner, conn, assistant, objects
):
    client = raw(owner)
    urls = [
        team_url("connections:list", team),
        team_url("connections:detail", team, conn.pk),
        team_url("connections:models", team, conn.pk),
        team_url("connections:model_detail", team, conn.pk, "gpt-4o"),
        team_url("connections:costs", team, conn.pk),
        team_url("assistants:list", team),
        team_url("assistants:detail", team, assistant.pk),
        team_url("assistants:runs", team),
        team_url("assistants:run_detail", team, objects["run"].pk),
        team_url("assistants:run_status", team, objects["run"].pk),
        team_url("assistants:run_lookup", team),
        team_url("assistants:usage", team),
    ]
    for url in urls:
        assert client.post(url).status_code == 405, url


@pytest.mark.parametrize(
    "name",
    ["dashboard:team_home", "accounts:members", "accounts:audit", "accounts:audit_export"],
)
def test_post_on_get_only_team_pages_is_405(name, team, owner):
    assert raw(owner).post(team_url(name, team)).status_code == 405


def test_odd_methods_on_accounts_forms_are_405(team, owner):
    for url in [
        reverse("accounts:team_create"),
        team_url("accounts:team_settings", team),
        team_url("accounts:team_delete", team),
    ]:
        assert raw(owner).put(url).status_code == 405, url
        assert raw(owner).delete(url).status_code == 405, url


def test_head_on_read_only_pages_is_allowed(team, viewer, conn):
    for url in [team_url("connections:list", team), team_url("assistants:list", team)]:
        assert raw(viewer).head(url).status_code == 200, url


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


# --- connections ---------------------------------------------------------------------------


def _connection_data(fake, **extra) -> dict[str, Any]:
    return {
        "name": "Hostile",
        "provider": "openai",
        "base_url": fake.base_url,
        "api_key": KEY_OK,
        **extra,
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"name": ""}, "This field is required."),
        ({"name": ONE_MB}, "Ensure this value has at most 100 characters"),
        ({"name": "a\x00b"}, "Null characters are not allowed."),
        ({"provider": "evil"}, "Select a valid choice. evil is not one of the available choices."),
        ({"base_url": "javascript:alert(1)"}, "The URL must start with https://."),
        ({"base_url": "file:///etc/passwd"}, "The URL must start with https://."),
        ({"base_url": "http://169.254.169.254/latest"}, "The URL must start with https://."),
        ({"base_url": "http://localhost:22/v1"}, "The URL must start with https://."),
        ({"base_url": "http://127.0.0.1:99999/v1"}, "The port must be between 1 and 65535."),
        ({"base_url": "http://a b/"}, "spaces, backslashes or control characters"),
        ({"base_url": "https://user:pw@api.openai.com/v1"}, "must not contain a user name"),
        ({"base_url": ONE_MB}, "Ensure this value has at most 500 characters"),
        ({"api_key": ""}, "This field is required."),
        ({"api_key": ONE_MB}, "Ensure this value has at most 500 characters"),
        ({"api_key": "sk-\x00abcdefgh"}, "Null characters are not allowed."),
        ({"api_key": "sk-abc def ghij"}, "A key has no spaces or line breaks."),
        ({"api_key": "sk-…abcd1234"}, "This looks like a masked key."),
        ({"api_key": "short"}, "This is too short to be an API key."),
        ({"organization_id": "x" * 1000}, "Ensure this value has at most 100 characters"),
        ({"api_version": "x" * 41}, "Ensure this value has at most 40 characters"),
    ],
)
def test_connection_create_junk_is_refused_and_nothing_saved(
    extra, message, team, admin_user, fake_upstream
):
    response = raw(admin_user).post(
        team_url("connections:create", team), _connection_data(fake_upstream, **extra)
    )
    assert response.status_code == 200
    assert any(message in error for error in form_errors(response)), form_errors(response)
    assert not Connection.objects.exists()
    assert fake_upstream.requests == []
    # A key typed in never comes back in the page.
    if extra.get("api_key", "").startswith("sk-"):
        assert extra["api_key"] not in body(response)


@pytest.mark.parametrize("key", ["sk-é€abcdefgh", "sk-\u202eabcdefgh"], ids=["accents", "rtl"])
def test_connection_create_with_a_non_ascii_key_explains_and_saves_nothing(
    key, team, admin_user, fake_upstream
):
    response = raw(admin_user).post(
        team_url("connections:create", team), _connection_data(fake_upstream, api_key=key)
    )
    assert response.status_code == 200
    assert "The check failed, nothing was saved" in shown(response)
    assert "Invalid authentication (401)" in shown(response)
    assert not Connection.objects.exists()


def test_connection_create_twice_refuses_the_second(team, admin_user, fake_upstream):
    url = team_url("connections:create", team)
    assert raw(admin_user).post(url, _connection_data(fake_upstream)).status_code == 302
    again = raw(admin_user).post(url, _connection_data(fake_upstream, name="  HOSTILE "))
    assert again.status_code == 200
    assert "This team already has a connection with this name." in form_errors(again)
    assert Connection.objects.count() == 1


def test_connection_create_ignores_extra_and_forged_fields(
    team, other_team, admin_user, fake_upstream
):
    response = raw(admin_user).post(
        team_url("connections:create", team),
        _connection_data(
            fake_upstream,
            team=str(other_team.pk),
            api_key_encrypted="forged",
            health="ok",
            created_by=str(uuid.uuid4()),
        ),
    )
    assert response.status_code == 302
    connection = Connection.objects.get()
    assert connection.team_id == team.pk
    assert connection.api_key() == KEY_OK
    assert connection.created_by_id == admin_user.pk


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "run_api": "auto"}, "This field is required."),
        ({"name": "E", "run_api": "bogus"}, "Select a valid choice."),
        ({"name": "E", "run_api": "auto", "organization_id": "\x00"}, "Null characters"),
        ({"name": "x" * 1000, "run_api": "auto"}, "at most 100 characters"),
    ],
)
def test_connection_edit_junk_is_refused(data, message, team, admin_user, conn):
    response = raw(admin_user).post(team_url("connections:edit", team, conn.pk), data)
    assert response.status_code == 200
    assert any(message in error for error in form_errors(response))
    conn.refresh_from_db()
    assert conn.name == "Fake"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"api_key": ""}, "This field is required."),
        ({"api_key": "sk-…abcd"}, "This looks like a masked key."),
        ({"api_key": KEY_OK, "base_url": "ftp://x"}, "The URL must start with https://."),
        ({"api_key": KEY_OK, "base_url": "x" * 600}, "at most 500 characters"),
    ],
)
def test_replace_key_junk_is_refused_and_old_key_kept(data, message, team, admin_user, conn):
    response = raw(admin_user).post(team_url("connections:replace_key", team, conn.pk), data)
    assert response.status_code == 200
    assert any(message in error for error in form_errors(response))
    conn.refresh_from_db()
    assert conn.api_key() == KEY_OK


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "This field is required."),
        ("sk-normal-abcdefgh", "An admin key starts with “sk-admin-”."),
        ("sk-admin-" + "x" * 600, "at most 500 characters"),
        ("sk-admin-\x00abc", "Null characters are not allowed."),
    ],
)
def test_admin_key_junk_is_refused(key, message, team, admin_user, conn):
    response = raw(admin_user).post(
        team_url("connections:admin_key", team, conn.pk), {"admin_key": key}
    )
    assert response.status_code == 200
    assert any(message in error for error in form_errors(response))
    conn.refresh_from_db()
    assert not conn.has_admin_key


@pytest.mark.parametrize("group", ["", "bogus", "x" * 10_000, "\x00", "project_id"])
def test_costs_group_junk_falls_back(group, team, admin_user, conn, fake_upstream):
    conn.set_admin_key(ADMIN_KEY_OK)
    conn.save()
    client = raw(admin_user)
    response = client.get(team_url("connections:costs", team, conn.pk), {"group": group})
    assert response.status_code == 200
    assert_sane(response)
    refresh = client.post(team_url("connections:costs_refresh", team, conn.pk), {"group": group})
    assert refresh.status_code == 302
    group_by = {r.param("group_by") for r in fake_upstream.requests_to("/v1/organization/costs")}
    assert group_by <= {"line_item", "project_id", "api_key_id"}


NON_ASCII_IDS = pytest.mark.parametrize(
    "extra",
    [
        {"organization_id": "org-é"},
        {"project_id": "proj_é"},
        {"organization_id": "org-\u202e"},
        {"organization_id": "org-\r\nX-Evil: 1"},
    ],
    ids=["org-accent", "project-accent", "org-rtl", "org-crlf"],
)


@NON_ASCII_IDS
def test_connection_create_refuses_non_ascii_org_or_project(extra, team, admin_user, fake_upstream):
    # Was a UnicodeEncodeError (a 500) when the ID went into the request headers.
    response = raw(admin_user).post(
        team_url("connections:create", team), _connection_data(fake_upstream, **extra)
    )
    assert response.status_code == 200
    assert any("An ID has only letters, digits" in error for error in form_errors(response))
    assert not Connection.objects.exists()
    assert fake_upstream.requests == []


@NON_ASCII_IDS
def test_connection_edit_refuses_non_ascii_org_or_project(extra, team, admin_user, conn):
    data = {"name": "Fake", "run_api": "responses", **extra}
    response = raw(admin_user).post(team_url("connections:edit", team, conn.pk), data)
    assert response.status_code == 200
    assert any("An ID has only letters, digits" in error for error in form_errors(response))
    conn.refresh_from_db()
    assert conn.organization_id == conn.project_id == ""


def test_pages_of_a_connection_stored_with_a_non_ascii_org_explain(
    team, viewer, member, conn, fake_upstream
):
    # As stored before the forms refused it: the provider is not asked, the page explains.
    Connection.objects.filter(pk=conn.pk).update(organization_id="org-é")
    response = raw(viewer).get(team_url("connections:models", team, conn.pk))
    assert response.status_code == 200
    assert raw(member).get(team_url("assistants:create", team)).status_code == 200
    response = raw(member).post(team_url("connections:models_refresh", team, conn.pk))
    assert response.status_code == 200
    assert "The model list could not be fetched" in shown(response)
    assert fake_upstream.requests == []


# --- models --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["q=" + "x" * 1000, "q=%00", "q=%3Cscript%3E", "q=%E2%80%AE", "q=%25_", "page=-1"]
)
def test_model_search_junk(query, team, viewer, conn):
    response = raw(viewer).get(team_url("connections:models", team, conn.pk) + "?" + query)
    assert response.status_code == 200
    assert_sane(response)


@pytest.mark.parametrize(
    "model_id",
    [
        "..",
        ".",
        "../..",
        "%2E%2E",
        "..%2F..%2Fmodels",
        "a/../../b",
        "%00",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "%E2%80%AE",
        "a%5Cb",
        "x" * 5000,
    ],
)
def test_model_ids_never_leave_the_models_path(model_id, team, viewer, conn, fake_upstream):
    url = team_url("connections:models", team, conn.pk) + model_id + "/"
    response = raw(viewer).get(url)
    assert response.status_code == 200
    assert_sane(response)
    for request in fake_upstream.requests:
        assert request.path == "/v1/models" or (
            request.path.startswith("/v1/models/") and "/" not in request.path[len("/v1/models/") :]
        ), request.path


def test_very_long_model_id(team, viewer, conn):
    url = team_url("connections:models", team, conn.pk) + "m" * 70_000 + "/"
    response = raw(viewer).get(url)
    assert response.status_code == 200
    assert "The model does not exist" in shown(response) or "Unexpected answer" in shown(response)


# --- assistants ----------------------------------------------------------------------------


def _assistant_data(connection: Connection, /, **extra: Any) -> dict[str, Any]:
    return {"connection": str(connection.pk), "name": "Helper", "model": "gpt-4o"} | extra


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"name": ""}, "This field is required."),
        ({"name": ONE_MB}, "Ensure this value has at most 256 characters"),
        ({"name": "a\x00"}, "Null characters are not allowed."),
        ({"connection": "not-a-uuid"}, "is not a valid UUID."),
        ({"connection": ""}, "Connection: This field is required."),
        ({"model": "not-a-model"}, "Select a valid choice."),
        ({"model": "../../x"}, "Select a valid choice."),
        ({"temperature": "abc"}, "Enter a number."),
        ({"temperature": "nan"}, "Enter a number."),
        ({"temperature": "inf"}, "Enter a number."),
        ({"temperature": "1e999"}, "Enter a number."),
        ({"temperature": "3"}, "less than or equal to 2"),
        ({"top_p": "-1"}, "greater than or equal to 0"),
        ({"functions": "{}"}, "Give a JSON list"),
        ({"functions": '"text"'}, "Give a JSON list"),
        ({"functions": "[1]"}, "Item 1 is not a JSON object."),
        ({"functions": "[Infinity]"}, ("Item 1 is not a JSON object.", "must be finite")),
        ({"functions": "{oops"}, "This is not valid JSON (line 1, column 2)"),
        ({"functions": json.dumps([{"name": "f\u0000"}])}, ("the name must be 1 to 64", "NUL")),
        ({"functions": json.dumps([{"name": "f"}, {"name": "f"}])}, "repeated: f"),
        (
            {"functions": json.dumps([{"name": f"f{i}"} for i in range(200)])},
            "At most 128 tools are allowed.",
        ),
        ({"functions": json.dumps([{"type": "<b>x</b>"}])}, "unknown tool type “<b>x</b>”"),
        ({"metadata": "[]"}, "Give a JSON object"),
        ({"metadata": "1"}, "Give a JSON object"),
        ({"metadata": '{"a": {"b": 1}}'}, "must be text"),
        ({"metadata": json.dumps({f"k{i}": "v" for i in range(20)})}, "At most 16"),
        ({"metadata": json.dumps({"k" * 65: "v"})}, "longer than 64 characters"),
        ({"instructions": "x" * 256_001}, "at most 256000 characters"),
        ({"instructions": "\x00"}, "Null characters are not allowed."),
        ({"description": "x" * 513}, "at most 512 characters"),
    ],
)
def test_assistant_create_junk_is_refused_and_nothing_saved(extra, message, team, member, conn):
    response = raw(member).post(team_url("assistants:create", team), _assistant_data(conn, **extra))
    assert response.status_code == 200
    assert_sane(response)
    messages = (message,) if isinstance(message, str) else message
    errors = form_errors(response)
    assert any(text in error for error in errors for text in messages), errors
    assert not Assistant.objects.exists()


def test_assistant_create_with_another_teams_connection_is_refused(
    team, member, conn, other_conn, fake_upstream
):
    response = raw(member).post(team_url("assistants:create", team), _assistant_data(other_conn))
    assert response.status_code == 200
    assert any("Select a valid choice." in error for error in form_errors(response))
    assert not Assistant.objects.exists()
    assert other_conn.name not in shown(response)


def test_assistant_create_page_with_another_teams_connection_shows_ours(
    team, member, conn, other_conn
):
    for value in [str(other_conn.pk), "zzz", "x" * 10_000, "%00"]:
        response = raw(member).get(team_url("assistants:create", team), {"connection": value})
        assert response.status_code == 200
        assert other_conn.name not in shown(response)
        assert str(conn.pk) in body(response)


def test_assistant_edit_cannot_move_it_to_another_teams_connection(
    team, member, assistant, other_conn, conn
):
    response = raw(member).post(
        team_url("assistants:edit", team, assistant.pk),
        {"name": "Moved", "model": "gpt-4o", "connection": str(other_conn.pk)},
    )
    assert response.status_code == 302
    assistant.refresh_from_db()
    assert assistant.connection_id == conn.pk


def test_assistant_import_from_another_teams_connection_is_404(team, member, other_conn):
    response = raw(member).post(team_url("assistants:import", team, other_conn.pk))
    assert response.status_code == 404
    assert not Assistant.objects.exists()


def test_another_teams_objects_under_our_team_are_404(
    team, other_team, owner, other_conn, fake_upstream
):
    """Their connection, assistant and run ids in our team's URLs: not found, not touched."""
    theirs = make_assistant(other_team, other_conn, name="Theirs", remote_id="asst_theirs")
    their_run = make_run(theirs, status=RunStatus.IN_PROGRESS, backend="responses")
    client = raw(owner)
    gets = [
        team_url("connections:detail", team, other_conn.pk),
        team_url("connections:models", team, other_conn.pk),
        team_url("connections:model_detail", team, other_conn.pk, "gpt-4o"),
        team_url("connections:costs", team, other_conn.pk),
        team_url("assistants:detail", team, theirs.pk),
        team_url("assistants:edit", team, theirs.pk),
        team_url("assistants:run_detail", team, their_run.pk),
        team_url("assistants:run_status", team, their_run.pk),
    ]
    posts = [
        (team_url("connections:edit", team, other_conn.pk), {"name": "Mine", "run_api": "auto"}),
        (team_url("connections:replace_key", team, other_conn.pk), {"api_key": KEY_OK}),
        (team_url("connections:delete", team, other_conn.pk), {}),
        (team_url("connections:test", team, other_conn.pk), {}),
        (team_url("connections:admin_key", team, other_conn.pk), {"admin_key": ADMIN_KEY_OK}),
        (team_url("assistants:edit", team, theirs.pk), {"name": "Mine", "model": "gpt-4o"}),
        (team_url("assistants:delete", team, theirs.pk), {}),
        (team_url("assistants:sync", team, theirs.pk), {}),
        (team_url("assistants:run_start", team, theirs.pk), {"message": "hi"}),
        (team_url("assistants:run_cancel", team, their_run.pk), {}),
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    other_conn.refresh_from_db()
    theirs.refresh_from_db()
    their_run.refresh_from_db()
    assert (other_conn.name, theirs.name) == ("Their secret connection", "Theirs")
    assert not other_conn.has_admin_key
    assert their_run.status == RunStatus.IN_PROGRESS
    assert Run.objects.count() == 1
    assert fake_upstream.requests == []


@pytest.mark.parametrize("field", ["functions", "metadata"])
@pytest.mark.parametrize(
    "value",
    [
        DEEP_LIST,
        '[{"name": "f", "parameters": {"type": "object", "x": ' + "[" * 500 + "]" * 500 + "}}]",
    ],
    ids=["100000-deep", "500-deep"],
)
def test_assistant_deeply_nested_json_is_refused(field, value, team, member, conn, assistant):
    # Was a RecursionError (a 500) in json.loads, on create and on edit.
    response = raw(member).post(
        team_url("assistants:create", team), _assistant_data(conn, **{field: value})
    )
    assert response.status_code == 200
    assert any("nested more than" in error for error in form_errors(response))
    edit = raw(member).post(
        team_url("assistants:edit", team, assistant.pk),
        {"name": "Helper", "model": "gpt-4o", field: value},
    )
    assert edit.status_code == 200
    assert any("nested more than" in error for error in form_errors(edit))
    assert Assistant.objects.count() == 1


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_assistant_function_parameters_with_nan_are_refused(number, team, member, conn):
    # Was an IntegrityError (SQLite) / DataError (PostgreSQL) on the JSONField write: a 500.
    functions = f'[{{"name": "f", "parameters": {{"type": "object", "x": {number}}}}}]'
    response = raw(member).post(
        team_url("assistants:create", team), _assistant_data(conn, functions=functions)
    )
    assert response.status_code == 200
    assert any("must be finite" in error for error in form_errors(response))
    assert not Assistant.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("metadata", json.dumps({"k": "\u0000"})),
        ("metadata", json.dumps({"\u0000": "v"})),
        ("functions", json.dumps([{"name": "f", "description": "a\u0000b"}])),
    ],
    ids=["metadata-value", "metadata-key", "function-description"],
)
def test_assistant_json_with_nul_escape_is_refused(field, value, team, member, conn):
    # Was stored as is: a DataError (a 500) on PostgreSQL, a NUL sent on to the provider.
    response = raw(member).post(
        team_url("assistants:create", team), _assistant_data(conn, **{field: value})
    )
    assert response.status_code == 200
    assert any("cannot contain NUL characters" in error for error in form_errors(response))
    assert not Assistant.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("metadata", '{"k": "\\ud800"}'),
        ("metadata", '{"\\udfff": "v"}'),
        ("functions", '[{"name": "f", "description": "\\ud800x"}]'),
    ],
    ids=["metadata-value", "metadata-key", "function-description"],
)
def test_assistant_json_with_lone_surrogate(field, value, team, member, viewer, conn):
    response = raw(member).post(
        team_url("assistants:create", team), _assistant_data(conn, **{field: value})
    )
    assert response.status_code in (200, 302)
    for helper in Assistant.objects.all():
        assert raw(viewer).get(team_url("assistants:detail", team, helper.pk)).status_code == 200
        assert raw(member).get(team_url("assistants:edit", team, helper.pk)).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("metadata", DEEP_LIST),
        ("tools", '[{"type": "function", "function": {"name": "f", "x": NaN}}]'),
        ("metadata", '{"k": "\\u0000"}'),
        ("metadata", '{"k": "\\ud800"}'),
    ],
    ids=["deep", "nan", "nul", "surrogate"],
)
def test_admin_assistant_json_fields(field, value, team, owner, assistant, conn):
    owner.is_staff = owner.is_superuser = True
    owner.save()
    url = reverse("admin:assistants_assistant_change", args=[assistant.pk])
    data = {
        "team": str(team.pk),
        "connection": str(conn.pk),
        "name": "Helper",
        "model": "gpt-4o",
        "tools": "[]",
        "metadata": "{}",
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        field: value,
    }
    response = raw(owner).post(url, data)
    assert response.status_code in (200, 302)
    assert raw(owner).get(url).status_code == 200
    assistant.refresh_from_db()
    assert not _has_nul(assistant.metadata, assistant.tools)


@pytest.mark.parametrize(
    "query",
    ["connection=zz", "q=" + "x" * 300, "q=%00", "q=%25", "q=_", "page=-1", "q=%3Cscript%3E"],
)
def test_assistant_list_filter_junk(query, team, viewer, assistant):
    response = raw(viewer).get(team_url("assistants:list", team) + "?" + query)
    assert response.status_code == 200
    assert_sane(response)


def test_lists_filtered_by_another_teams_objects_show_nothing_of_theirs(
    team, other_team, viewer, assistant, other_conn
):
    theirs = make_assistant(other_team, other_conn, name="Their secret assistant")
    make_run(theirs, input="their secret question", output_text="their secret answer")
    client = raw(viewer)
    pages = [
        team_url("assistants:list", team) + f"?connection={other_conn.pk}",
        team_url("assistants:runs", team) + f"?assistant={theirs.pk}",
        team_url("assistants:usage", team) + f"?connection={other_conn.pk}",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200
        page = shown(response)
        assert "Their secret" not in page and "their secret" not in page


@pytest.mark.parametrize(
    "query",
    ["status=bogus", "assistant=zz", "status=" + "x" * 1000, "page=-1", "page=abc", "status=%00"],
)
def test_run_list_filter_junk(query, team, viewer):
    response = raw(viewer).get(team_url("assistants:runs", team) + "?" + query)
    assert response.status_code == 200
    assert_sane(response)


@pytest.mark.parametrize("query", ["connection=zz", "days=-1", "since=2026-13-45", "page=abc"])
def test_usage_filter_junk(query, team, viewer):
    response = raw(viewer).get(team_url("assistants:usage", team) + "?" + query)
    assert response.status_code == 200
    assert_sane(response)


# --- runs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("", "This field is required."),
        ("   ", "This field is required."),
        ("x" * 32_001, "at most 32000 characters"),
        ("\x00", "Null characters are not allowed."),
    ],
    ids=["empty", "blank", "long", "nul"],
)
def test_run_start_junk_message_is_refused(message, error, team, member, assistant, fake_upstream):
    response = raw(member).post(
        team_url("assistants:run_start", team, assistant.pk), {"message": message}
    )
    assert response.status_code == 200
    assert any(error in text for text in form_errors(response))
    assert not Run.objects.exists()
    assert fake_upstream.requests == []


def test_run_start_payload_message_is_escaped(team, member, assistant):
    response = raw(member).post(
        team_url("assistants:run_start", team, assistant.pk), {"message": XSS}, follow=True
    )
    assert response.status_code == 200
    assert_sane(response)
    assert XSS in shown(response)


def test_run_cancel_twice(team, member, assistant, fake_upstream):
    fake_upstream.run_step_seconds = 60
    client = raw(member)
    start = client.post(team_url("assistants:run_start", team, assistant.pk), {"message": "hi"})
    run = Run.objects.get()
    assert start.status_code == 302
    first = client.post(team_url("assistants:run_cancel", team, run.pk), follow=True)
    second = client.post(team_url("assistants:run_cancel", team, run.pk), follow=True)
    assert first.status_code == second.status_code == 200
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert "nothing to cancel" in shown(second)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("response_id=../../x", "An ID is up to 1024 letters, digits"),
        ("response_id=" + "a" * 1025, "at most 1024 characters"),
        ("response_id=resp_1&thread_id=t", "not both"),
        ("", "Give a thread ID and a run ID (Assistants API), or a response ID."),
        ("response_id=%00", "Null characters are not allowed."),
        ("thread_id=thread_1&run_id=..", "An ID is up to 1024 letters, digits"),
        ("response_id=%2F..%2Fmodels", "An ID is up to 1024 letters, digits"),
    ],
)
def test_run_lookup_junk_ids_are_refused_before_the_provider(
    query, message, team, viewer, conn, fake_upstream
):
    url = team_url("assistants:run_lookup", team) + f"?connection={conn.pk}&{query}"
    response = raw(viewer).get(url)
    assert response.status_code == 200
    assert any(message in error for error in form_errors(response)), form_errors(response)
    assert fake_upstream.requests == []


def test_run_lookup_on_another_teams_connection_is_refused(
    team, viewer, conn, other_conn, fake_upstream
):
    url = team_url("assistants:run_lookup", team) + f"?connection={other_conn.pk}&response_id=r1"
    response = raw(viewer).get(url)
    assert response.status_code == 200
    assert any("Select a valid choice." in error for error in form_errors(response))
    assert fake_upstream.requests == []


def test_run_lookup_unknown_id_explains(team, viewer, conn):
    url = team_url("assistants:run_lookup", team) + f"?connection={conn.pk}&response_id=resp_no"
    response = raw(viewer).get(url)
    assert response.status_code == 200
    assert "The provider could not tell" in shown(response)


# --- bad answers from the provider that are handled ----------------------------------------


def _response(**fields) -> Reply:
    return Reply.json({"id": "resp_abc", "object": "response", "status": "completed", **fields})


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        (Reply.json([1, 2]), RunStatus.FAILED),
        (_response(status="exploded"), RunStatus.FAILED),
        (Reply(200, b'{"id": "\xff\xfe"}', {"Content-Type": "application/json"}), RunStatus.FAILED),
        (Reply(200, b"<html>sign in</html>", {"Content-Type": "text/html"}), RunStatus.FAILED),
        (
            _response(usage={"input_tokens": 10**30, "output_tokens": -5, "total_tokens": 1.5}),
            RunStatus.COMPLETED,
        ),
        (_response(completed_at=10**20), RunStatus.COMPLETED),
        # Refused with the reason, never cut to fit: a cut id can be neither polled nor cancelled.
        (_response(id="r" * 5000, status="in_progress"), RunStatus.FAILED),
        (
            Reply.error(400, XSS, XSS, XSS[:50]),
            RunStatus.FAILED,
        ),
    ],
    ids=[
        "list",
        "unknown-status",
        "bad-utf8",
        "html",
        "absurd-usage",
        "far-future",
        "long-id",
        "xss-error",
    ],
)
def test_run_start_survives_bad_provider_answers(
    reply, status, team, member, assistant, fake_upstream
):
    fake_upstream.queue(reply)
    client = raw(member)
    response = client.post(
        team_url("assistants:run_start", team, assistant.pk), {"message": "hi"}, follow=True
    )
    assert response.status_code == 200
    assert_sane(response)
    run = Run.objects.get()
    assert run.status == status
    assert run.response_id in ("", "resp_abc")  # an id too long to keep is not cut to fit
    assert run.input_tokens is None or run.input_tokens >= 0


def test_provider_payloads_in_model_lists_are_escaped(team, admin_user, conn, fake_upstream):
    fake_upstream.queue(
        Reply.json({"object": "list", "data": [{"id": XSS, "owned_by": "<b>x</b>"}]}), times=2
    )
    client = raw(admin_user)
    response = client.post(team_url("connections:models_refresh", team, conn.pk), follow=True)
    assert response.status_code == 200
    assert_sane(response)
    assert XSS in shown(response)


def test_provider_error_payload_is_escaped_on_connection_page(
    team, admin_user, conn, fake_upstream
):
    fake_upstream.queue(Reply.error(401, XSS, XSS, XSS[:50]))
    response = raw(admin_user).post(team_url("connections:test", team, conn.pk), follow=True)
    assert response.status_code == 200
    assert_sane(response)
    assert "Invalid authentication (401)" in shown(response)


@pytest.mark.parametrize(
    "remote",
    [
        [{"object": "assistant", "name": "no id", "model": "gpt-4o"}],
        [{"id": 5, "object": "assistant", "name": "int id", "model": "gpt-4o"}],
        [{"id": "a" * 2000, "object": "assistant", "name": "long id", "model": "gpt-4o"}],
        [{"id": "asst_t", "object": "assistant", "name": "t", "model": "gpt-4o", "tools": "x"}],
    ],
    ids=["no-id", "int-id", "long-id", "tools-not-list"],
)
def test_import_survives_odd_remote_assistants(remote, team, member, fake_upstream):
    connection = fake_connection(team, fake_upstream, run_api="assistants")
    fake_upstream.queue(Reply.json({"object": "list", "data": remote, "has_more": False}))
    response = raw(member).post(team_url("assistants:import", team, connection.pk), follow=True)
    assert response.status_code == 200
    assert_sane(response)
    for helper in Assistant.objects.all():
        assert not helper.remote_id.startswith("aaaa")  # too long to keep: skipped, not cut
        assert isinstance(helper.tools, list)


# --- bad answers from the provider that used to break a page -------------------------------

_NESTED = Reply(200, b"[" * 100_000 + b"]" * 100_000, {"Content-Type": "application/json"})


@pytest.mark.parametrize(
    "where", ["run_start", "connection_test", "error_body"], ids=["run", "test", "error"]
)
def test_deeply_nested_provider_answer_is_explained(
    where, team, admin_user, assistant, conn, fake_upstream
):
    # Was a RecursionError from json.loads in connections.client: a 500.
    if where == "error_body":
        fake_upstream.queue(
            Reply(400, b'{"error":' * 50_000 + b"1" + b"}" * 50_000, {"Content-Type": "text/json"})
        )
    else:
        fake_upstream.queue(_NESTED)
    client = raw(admin_user)
    if where == "connection_test":
        response = client.post(team_url("connections:test", team, conn.pk), follow=True)
        assert "The check failed" in shown(response)
    else:
        response = client.post(
            team_url("assistants:run_start", team, assistant.pk), {"message": "hi"}, follow=True
        )
        assert Run.objects.get().status == RunStatus.FAILED
    assert response.status_code == 200
    assert_sane(response)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"object":"list","data":[{"id":"gpt-x","created":NaN}]}',
        b'{"object":"list","data":[{"id":"gpt-x","x":' + b"[" * 900 + b"]" * 900 + b"}]}",
    ],
    ids=["nan", "deep"],
)
def test_model_list_with_unstorable_values(payload, team, admin_user, conn, fake_upstream):
    fake_upstream.queue(Reply(200, payload, {"Content-Type": "application/json"}))
    response = raw(admin_user).post(team_url("connections:models_refresh", team, conn.pk))
    assert response.status_code in (200, 302)


def _has_nul(*values: Any) -> bool:
    return "\x00" in json.dumps(values, ensure_ascii=False) or "\\u0000" in json.dumps(values)


@pytest.mark.parametrize(
    "reply",
    [
        _response(output_text="a\u0000b"),
        _response(status="failed", error={"code": "x", "message": "m\u0000"}),
        _response(id="resp_\u0000"),
    ],
    ids=["output", "run-error", "id"],
)
def test_provider_nul_in_run_answers_is_dropped(reply, team, member, assistant, fake_upstream):
    # Was stored as is: a DataError (a 500 on run start) on PostgreSQL.
    fake_upstream.queue(reply)
    response = raw(member).post(
        team_url("assistants:run_start", team, assistant.pk), {"message": "hi"}
    )
    assert response.status_code == 302
    run = Run.objects.get()
    assert not _has_nul(
        run.output_text, run.last_error_message, run.last_error_code, run.response_id
    )


def test_provider_nul_in_an_error_body_is_dropped(team, member, assistant, fake_upstream):
    # Was stored as is on the run and the error log: a DataError (a 500) on PostgreSQL.
    fake_upstream.queue(Reply.error(400, "bad \u0000 thing", "invalid_request_error", "x"))
    response = raw(member).post(
        team_url("assistants:run_start", team, assistant.pk), {"message": "hi"}
    )
    assert response.status_code == 302
    run = Run.objects.get()
    events = list(assistant.connection.error_events.values_list("message", flat=True))
    assert not _has_nul(run.last_error_message, run.last_error_code, events)


@pytest.mark.parametrize(
    "reply",
    [
        Reply.json({"object": "list", "data": [{"id": "gpt-x", "owned_by": "a\u0000"}]}),
        Reply.error(401, "bad \u0000", "invalid_request_error", "invalid_api_key"),
    ],
    ids=["model-field", "error-message"],
)
def test_provider_nul_in_connection_answers_is_dropped(
    reply, team, admin_user, conn, fake_upstream
):
    # Was stored in models_cache / the error log as is: a DataError (a 500) on PostgreSQL.
    fake_upstream.queue(reply)
    response = raw(admin_user).post(team_url("connections:test", team, conn.pk))
    assert response.status_code == 302
    conn.refresh_from_db()
    messages = list(conn.error_events.values_list("message", flat=True))
    assert not _has_nul(conn.models_cache, messages)


@pytest.mark.parametrize(
    "remote",
    [
        {"id": "asst_1", "object": "assistant", "name": "a\u0000", "model": "gpt-4o"},
        {"id": "asst_2", "object": "assistant", "model": "gpt-4o", "metadata": {"k": "\u0000"}},
        {
            "id": "asst_3",
            "object": "assistant",
            "model": "gpt-4o",
            "tools": [{"type": "function", "function": {"name": "f", "description": "\u0000"}}],
        },
    ],
    ids=["name", "metadata", "tools"],
)
def test_import_with_nul_from_provider_drops_it(remote, team, member, fake_upstream):
    # Was imported as is: a DataError (a 500 on import) on PostgreSQL.
    connection = fake_connection(team, fake_upstream, run_api="assistants")
    fake_upstream.queue(Reply.json({"object": "list", "data": [remote], "has_more": False}))
    response = raw(member).post(team_url("assistants:import", team, connection.pk))
    assert response.status_code == 302
    for helper in Assistant.objects.all():
        assert not _has_nul(helper.name, helper.metadata, helper.tools)


def _costs_page(buckets: list[dict[str, Any]]) -> Reply:
    return Reply.json({"object": "page", "data": buckets, "has_more": False, "next_page": None})


def _bucket(start: int = 1_792_886_400, value: Any = 1) -> dict[str, Any]:
    return {
        "object": "bucket",
        "start_time": start,
        "end_time": start + 86_400,
        "results": [{"amount": {"value": value, "currency": "usd"}, "line_item": "x"}],
    }


@pytest.mark.parametrize(
    "reply",
    [
        _costs_page([_bucket(value="1e-999999")]),
        _costs_page([_bucket(value="abc")]),
        _costs_page([{"object": "bucket", "start_time": "soon", "results": []}]),
        Reply.json({"object": "page", "data": [], "has_more": True, "next_page": "p1"}),
        _costs_page(
            [
                {
                    "object": "bucket",
                    "start_time": 1_792_886_400,
                    "results": [{"amount": {"value": 1, "currency": XSS}, "line_item": XSS}],
                }
            ]
        ),
    ],
    ids=["tiny", "text-amount", "text-start", "endless-pages", "xss"],
)
def test_costs_survive_odd_answers(reply, team, admin_user, conn, fake_upstream):
    conn.set_admin_key(ADMIN_KEY_OK)
    conn.save()
    fake_upstream.queue(reply, times=20)
    response = raw(admin_user).get(team_url("connections:costs", team, conn.pk))
    assert response.status_code == 200
    assert_sane(response)


@pytest.mark.parametrize(
    "bucket",
    [
        _bucket(start=10**20),
        _bucket(start=-(10**15)),
        _bucket(value=1e308),
        _bucket(value="1e999999"),
    ],
    ids=["start-huge", "start-negative", "amount-1e308", "amount-1e999999"],
)
def test_costs_with_out_of_range_numbers_explain(bucket, team, admin_user, conn, fake_upstream):
    # Were OverflowError / ValueError (datetime.fromtimestamp) and TypeError / OverflowError
    # (the chart's scale): a 500 on the costs page.
    conn.set_admin_key(ADMIN_KEY_OK)
    conn.save()
    fake_upstream.queue(_costs_page([bucket]))
    response = raw(admin_user).get(team_url("connections:costs", team, conn.pk))
    assert response.status_code == 200
    assert_sane(response)
    assert "Unexpected answer from the provider" in shown(response)


# --- forged requests, unknown paths, headers -----------------------------------------------


def test_posts_without_a_csrf_token_are_refused(team, owner):
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(owner)
    response = client.post(team_url("accounts:team_settings", team), {"name": "Forged"})
    assert response.status_code == 403
    team.refresh_from_db()
    assert team.name == "Acme"
    anonymous = Client(enforce_csrf_checks=True, raise_request_exception=False)
    login = anonymous.post(
        reverse("accounts:login"), {"username": owner.email, "password": PASSWORD}
    )
    assert login.status_code == 403


def test_pages_forbid_framing_and_sniffing(team, owner):
    response = raw(owner).get(team_url("dashboard:team_home", team))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


@pytest.mark.parametrize(
    "path",
    [
        "/%3Cscript%3Ealert(1)%3C/script%3E/",
        "/teams/%3Cscript%3Ealert(1)%3C%2Fscript%3E/",
        "/teams/not-a-uuid/connections/",
        "/static/../config/settings.py",
        "/static/%2e%2e/%2e%2e/config/settings.py",
    ],
)
def test_unknown_paths_are_404_and_escaped(path, owner):
    response = raw(owner).get(path)
    assert response.status_code == 404
    assert_sane(response)
    assert "SECRET_KEY" not in body(response)


@pytest.mark.parametrize("form", ["upper", "hex"])
def test_team_ids_in_other_spellings_do_not_crash(form, team, owner):
    team_id = str(team.pk).upper() if form == "upper" else team.pk.hex
    response = raw(owner).get(f"/teams/{team_id}/")
    assert response.status_code in (301, 302, 404)
    assert_sane(response)


# --- wrong types, oversized and malformed bodies -------------------------------------------


def test_json_body_on_a_form_view_re_renders_the_form(team, admin_user, fake_upstream):
    response = raw(admin_user).post(
        team_url("connections:create", team),
        data=json.dumps({"name": "J", "api_key": KEY_OK}),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert_sane(response)
    assert 'name="api_key"' in body(response)
    assert not Connection.objects.exists()
    assert fake_upstream.requests == []


def test_repeated_fields_and_files_in_text_fields(team, member, conn):
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = raw(member).post(
        team_url("assistants:create", team),
        {
            "connection": [str(conn.pk), "x"],
            "name": SimpleUploadedFile("a.txt", b"hello"),
            "model": ["gpt-4o", "nope"],
            "temperature": ["1", "abc"],
        },
    )
    assert response.status_code == 200
    assert_sane(response)


def test_oversized_and_too_many_fields_are_400(team, owner):
    client = raw(owner)
    url = team_url("accounts:team_settings", team)
    assert client.post(url, {"name": "x" * 3_000_000}).status_code == 400
    assert client.post(url, {f"f{i}": "1" for i in range(1500)}).status_code == 400
    query = "&".join(f"a{i}=1" for i in range(1500))
    assert client.get(team_url("assistants:runs", team) + "?" + query).status_code == 400
    team.refresh_from_db()
    assert team.name == "Acme"


def test_invalid_utf8_form_body_does_not_crash(team, owner):
    response = raw(owner).post(
        team_url("accounts:team_settings", team),
        data=b"name=%ff%fe",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code in (200, 302)
