"""Hostile and clumsy input that crosses the apps: the escaping sweep over every page as every
role, HTTP methods, another team's objects in our URLs, answers deep enough to break a parser,
forged requests and malformed bodies. Each app's own forms and provider answers are tried in
tests/<app>/test_hostile_inputs.py; the payloads and helpers are in tests/hostile.py.

Every request goes through the Django test client as one of the fixture roles; provider calls
go to the fake on loopback (the fakeprovider package), with `fake_upstream.queue(...)` for bad
answers. The client does not re-raise view exceptions (`raise_request_exception=False`), so a
crash shows up as what the user would get: a 500.

Tests marked `xfail(strict=True)` pin defects found this way; each reason says what breaks.
Whoever fixes one removes its mark.
"""

import json

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent, Invitation, Membership
from accounts.tokens import invitation_token
from assistants.models import Run, RunStatus
from connections.models import Connection
from fakeprovider import ADMIN_KEY_OK, KEY_OK, Reply
from tests import hostile
from tests.accounts.helpers import make_invitation
from tests.assistants.helpers import fake_connection, make_assistant, make_run
from tests.conftest import PASSWORD
from tests.hostile import (
    EMOJI,
    RTL,
    XSS,
    assert_sane,
    body,
    raw,
    shown,
    team_url,
)

# Fixtures from tests/hostile.py (see there why they are named here).
conn = hostile.conn
other_conn = hostile.other_conn
assistant = hostile.assistant


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
        team_url("accounts:invitation_revoke", team, objects["invitation"].pk),
        team_url("connections:test", team, conn.pk),
        team_url("connections:models_refresh", team, conn.pk),
        team_url("connections:costs_refresh", team, conn.pk),
        team_url("connections:admin_key_remove", team, conn.pk),
        team_url("assistants:sync", team, assistant.pk),
        team_url("assistants:import", team, conn.pk),
        team_url("assistants:run_start", team, assistant.pk),
        reverse("accounts:logout"),
    ]


def _confirmed_urls(team, objects) -> list[str]:
    """Destructive actions whose GET is a confirmation page, and only POST acts."""
    return [
        team_url("accounts:member_remove", team, objects["membership"].pk),
        team_url("assistants:run_cancel", team, objects["run"].pk),
    ]


def test_get_on_post_only_urls_is_405_and_changes_nothing(
    team, owner, member, conn, assistant, objects, fake_upstream
):
    client = raw(owner)
    for url in _post_only_urls(team, conn, assistant, objects):
        for method in ("get", "put", "delete"):
            response = getattr(client, method)(url)
            assert response.status_code == 405, (method, url)
    for url in _confirmed_urls(team, objects):
        assert client.get(url).status_code in (200, 302), url  # asks first (or nothing to do)
        for method in ("put", "delete"):
            assert getattr(client, method)(url).status_code == 405, (method, url)
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


# --- assistants ----------------------------------------------------------------------------


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


# --- bad answers from the provider that used to break a page -------------------------------


_NESTED = Reply(200, b"[" * 100_000 + b"]" * 100_000, {"Content-Type": "application/json"})


@pytest.mark.parametrize(
    "where", ["run_start", "connection_test", "error_body"], ids=["run", "test", "error"]
)
def test_deeply_nested_provider_answer_is_explained(
    where, team, admin_user, assistant, conn, fake_upstream
):
    # Was a RecursionError from json.loads in the provider client: a 500.
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
