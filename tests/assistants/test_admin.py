"""The admin site's assistant form checks tools and metadata as the app's form does."""

import json

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from assistants import services
from assistants.models import Assistant, SyncState
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def su_client(db):
    return client_for(make_user("root@example.com", is_staff=True, is_superuser=True))


def change_url(assistant) -> str:
    return reverse("admin:assistants_assistant_change", args=[assistant.pk])


def form_data(assistant, **overrides) -> dict:
    return {
        "team": assistant.team_id,
        "connection": assistant.connection_id,
        "name": assistant.name,
        "description": "",
        "instructions": assistant.instructions,
        "model": assistant.model,
        "tools": json.dumps(assistant.tools),
        "temperature": "",
        "top_p": "",
        "metadata": "{}",
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        **overrides,
    }


def test_valid_json_is_saved(su_client, assistant):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    response = su_client.post(
        change_url(assistant),
        form_data(assistant, tools=json.dumps(tools), metadata='{"team": "support"}'),
    )

    assert response.status_code == 302
    assistant.refresh_from_db()
    assert assistant.tools == tools
    assert assistant.metadata == {"team": "support"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("metadata", "[" * 100_000 + "]" * 100_000, "nested more than 32 levels deep"),
        ("tools", "[" * 40 + "]" * 40, "nested more than 32 levels deep"),
        ("tools", '[{"type": "function", "function": {"name": "f", "x": NaN}}]', "finite"),
        ("tools", '[{"type": "function", "function": {"name": "f", "x": 1e999}}]', "finite"),
        ("metadata", '{"k": "\\u0000"}', "cannot contain NUL"),
        ("metadata", '{"k": "\\ud800"}', "lone surrogate"),
        ("metadata", '{"\\udfff": "v"}', "lone surrogate"),
    ],
    ids=["deep", "deep-tools", "nan", "infinity", "nul", "surrogate", "surrogate-key"],
)
def test_json_the_database_cannot_store_is_refused(su_client, assistant, field, value, message):
    before = (assistant.tools, assistant.metadata)

    response = su_client.post(change_url(assistant), form_data(assistant, **{field: value}))

    assert response.status_code == 200
    page = response.content.decode()
    assert message in page
    assistant.refresh_from_db()
    assert (assistant.tools, assistant.metadata) == before
    assert su_client.get(change_url(assistant)).status_code == 200


# --- one write path: the admin goes through the services ----------------------------------------


def test_an_admin_change_is_audited_and_sent_to_the_provider(su_client, assistant, fake):
    response = su_client.post(change_url(assistant), form_data(assistant, name="Renamed"))

    assert response.status_code == 302
    assistant.refresh_from_db()
    assert assistant.name == "Renamed"
    assert AuditEvent.objects.filter(action="assistant.update").count() == 1
    (created,) = fake.requests_to("/v1/assistants", "POST")
    assert created.json["name"] == "Renamed"
    assert assistant.sync_state == SyncState.SYNCED and assistant.remote_id


def test_an_assistant_added_in_the_admin_is_created_as_the_page_creates_it(
    su_client, assistant, fake
):
    response = su_client.post(
        reverse("admin:assistants_assistant_add"), form_data(assistant, name="From the admin")
    )

    assert response.status_code == 302
    added = Assistant.objects.get(name="From the admin")
    assert AuditEvent.objects.filter(action="assistant.create", target_id=str(added.pk)).exists()
    (created,) = fake.requests_to("/v1/assistants", "POST")
    assert created.json["name"] == "From the admin"
    assert added.remote_id == created_id(fake)


def test_an_admin_delete_deletes_the_remote_copy_first(su_client, team, member, connection, fake):
    made = services.assistant_create(
        team=team,
        user=member,
        connection=connection,
        data={"name": "Doomed", "model": "gpt-4o", "instructions": "", "tools": []},
    ).value
    delete_url = reverse("admin:assistants_assistant_delete", args=[made.pk])

    response = su_client.post(delete_url, {"post": "yes"})

    assert response.status_code == 302
    assert not Assistant.objects.filter(pk=made.pk).exists()
    assert fake.requests_to(f"/v1/assistants/{made.remote_id}", "DELETE")
    assert AuditEvent.objects.filter(action="assistant.delete").count() == 1


def created_id(fake) -> str:
    return next(iter(fake.state["assistants"]))
