"""A model's page shows the model as the list Tablero last fetched describes it, and when; it
never asks the provider (any outgoing HTTP call during the page request fails these tests)."""

from datetime import timedelta
from unittest import mock

import httpx
import pytest
from django.urls import reverse

from connections import services
from connections.models import ConnectionErrorEvent
from fakeprovider import KEY_OK
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


def test_shows_every_field_from_the_list_and_when_it_was_fetched(
    viewer_client, connection, fake_upstream
):
    response = get(viewer_client, url(connection, "gpt-4-0613"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "gpt-4-0613" in page
    assert "owned_by" in page and "openai" in page
    assert "shutdown_date" in page and "2099-06-06" in page
    assert "shuts down on June 6, 2099" in page
    assert "when Tablero fetched the model list, 3\xa0minutes ago" in page
    assert fake_upstream.requests == []


def test_nested_and_unknown_fields(viewer_client, connection):
    connection.models_cache = [
        *connection.models_cache,
        {"id": "custom", "object": "model", "capabilities": {"vision": True}},
    ]
    connection.save()
    page = get(viewer_client, url(connection, "custom")).content.decode()
    assert "capabilities" in page
    assert "{&quot;vision&quot;: true}" in page


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
    assert f'<h1 class="mono">{"m" * 255}…</h1>' in page  # the heading shows it shortened
    assert fake_upstream.requests == []
