"""Creating an assistant: model from the connection's list, tools, settings, validation, and
what happens when the provider fails."""

import json
import uuid

import pytest
from django.urls import reverse

from assistants.models import Assistant, SyncState
from connections import services as connection_services
from fakeprovider import KEY_INVALID, KEY_QUOTA
from tests.assistants.helpers import check_refusals, fake_connection

pytestmark = pytest.mark.django_db

FUNCTION = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def url(team) -> str:
    return reverse("assistants:create", kwargs={"team_id": team.pk})


def form_data(connection, **extra):
    return {
        "connection": connection.pk,
        "name": "Math Tutor",
        "description": "Helps with maths",
        "instructions": "You are a personal math tutor.",
        "model": "gpt-4o",
        "code_interpreter": "on",
        "functions": "",
        "temperature": "",
        "top_p": "",
        "metadata": "",
        **extra,
    }


def test_form_offers_the_connections_chat_models(team, connection, member_client):
    response = member_client.get(url(team))

    assert response.status_code == 200
    content = response.content.decode()
    assert '<option value="gpt-4o">' in content
    assert '<option value="o3">' in content
    assert "whisper-1" not in content
    assert "text-embedding-3-small" not in content
    assert "Assistants API" in content


def test_model_list_failure_falls_back_to_typing_with_an_explanation(team, fake, member_client):
    connection = fake_connection(team, fake, key=KEY_INVALID)
    connection_services.models_refresh(connection=connection, user=None)  # refused

    response = member_client.get(url(team), {"connection": connection.pk})

    content = response.content.decode()
    assert response.status_code == 200
    assert "Invalid authentication (401)" in content
    assert 'type="text" name="model"' in content


def test_connection_can_be_chosen(team, connection, fake, member_client):
    second = fake_connection(team, fake, name="Second", run_api="responses")

    content = member_client.get(url(team), {"connection": second.pk}).content.decode()

    assert "Assistant on “Second”" in content
    assert "Responses API" in content
    assert f'value="{second.pk}"' in content


def test_create_on_the_assistants_api(team, connection, fake, member_client, member):
    data = form_data(
        connection,
        functions=json.dumps([FUNCTION]),
        temperature="0.2",
        metadata='{"team": "maths"}',
    )

    response = member_client.post(url(team), data)

    assistant = Assistant.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "assistants:detail", kwargs={"team_id": team.pk, "assistant_id": assistant.pk}
    )
    assert assistant.created_by == member
    assert assistant.sync_state == SyncState.SYNCED
    assert assistant.tools == [
        {"type": "code_interpreter"},
        {"type": "function", "function": FUNCTION},
    ]
    assert assistant.temperature == 0.2
    assert assistant.metadata == {"team": "maths"}
    sent = fake.requests_to("/v1/assistants", "POST")[0].json
    assert sent["tools"] == assistant.tools
    assert sent["model"] == "gpt-4o"
    page = member_client.get(response["Location"]).content.decode()
    assert "Assistant created." in page


def test_retrieval_tool_becomes_file_search(team, connection, fake, member_client):
    data = form_data(connection, code_interpreter="", functions='[{"type": "retrieval"}]')

    member_client.post(url(team), data)

    assert Assistant.objects.get().tools == [{"type": "file_search"}]
    assert fake.requests_to("/v1/assistants", "POST")[0].json["tools"] == [{"type": "file_search"}]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("functions", "[{", "This is not valid JSON"),
        ("functions", '{"name": "x"}', "Give a JSON list"),
        ("functions", '[{"name": "bad name!"}]', "the name must be 1 to 64 letters"),
        ("functions", '[{"name": "f", "parameters": [1]}]', "must be a JSON Schema object"),
        ("functions", '[{"name": "f"}, {"name": "f"}]', "repeated: f"),
        ("functions", '[{"type": "browser"}]', "unknown tool type"),
        ("metadata", '{"a": 1}', "must be text"),
        ("metadata", json.dumps({f"k{n}": "v" for n in range(17)}), "At most 16"),
        ("metadata", "[]", "Give a JSON object"),
        ("temperature", "3", "less than or equal to 2"),
        ("top_p", "-1", "greater than or equal to 0"),
        ("model", "gpt-nope", "Select a valid choice"),
        ("name", "", "This field is required"),
    ],
)
def test_invalid_input_is_shown_at_the_field_and_nothing_is_lost(
    team, connection, fake, member_client, field, value, message
):
    data = form_data(connection, **{field: value})

    response = member_client.post(url(team), data)

    assert response.status_code == 200
    content = response.content.decode()
    assert message in content
    assert "You are a personal math tutor." in content
    assert not Assistant.objects.exists()
    assert fake.requests_to("/v1/assistants", "POST") == []


def test_provider_failure_keeps_the_assistant_and_explains(team, fake, member_client):
    connection = fake_connection(team, fake, key=KEY_QUOTA, run_api="assistants")
    data = form_data(connection, model="gpt-4o")

    # The model list fails too (same key): the model is typed in.
    response = member_client.post(url(team), data, follow=True)

    assistant = Assistant.objects.get()
    assert assistant.sync_state == SyncState.FAILED
    content = response.content.decode()
    assert "Saved in Tablero, but not on the provider" in content
    assert "You exceeded your current quota" in content
    assert "Retry sync" in content


def test_another_teams_connection_is_refused(team, other_team, connection, fake, member_client):
    foreign = fake_connection(other_team, fake, name="Foreign")

    response = member_client.post(url(team), form_data(foreign))

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Assistant.objects.exists()


def test_without_connections(team, member_client):
    response = member_client.get(url(team))
    assert "there is none yet" in response.content.decode()


def test_refusals(team, users, connection):
    check_refusals(users, url(team), min_role="member")
    check_refusals(users, url(team), min_role="member", method="post", data=form_data(connection))
    assert not Assistant.objects.exists()


def test_unknown_team_is_404(owner_client):
    response = owner_client.get(reverse("assistants:create", kwargs={"team_id": uuid.uuid4()}))
    assert response.status_code == 404


DEEP_PARAMETERS = json.dumps(
    [{"name": "f", "parameters": {"type": "object", "x": "DEEP"}}]
).replace('"DEEP"', "[" * 40 + "]" * 40)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        # Python's JSON parser gives up with a RecursionError on deep nesting.
        ("functions", "[" * 5000, "nested more than 32 levels deep"),
        ("functions", DEEP_PARAMETERS, "nested more than 32 levels deep"),
        # PostgreSQL refuses NUL characters in JSON (and text).
        ("functions", '[{"name": "f", "description": "a\\u0000b"}]', "cannot contain NUL"),
        ("metadata", '{"team": "a\\u0000b"}', "cannot contain NUL"),
        # NaN and Infinity are not JSON: the database's JSON columns refuse them.
        ("functions", '[{"name": "f", "parameters": {"type": "object", "x": NaN}}]', "finite"),
        ("functions", '[{"name": "f", "parameters": {"type": "object", "x": 1e999}}]', "finite"),
        # Half of a surrogate pair is no character: no database, page or log encodes it.
        ("metadata", '{"team": "\\ud800"}', "lone surrogate"),
        ("metadata", '{"\\udfff": "v"}', "lone surrogate"),
        ("functions", '[{"name": "f", "description": "\\ud83dx"}]', "lone surrogate"),
    ],
)
def test_json_the_database_cannot_store_is_refused_at_the_field(
    team, connection, fake, member_client, field, value, message
):
    response = member_client.post(url(team), form_data(connection, **{field: value}))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Assistant.objects.exists()
    assert fake.requests_to("/v1/assistants", "POST") == []
