"""Runs made before conversations become one-turn conversations (migrations 0009 and 0010).

Runs on SQLite and, with DATABASE_URL set, on PostgreSQL (which refuses to alter a table in
the transaction that updated its rows under a deferred foreign key: hence two migrations)."""

import pytest
from django.db import connection as db_connection
from django.db.migrations.executor import MigrationExecutor

from assistants.models import Run
from tests.assistants.helpers import fake_connection, make_assistant, make_run

BEFORE = [("assistants", "0008_list_indexes")]
AFTER = [("assistants", "0010_run_conversation_required")]


@pytest.mark.django_db(transaction=True)
def test_existing_runs_become_one_turn_conversations(team, member, fake_upstream):
    assistant = make_assistant(team, fake_connection(team, fake_upstream))
    runs = [make_run(assistant, started_by=member, input=f"Question {n}") for n in range(3)]
    executor = MigrationExecutor(db_connection)
    executor.migrate(BEFORE)
    try:
        executor = MigrationExecutor(db_connection)
        executor.migrate(AFTER)
        Migrated = executor.loader.project_state(AFTER).apps.get_model("assistants", "Run")
        rows = list(Migrated.objects.values_list("pk", "conversation_id", "turn", "is_latest"))
    finally:
        executor = MigrationExecutor(db_connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert sorted(rows) == sorted((run.pk, run.pk, 1, True) for run in runs)
    assert Run.objects.filter(is_latest=True).count() == 3
