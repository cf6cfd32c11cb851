import pytest
from django.urls import reverse

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


@pytest.fixture
def connection(team, fake_upstream):
    return make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)


def test_shows_every_field(viewer_client, connection, fake_upstream):
    response = viewer_client.get(url(connection, "gpt-4-0613"))

    assert response.status_code == 200
    page = response.content.decode()
    assert "gpt-4-0613" in page
    assert "owned_by" in page and "openai" in page
    assert "shutdown_date" in page and "2099-06-06" in page
    assert "shuts down on June 6, 2099" in page
    (sent,) = fake_upstream.requests
    assert (sent.method, sent.path) == ("GET", "/v1/models/gpt-4-0613")
    assert sent.headers["authorization"] == f"Bearer {KEY_OK}"


def test_nested_and_unknown_fields(viewer_client, connection, fake_upstream):
    fake_upstream.state["models"]["custom"] = {
        "id": "custom",
        "object": "model",
        "capabilities": {"vision": True},
    }
    page = viewer_client.get(url(connection, "custom")).content.decode()
    assert "capabilities" in page
    assert "{&quot;vision&quot;: true}" in page


def test_unknown_model_is_explained(viewer_client, connection):
    response = viewer_client.get(url(connection, "gpt-7"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "The model does not exist (404)" in page
    assert "Pick a model from this connection" in page


def test_admins_see_the_provider_message(admin_client_, connection):
    page = admin_client_.get(url(connection, "gpt-7")).content.decode()
    assert "model_not_found" in page
    assert "does not exist or you do not have access to it" in page


def test_outsider_gets_404(outsider_client, connection, fake_upstream):
    assert outsider_client.get(url(connection, "gpt-4o")).status_code == 404
    assert fake_upstream.requests == []


def test_anonymous_is_sent_to_sign_in(client, connection):
    assert client.get(url(connection, "gpt-4o")).status_code == 302


def test_a_failure_is_shown_and_not_recorded(admin_client_, connection):
    """The page asks the provider live; looking writes nothing, not even the error history
    (a Refresh of the model list or a key check records the connection's failures)."""
    page = admin_client_.get(url(connection, "gpt-7")).content.decode()
    assert "model_not_found" in page
    assert not ConnectionErrorEvent.objects.filter(connection=connection).exists()
    connection.refresh_from_db()
    assert connection.last_checked_at is None


def test_head_is_allowed(viewer_client, connection):
    assert viewer_client.head(url(connection, "gpt-4o")).status_code == 200


def test_an_id_too_long_for_a_model_is_not_looked_up(admin_client_, connection, fake_upstream):
    model_id = "m" * 300
    response = admin_client_.get(url(connection, model_id))

    assert response.status_code == 200
    page = response.content.decode()
    assert "The model does not exist" in page
    assert "A model ID has at most 256 characters; the provider was not asked." in page
    assert f'<h1 class="mono">{"m" * 255}…</h1>' in page  # the heading shows it shortened
    assert fake_upstream.requests == []
    assert not ConnectionErrorEvent.objects.exists()
