"""Hostile and clumsy input to the assistant and run pages, and bad answers from the provider to
them. The cross-app sweep is tests/test_hostile_inputs.py; payloads and helpers are in
tests/hostile.py."""

import json
from typing import Any

import pytest
from django.urls import reverse

from assistants.models import Assistant, Run, RunStatus
from connections.models import Connection
from fakeprovider import Reply
from tests import hostile
from tests.assistants.helpers import fake_connection, make_assistant, make_run
from tests.hostile import (
    DEEP_LIST,
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
other_conn = hostile.other_conn
assistant = hostile.assistant


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
    assert not has_nul(assistant.metadata, assistant.tools)


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
    assert not has_nul(
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
    assert not has_nul(run.last_error_message, run.last_error_code, events)


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
        assert not has_nul(helper.name, helper.metadata, helper.tools)
