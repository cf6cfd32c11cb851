"""Retired and retiring models are not offered for new assistants; an assistant already on one
keeps it, and its page warns, with a suggested replacement. OpenAI's table of retirements
applies to connections to api.openai.com; elsewhere the server's own `shutdown_date` counts.
No page here reaches the provider (the lists are stored on the connection)."""

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from tests.assistants.helpers import make_assistant
from tests.conftest import client_for
from tests.connections.helpers import make_connection

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pinned_clock")]

OFFICIAL_LIST = [
    {"id": "gpt-5.5", "object": "model", "created": 1770000000, "owned_by": "system"},
    {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},  # 2027
    {"id": "o4-mini", "object": "model", "created": 1744225351, "owned_by": "system"},  # gone
    {"id": "text-embedding-3-small", "object": "model", "created": 1705948997},
]


@pytest.fixture
def official(team):
    return make_connection(
        team,
        name="OpenAI",
        base_url="https://api.openai.com/v1",
        models_cache=OFFICIAL_LIST,
        models_cached_at=timezone.now(),
    )


def options(page: str) -> list[str]:
    select = page.split('name="model"', 1)[1].split("</select>", 1)[0]
    return [part.split('"', 1)[0] for part in select.split('<option value="')[1:]]


def test_the_create_picker_offers_only_current_chat_and_reasoning_models(member_client, official):
    page = member_client.get(reverse("assistants:create", args=[official.team_id])).content
    assert options(page.decode()) == ["", "gpt-5.5"]


def test_a_server_s_own_shutdown_date_counts_elsewhere(member_client, team, fake_upstream):
    connection = make_connection(
        team,
        base_url=fake_upstream.base_url,
        models_cache=[
            {"id": "gpt-4o", "object": "model"},
            {"id": "o4-mini", "object": "model"},  # in OpenAI's table, but not OpenAI here
            {"id": "old-chat", "object": "model", "shutdown_date": "2025-01-01"},
            {"id": "gpt-3.5-turbo", "object": "model", "shutdown_date": "2099-01-01"},
        ],
        models_cached_at=timezone.now(),
    )
    page = member_client.get(reverse("assistants:create", args=[team.pk])).content.decode()
    assert options(page) == ["", "gpt-4o", "o4-mini"]
    assert connection.pk


def test_the_edit_picker_keeps_the_assistant_s_current_model(member_client, official, owner):
    assistant = make_assistant(official.team, official, model="o4-mini", created_by=owner)
    url = reverse("assistants:edit", args=[official.team_id, assistant.pk])
    page = member_client.get(url).content.decode()
    assert options(page) == ["", "o4-mini", "gpt-5.5"]
    assert "“o4-mini”, was shut down on Oct. 23, 2026" in page
    assert "Suggested replacement: gpt-5.4-mini." in page
    assert "Choose another model below." in page


@pytest.mark.parametrize("role", ["viewer", "member", "admin", "owner"])
def test_an_assistant_on_a_shut_down_model_warns_every_role(users, official, owner, role):
    assistant = make_assistant(official.team, official, model="o4-mini", created_by=owner)
    url = reverse("assistants:detail", args=[official.team_id, assistant.pk])
    page = client_for(users[role]).get(url).content.decode()
    assert "This assistant's model, “o4-mini”, was shut down on Oct. 23, 2026" in page
    assert "Suggested replacement: gpt-5.4-mini." in page
    edit = reverse("assistants:edit", args=[official.team_id, assistant.pk])
    if role == "viewer":
        assert "A member of the team can choose another model." in page
        assert edit not in page
    else:
        assert f'<a href="{edit}">Choose another model</a>' in page


def test_an_assistant_on_a_deprecated_model_is_warned_with_the_date(member_client, official):
    assistant = make_assistant(official.team, official, model="gpt-4o")
    url = reverse("assistants:detail", args=[official.team_id, assistant.pk])
    page = member_client.get(url).content.decode()
    assert "“gpt-4o”, is deprecated: it shuts down on Jan. 14, 2027." in page
    assert "Suggested replacement: gpt-6.1-sol." in page


def test_no_warning_for_a_current_model_or_another_server(member_client, official, team):
    current = make_assistant(team, official, model="gpt-5.5")
    elsewhere = make_assistant(
        team, make_connection(team, name="Local", base_url="http://127.0.0.1:9/v1"), name="B"
    )
    for assistant in (current, elsewhere):
        url = reverse("assistants:detail", args=[team.pk, assistant.pk])
        assert "model-warning" not in member_client.get(url).content.decode()


# A request in Spanish leaves Spanish active in the thread: put English back after.
@translation.override("en")
def test_the_warning_in_spanish(member, official):
    assistant = make_assistant(official.team, official, model="o4-mini")
    client = client_for(member)
    url = reverse("assistants:detail", args=[official.team_id, assistant.pk])
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Sugerencia de reemplazo: gpt-5.4-mini." in page
