"""Hostile and clumsy input to the connection pages, and bad answers from the provider to them:
connection forms, models, costs. The cross-app sweep is tests/test_hostile_inputs.py; payloads
and helpers are in tests/hostile.py."""

import uuid
from typing import Any

import pytest

from connections.models import Connection
from fakeprovider import ADMIN_KEY_OK, KEY_OK, Reply
from tests import hostile
from tests.hostile import (
    ONE_MB,
    XSS,
    assert_sane,
    body,
    form_errors,
    has_nul,
    raw,
    shown,
    team_url,
)

# Fixtures from tests/hostile.py (see there why they are named here).
conn = hostile.conn


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
    response = raw(member).post(team_url("connections:models_refresh", team, conn.pk), follow=True)
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
    assert "This model is not in the model list" in shown(response)


# --- bad answers from the provider that are handled ----------------------------------------


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


# --- bad answers from the provider that used to break a page -------------------------------


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
    assert not has_nul(conn.models_cache, messages)


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
    client = raw(admin_user)
    client.post(team_url("connections:costs_refresh", team, conn.pk))
    response = client.get(team_url("connections:costs", team, conn.pk))
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
    client = raw(admin_user)
    client.post(team_url("connections:costs_refresh", team, conn.pk))
    response = client.get(team_url("connections:costs", team, conn.pk))
    assert response.status_code == 200
    assert_sane(response)
    assert "Unexpected answer from the provider" in shown(response)
