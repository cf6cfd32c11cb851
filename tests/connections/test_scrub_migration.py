"""The data migrations that clean what an echoing provider could have had stored before the
client masked every field (`connections` and `assistants`, "scrub_echoed_keys")."""

from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connection as db
from django.db.migrations.loader import MigrationLoader

from assistants.models import Run, RunStatus
from connections.models import ConnectionErrorEvent
from tests.assistants.helpers import make_assistant, make_run
from tests.connections.helpers import CANARY_KEY, make_connection
from tests.connections.test_leaks import CANARY_ADMIN_KEY, assert_no_canary

pytestmark = pytest.mark.django_db


def _scrub(app: str) -> None:
    """Run the app's scrub migration's function (found by name: numbers may change)."""
    loader = MigrationLoader(db, ignore_no_migrations=True)
    (migration,) = [
        migration
        for (label, name), migration in loader.disk_migrations.items()
        if label == app and name.endswith("_scrub_echoed_keys")
    ]
    (operation,) = migration.operations
    operation.code(apps, SimpleNamespace(connection=db))


def test_stored_echoes_of_the_key_are_scrubbed(team):
    connection = make_connection(
        team,
        key=CANARY_KEY,
        last_error=f"Invalid request (400) ({CANARY_KEY})",
        rate_limit={
            "limit_requests": 60,
            "remaining_requests": CANARY_KEY[3:],
            "reset_tokens": "1s",
        },
        models_cache=[{"id": "gpt-4o", "owned_by": CANARY_ADMIN_KEY}],
    )
    connection.set_admin_key(CANARY_ADMIN_KEY)
    connection.save()
    event = ConnectionErrorEvent.objects.create(
        connection=connection,
        kind="bad_request",
        code=CANARY_KEY[3:],
        request_id=CANARY_ADMIN_KEY,
        message=f"Bad key {CANARY_KEY.upper()}",
        operation="connection.test",
    )
    plain = ConnectionErrorEvent.objects.create(
        connection=connection,
        kind="rate_limited",
        code="rate_limit_exceeded",
        request_id="req_123",
        message="Rate limit reached.",
        operation="connection.test",
    )
    assistant = make_assistant(team, connection, last_error=f"Failed ({CANARY_KEY})")
    run = make_run(
        assistant,
        status=RunStatus.FAILED,
        last_error_code=CANARY_KEY,
        last_error_message=f"Sorry {CANARY_KEY[3:]}",
    )

    _scrub("connections")
    _scrub("assistants")

    connection.refresh_from_db()
    event.refresh_from_db()
    assert (event.code, event.request_id) == ("", "")
    assert event.message == "Bad key sk-…wxyz"
    plain.refresh_from_db()
    assert (plain.code, plain.request_id, plain.message) == (
        "rate_limit_exceeded",
        "req_123",
        "Rate limit reached.",
    )
    assert connection.rate_limit == {
        "limit_requests": 60,
        "remaining_requests": None,
        "reset_tokens": "1s",
    }
    assert connection.models_cache[0]["id"] == "gpt-4o"
    run = Run.objects.get(pk=run.pk)
    assert run.last_error_code == "" and run.last_error_message.startswith("Sorry ")
    with db.cursor() as cursor:
        for table in db.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {db.ops.quote_name(table)}")
            assert_no_canary(repr(cursor.fetchall()), f"table {table}")
