"""A model's page shows the model as the list Tablero last fetched describes it, and when; it
never asks the provider (any outgoing HTTP call during the page request fails these tests)."""

import re
from datetime import timedelta
from unittest import mock

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from connections import services
from connections.models import ConnectionErrorEvent
from fakeprovider import KEY_INVALID, KEY_OK
from tests.connections.helpers import make_connection

pytestmark = pytest.mark.django_db


def url(connection, model_id: str) -> str:
    return reverse(
        "connections:model_detail",
        kwargs={
            "team_id": connection.team_id,
            "connection_id": connection.pk,
            "model_id": model_id,
        },
    )


def _no_network(*args, **kwargs):
    raise AssertionError("a page request called the provider")


def get(client, path: str, method: str = "get"):
    with mock.patch.object(httpx.Client, "send", _no_network):
        return getattr(client, method)(path)


@pytest.fixture
def connection(team, fake_upstream, pinned_clock):
    """A connection whose model list was fetched three minutes ago."""
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    services.models_refresh(connection=connection, user=None)
    fake_upstream.requests.clear()
    pinned_clock.shift(timedelta(minutes=3))
    connection.refresh_from_db()
    return connection


def facts(page: str) -> dict[str, str]:
    """The model's description list, as text: term → what it says."""
    pairs = re.findall(r"<dt>(.*?)</dt><dd[^>]*>(.*?)</dd>", page, re.S)
    return {
        term: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", value)).strip() for term, value in pairs
    }


def test_the_model_in_human_terms_and_when_it_was_fetched(viewer_client, connection, fake_upstream):
    response = get(viewer_client, url(connection, "gpt-4-0613"))

    assert response.status_code == 200
    page = response.content.decode()
    assert facts(page) == {
        "Used for": "Chat",
        "Assistants": "Existing assistants may keep it until it shuts down; new ones cannot "
        "pick it.",
        "Owner": "OpenAI",
        "Created": "June 12, 2023",
        "Status": "deprecated: shuts down on June 6, 2099",
    }
    assert "This model is deprecated: it shuts down on June 6, 2099." in page
    assert "when Tablero fetched the model list, 3\xa0minutes ago" in page
    # Human terms, not the provider's raw fields.
    assert "owned_by" not in page and "shutdown_date" not in page and "1686588896" not in page
    assert fake_upstream.requests == []


def test_an_embeddings_model_says_assistants_cannot_use_it(viewer_client, connection):
    page = get(viewer_client, url(connection, "text-embedding-3-small")).content.decode()
    assert facts(page)["Used for"] == "Embeddings"
    assert facts(page)["Assistants"].startswith("Assistants cannot use it")


def test_a_fine_tuned_model_names_its_base_and_owner(viewer_client, connection):
    model_id = "ft:gpt-4o-mini-2024-07-18:acme::AbC123"
    connection.models_cache = [
        *connection.models_cache,
        {"id": model_id, "object": "model", "owned_by": "org-abc", "created": 1730000000},
    ]
    connection.save()
    found = facts(get(viewer_client, url(connection, model_id)).content.decode())
    assert found["Owner"] == "Your organization"
    assert found["Fine-tuned from"] == "gpt-4o-mini-2024-07-18"
    assert found["Used for"] == "Chat"


def test_an_unknown_owner_is_shown_escaped_and_short(viewer_client, connection):
    connection.models_cache = [
        *connection.models_cache,
        {"id": "custom", "object": "model", "owned_by": "<b>" + "x" * 300},
    ]
    connection.save()
    page = get(viewer_client, url(connection, "custom")).content.decode()
    assert "<b>" not in page and "&lt;b&gt;" in page
    assert "x" * 120 not in page
    assert facts(page)["Created"] == "Not given"


def test_a_retired_model_on_openai_names_the_replacement(viewer_client, team, pinned_clock):
    connection = make_connection(
        team,
        base_url="https://api.openai.com/v1",
        models_cache=[{"id": "o4-mini", "created": 1744225351, "owned_by": "system"}],
        models_cached_at=timezone.now(),
    )
    page = get(viewer_client, url(connection, "o4-mini")).content.decode()
    assert "This model was shut down on Oct. 23, 2026: requests to it fail." in page
    assert "Suggested replacement: gpt-5.4-mini." in page


def test_in_an_error_state_only_the_explanation(viewer_client, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_INVALID)
    services.models_refresh(connection=connection, user=None)
    page = get(viewer_client, url(connection, "gpt-4o")).content.decode()
    assert "Invalid authentication (401)" in page
    assert "not in the model list" not in page and "About this model" not in page


def test_a_model_not_in_the_list_is_explained(viewer_client, connection):
    response = get(viewer_client, url(connection, "gpt-7"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "This model is not in the model list" in page
    assert "The list Tablero fetched 3\xa0minutes ago has no model with this ID" in page
    assert "Pick a model from this connection" in page


def test_a_list_never_fetched_says_so(viewer_client, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    page = get(viewer_client, url(connection, "gpt-4o")).content.decode()
    assert "Models not yet fetched" in page
    assert fake_upstream.requests == []


def test_outsider_gets_404(outsider_client, connection, fake_upstream):
    assert get(outsider_client, url(connection, "gpt-4o")).status_code == 404
    assert fake_upstream.requests == []


def test_anonymous_is_sent_to_sign_in(client, connection):
    assert get(client, url(connection, "gpt-4o")).status_code == 302


def test_looking_writes_nothing(admin_client_, connection):
    before = connection.updated_at if hasattr(connection, "updated_at") else None
    get(admin_client_, url(connection, "gpt-7"))
    assert not ConnectionErrorEvent.objects.filter(connection=connection).exists()
    connection.refresh_from_db()
    assert getattr(connection, "updated_at", None) == before


def test_head_is_allowed(viewer_client, connection):
    assert get(viewer_client, url(connection, "gpt-4o"), method="head").status_code == 200


def test_an_id_too_long_for_a_model_is_shown_shortened(admin_client_, connection, fake_upstream):
    model_id = "m" * 300
    response = get(admin_client_, url(connection, model_id))

    assert response.status_code == 200
    page = response.content.decode()
    assert "This model is not in the model list" in page
    assert (
        f'<h1 class="mono model-title">{"m" * 255}…</h1>' in page
    )  # the heading shows it shortened
    assert fake_upstream.requests == []
