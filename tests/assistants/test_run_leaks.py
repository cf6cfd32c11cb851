"""A run whose error echoes the connection's key, or its admin key, in any form.

The run APIs carry an error back in the run itself (`last_error` of a thread run, `error` of
a response, `incomplete_details.reason`), and asking about a run can fail with an error that
echoes the key. None of it may reach a page of any role, the admin, the audit CSV, the log or
the database.
"""

import logging

import pytest
from django.db import connection as db
from django.urls import reverse

from accounts.models import Membership, Role
from assistants import services
from assistants.models import Run, RunStatus
from fakeprovider import Reply
from tests.assistants.helpers import fake_connection, let_poll, make_assistant, poll
from tests.conftest import client_for, make_user
from tests.connections.helpers import CANARY_KEY
from tests.connections.test_leaks import CANARY_ADMIN_KEY, FORMS, assert_no_canary

pytestmark = pytest.mark.django_db


@pytest.fixture
def logs(caplog):
    for name in [None, *logging.root.manager.loggerDict]:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def superuser(team):
    user = make_user("root@example.com", is_staff=True, is_superuser=True)
    Membership.objects.create(team=team, user=user, role=Role.OWNER)
    return user


def _run_answer(run: Run, status: str, echo: str) -> Reply:
    """The run as the provider describes it, its error or reason echoing the key."""
    error = {"code": echo, "message": f"Sorry, something went wrong with {echo}."}
    if run.backend == "responses":
        body = {
            "id": run.response_id,
            "object": "response",
            "status": status,
            "error": error if status == "failed" else None,
            "output": [],
        }
    else:
        body = {
            "id": run.remote_run_id,
            "object": "thread.run",
            "thread_id": run.thread_id,
            "status": status,
            "last_error": error if status == "failed" else None,
        }
    if status == "incomplete":
        body["incomplete_details"] = {"reason": echo}
    return Reply.json(body)


def _poll_error(run: Run, status: str, echo: str) -> Reply:
    return Reply.error(
        400,
        f"Invalid request with {echo}",
        "invalid_request_error",
        echo,
        param=echo,
        headers={"x-request-id": echo},
    )


ENDINGS = {"failed": _run_answer, "incomplete": _run_answer, "poll error": _poll_error}
CASES = [
    (backend, ending, "whole") for backend in ("assistants", "responses") for ending in ENDINGS
] + [("responses", "failed", form) for form in FORMS if form != "whole"]


@pytest.mark.parametrize(("backend", "ending", "form"), CASES)
def test_a_run_error_that_echoes_the_key_appears_nowhere(
    team, users, superuser, fake, logs, backend, ending, form
):
    connection = fake_connection(team, fake, key=CANARY_KEY, run_api=backend)
    connection.set_admin_key(CANARY_ADMIN_KEY)
    connection.save()
    assistant = make_assistant(team, connection, created_by=users["member"], sync_state="pending")
    fake.run_step_seconds = 30
    run = let_poll(
        services.run_start(assistant=assistant, user=users["member"], message="Hi").value
    )
    assert run.status == RunStatus.QUEUED
    fake.queue(ENDINGS[ending](run, ending, FORMS[form]))

    one = {"team_id": team.pk, "run_id": run.pk}
    polled = poll(client_for(users["member"]), run)

    run.refresh_from_db()
    if ending == "poll error":
        assert run.last_error_kind == "bad_request"
    else:
        assert run.status == ending
        assert run.last_error_code == ""  # not shaped like a code once masked
    if ending == "failed":
        assert "Sorry, something went wrong with" in run.last_error_message
    assert_no_canary(_read(polled), f"the run's status ({backend}, {ending}, {form})")
    pages = [
        reverse("assistants:run_detail", kwargs=one),
        reverse("assistants:run_status", kwargs=one),
        reverse("assistants:runs", kwargs={"team_id": team.pk}),
        reverse("assistants:detail", kwargs={"team_id": team.pk, "assistant_id": assistant.pk}),
    ]
    for role in ("owner", "admin", "member", "viewer"):
        client = client_for(users[role])
        for url in pages:
            response = client.get(url)
            assert response.status_code == 200, (role, url)
            assert_no_canary(_read(response), f"{url} seen by the {role} ({ending}, {form})")
    client = client_for(superuser)
    for url in (
        reverse("accounts:audit_export", kwargs={"team_id": team.pk}),
        reverse("admin:assistants_run_changelist"),
        reverse("admin:assistants_run_change", args=[run.pk]),
        reverse("admin:assistants_assistant_change", args=[assistant.pk]),
        reverse("admin:connections_connectionerrorevent_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_canary(_read(response), f"{url} ({ending}, {form})")
    assert_no_canary(logs.text, f"the logs ({ending}, {form})")
    with db.cursor() as cursor:
        for table in db.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {db.ops.quote_name(table)}")
            assert_no_canary(repr(cursor.fetchall()), f"table {table} ({ending}, {form})")


def _read(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")
