"""A team's connection names are unique whatever their case, in the forms and in the database.

Runs on SQLite and, with DATABASE_URL set, on PostgreSQL: the error a save gets back from the
database differs between them, the message the user sees must not.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from accounts.models import AuditEvent
from connections import services
from connections.models import Connection
from fakeprovider import KEY_OK
from provider.client import ProviderClient
from tests.connections.helpers import make_connection

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 1, tzinfo=UTC)
TAKEN = "This team already has a connection with this name."


def test_the_database_refuses_a_name_that_differs_only_in_case(team):
    make_connection(team, name="Production")
    other_case = Connection(team=team, name="production")
    other_case.set_api_key(KEY_OK)

    with pytest.raises(IntegrityError), transaction.atomic():
        other_case.save()

    assert list(Connection.objects.values_list("name", flat=True)) == ["Production"]


def test_another_team_may_use_the_name(team, other_team):
    make_connection(team, name="Production")
    make_connection(other_team, name="production")
    assert Connection.objects.count() == 2


def test_the_create_form_refuses_the_name_in_another_case(admin_client_, team, fake_upstream):
    make_connection(team, name="Production")

    response = admin_client_.post(
        reverse("connections:create", args=[team.pk]),
        {
            "name": "PRODUCTION",
            "provider": "openai",
            "base_url": fake_upstream.base_url,
            "api_key": KEY_OK,
        },
    )

    assert response.status_code == 200
    assert TAKEN in response.content.decode()
    assert fake_upstream.requests == []  # refused before the provider was asked
    assert Connection.objects.count() == 1


def test_a_name_taken_in_another_case_while_the_key_was_checked(
    admin_client_, admin_user, team, fake_upstream, monkeypatch
):
    """Another admin adds "production" while this request waits for the provider to check
    the key of "Production": the save that follows meets the database's unique index."""
    real = ProviderClient.list_models

    def list_models(client: ProviderClient):
        try:
            return real(client)
        finally:
            make_connection(team, name="production", base_url=fake_upstream.base_url)

    monkeypatch.setattr(ProviderClient, "list_models", list_models)

    response = admin_client_.post(
        reverse("connections:create", args=[team.pk]),
        {
            "name": "Production",
            "provider": "openai",
            "base_url": fake_upstream.base_url,
            "api_key": KEY_OK,
        },
    )

    assert response.status_code == 200
    assert TAKEN in response.content.decode()
    assert list(Connection.objects.values_list("name", flat=True)) == ["production"]
    assert not AuditEvent.objects.filter(action="connection.create").exists()


def test_renaming_to_a_name_taken_in_another_case_is_a_name_error(owner, team):
    make_connection(team, name="Production")
    research = make_connection(team, name="Research")

    with pytest.raises(ValidationError) as caught:
        services.connection_update(
            connection=research,
            user=owner,
            name="production",
            organization_id="",
            project_id="",
            api_version="",
            run_api="auto",
        )

    assert caught.value.message_dict == {"name": [TAKEN]}
    research.refresh_from_db()
    assert research.name == "Research"
    assert not AuditEvent.objects.filter(action="connection.update").exists()


def test_a_connection_may_change_the_case_of_its_own_name(owner_client, team):
    connection = make_connection(team, name="production")

    response = owner_client.post(
        reverse("connections:edit", args=[team.pk, connection.pk]),
        {"name": "Production", "run_api": "auto"},
        follow=True,
    )

    assert "Connection updated." in response.content.decode()
    connection.refresh_from_db()
    assert connection.name == "Production"


@pytest.mark.django_db(transaction=True)
def test_the_migration_renames_names_that_differ_only_in_case(team, other_team):
    before = [("connections", "0001_initial")]
    after = [("connections", "0002_name_unique_ignores_case")]
    executor = MigrationExecutor(db_connection)
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        OldConnection = old_apps.get_model("connections", "Connection")
        rows = [
            ("Production", team.pk),
            ("production", team.pk),
            ("PRODUCTION", team.pk),
            ("production (2)", team.pk),
            ("production", other_team.pk),
        ]
        for age, (name, team_id) in enumerate(rows):
            OldConnection.objects.create(
                team_id=team_id,
                name=name,
                api_key_encrypted="x",
                created_at=START + timedelta(minutes=age),
            )
        executor = MigrationExecutor(db_connection)
        executor.migrate(after)
        MigratedConnection = executor.loader.project_state(after).apps.get_model(
            "connections", "Connection"
        )
        names = sorted(
            MigratedConnection.objects.filter(team_id=team.pk).values_list("name", flat=True)
        )
        other = MigratedConnection.objects.get(team_id=other_team.pk).name
    finally:
        # Back to the latest schema, whatever later migrations there are, for the next tests.
        executor = MigrationExecutor(db_connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert names == ["PRODUCTION (4)", "Production", "production (2)", "production (3)"]
    assert other == "production"
