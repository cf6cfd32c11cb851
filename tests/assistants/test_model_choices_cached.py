"""The assistant create and edit forms offer the models Tablero last fetched, and say when; a
connection whose list was never fetched gets a fetch queued and the page says "Models not yet
fetched". No page request reaches the provider: every outgoing HTTP call fails the test.

Huey runs as a deployment has it here (`queued`): the fetch waits in the queue until the test
runs it as a consumer would."""

from unittest import mock

import httpx
import pytest
from django.urls import reverse

from tests.assistants.helpers import fake_connection, make_assistant
from tests.taskqueue import empty_queue, queued, queued_names, run_queued  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("queued")]


def _no_network(*args, **kwargs):
    raise AssertionError("a page request called the provider")


def page(client, url: str) -> str:
    with mock.patch.object(httpx.Client, "send", _no_network):
        response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def never_fetched(team, owner, fake_upstream):
    """A connection whose model list Tablero never fetched."""
    connection = fake_connection(team, fake_upstream, created_by=owner)
    assert connection.models_cached_at is None and not connection.models_cache
    return connection


def test_the_create_form_queues_a_fetch_and_says_models_not_yet_fetched(
    never_fetched, member_client, fake_upstream, pinned_clock
):
    url = reverse("assistants:create", args=[never_fetched.team_id])

    shown = page(member_client, url)

    assert "Models not yet fetched" in shown
    assert "It is fetching the list now" in shown
    assert 'name="model"' in shown and "<select" not in shown.split('name="model"')[0][-200:]
    assert queued_names() == ["connection_models_refresh"]
    page(member_client, url)  # opened again: the fetch is not queued twice
    assert queued_names() == ["connection_models_refresh"]
    assert fake_upstream.requests == []

    run_queued()  # the consumer fetches the list
    pinned_clock.shift(120)

    shown = page(member_client, url)
    assert "Models not yet fetched" not in shown
    assert "The models below are the list Tablero fetched 2\xa0minutes ago." in shown
    assert '<option value="gpt-4o"' in shown
    assert queued_names() == []


def test_the_edit_form_offers_the_cached_list_without_asking(
    team, connection, member, member_client, fake_upstream
):
    """`connection` (conftest) had its list fetched as adding it through its page does."""
    assistant = make_assistant(team, connection, created_by=member)
    url = reverse("assistants:edit", args=[team.pk, assistant.pk])

    shown = page(member_client, url)

    assert '<option value="gpt-4o" selected>' in shown
    assert "The models below are the list Tablero fetched" in shown
    assert "Models not yet fetched" not in shown
    assert queued_names() == []
    assert fake_upstream.requests == []


def test_the_edit_form_of_a_never_fetched_connection_lets_the_model_be_typed(
    team, never_fetched, member, member_client, fake_upstream
):
    assistant = make_assistant(team, never_fetched, created_by=member)

    shown = page(member_client, reverse("assistants:edit", args=[team.pk, assistant.pk]))

    assert "Models not yet fetched" in shown
    assert 'value="gpt-4o"' in shown  # the typed field keeps the assistant's model
    assert queued_names() == ["connection_models_refresh"]
    assert fake_upstream.requests == []
