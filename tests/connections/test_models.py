import pytest
from django.urls import reverse

from connections import services
from connections.models import ConnectionErrorEvent
from fakeprovider import KEY_INVALID, KEY_OK, Reply
from tests.conftest import client_for
from tests.connections.helpers import make_connection

pytestmark = pytest.mark.django_db


def url(connection) -> str:
    return reverse(
        "connections:models",
        kwargs={"team_id": connection.team_id, "connection_id": connection.pk},
    )


def fetched(connection):
    """The list fetched once, as adding the connection (or a Refresh) does."""
    services.models_refresh(connection=connection, user=None)
    return connection


@pytest.fixture
def connection(team, fake_upstream):
    return fetched(make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK))


def test_models_grouped_by_family(viewer_client, connection, fake_upstream):
    response = viewer_client.get(url(connection))

    assert response.status_code == 200
    page = response.content.decode()
    for heading in ("GPT-4o", "GPT-4.1", "o-series reasoning models", "GPT-3.5", "Embeddings"):
        assert heading in page
    assert "Audio (speech and transcription)" in page
    assert "Images" in page
    groups = {g.family: [m.id for m in g.models] for g in response.context["listing"].groups}
    assert groups["gpt-4o"] == ["gpt-4o-mini", "gpt-4o"]  # newest first
    assert groups["o-series"] == ["o4-mini", "o3"]
    assert set(groups["audio"]) == {"whisper-1", "tts-1"}
    assert groups["images"] == ["dall-e-3"]
    assert "12 models." in page
    (sent,) = fake_upstream.requests
    assert sent.headers["authorization"] == f"Bearer {KEY_OK}"


def test_shutdown_warnings(viewer_client, connection):
    page = viewer_client.get(url(connection)).content.decode()
    assert "shut down on Sept. 15, 2025" in page  # gpt-3.5-turbo, in the past
    assert "shuts down on June 6, 2099" in page  # gpt-4-0613, announced


def test_created_date_shown(viewer_client, connection):
    page = viewer_client.get(url(connection)).content.decode()
    assert "May 10, 2024" in page  # gpt-4o


def test_search(viewer_client, connection):
    response = viewer_client.get(url(connection), {"q": "MINI"})
    page = response.content.decode()
    assert "gpt-4o-mini" in page and "o4-mini" in page
    assert "dall-e-3" not in page
    assert "3 models of 12 match." in page


def test_search_without_match(viewer_client, connection):
    page = viewer_client.get(url(connection), {"q": "llama"}).content.decode()
    assert "No model matches this search." in page


def test_the_page_shows_the_stored_list_without_asking(
    viewer_client, member_client, connection, fake_upstream
):
    fake_upstream.reset()
    viewer_client.get(url(connection))
    page = member_client.get(url(connection), {"q": "gpt"}).content.decode()
    assert "gpt-4o-mini" in page
    assert fake_upstream.requests == []


def test_a_list_never_fetched_says_so_and_offers_a_refresh(users, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    refresh = reverse(
        "connections:models_refresh",
        kwargs={"team_id": connection.team_id, "connection_id": connection.pk},
    )
    page = client_for(users["member"]).get(url(connection)).content.decode()
    assert "The model list has not been fetched yet" in page
    assert "Refresh asks the provider for it." in page and refresh in page
    viewer_page = client_for(users["viewer"]).get(url(connection)).content.decode()
    assert "A member of the team can fetch it." in viewer_page
    assert fake_upstream.requests == []


def test_provider_failure_is_explained_with_the_kept_list(viewer_client, team, fake_upstream):
    connection = make_connection(
        team,
        base_url=fake_upstream.base_url,
        key=KEY_INVALID,
        models_cache=[{"id": "gpt-4o", "created": 1715367049, "owned_by": "system"}],
    )
    services.models_refresh(connection=connection, user=None)  # fails: the key is refused
    fake_upstream.reset()

    response = viewer_client.get(url(connection))

    assert response.status_code == 200
    page = response.content.decode()
    assert "The model list could not be fetched" in page
    assert "Invalid authentication (401)" in page
    assert "Showing the list from the last successful fetch." in page
    assert "gpt-4o" in page
    # Viewers get the explanation, not the provider's details.
    assert "invalid_api_key" not in page
    assert ConnectionErrorEvent.objects.get(connection=connection).operation == "models.list"
    assert fake_upstream.requests == []


def test_unknown_and_missing_fields_are_fine(viewer_client, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url)
    fake_upstream.state["models"] = {
        "local-llama": {"id": "local-llama", "object": "model", "max_context": 8192},
        "x": {"id": "x", "created": "not a date", "shutdown_date": None},
    }
    fetched(connection)
    response = viewer_client.get(url(connection))
    page = response.content.decode()
    assert response.status_code == 200
    assert "Other models" in page and "local-llama" in page


def test_odd_model_ids_from_the_provider_are_listed(viewer_client, connection, fake_upstream):
    """An id no URL can carry (a line break) used to crash the page while reversing its link;
    it is listed without one. Ids with slashes, dots and query signs keep their link."""
    for model_id in ("bad\nid", "org/model:v1", "a?b#c"):
        fake_upstream.state["models"][model_id] = {"id": model_id, "object": "model"}
    fetched(connection)
    response = viewer_client.get(url(connection))
    assert response.status_code == 200
    page = response.content.decode()
    assert '<span class="mono">bad\nid</span>' in page
    detail = reverse(
        "connections:model_detail",
        kwargs={
            "team_id": connection.team_id,
            "connection_id": connection.pk,
            "model_id": "a?b#c",
        },
    )
    assert f'href="{detail}"' in page and "a%3Fb%23c" in detail
    assert "org/model:v1</a>" in page


def test_nul_and_lone_surrogates_in_the_list_are_stored_and_shown(
    viewer_client, connection, fake_upstream
):
    body = (
        b'{"object": "list", "data": [{"id": "gpt-\\udfffx", "object": "model",'
        b' "owned_by": "sys\\u0000tem", "meta": [["\\u0000deep"]]}]}'
    )
    fake_upstream.queue(Reply(200, body, {"Content-Type": "application/json"}))
    fetched(connection)
    response = viewer_client.get(url(connection))
    assert response.status_code == 200
    assert "gpt-?x" in response.content.decode()
    connection.refresh_from_db()
    assert connection.models_cache == [
        {"id": "gpt-?x", "object": "model", "owned_by": "system", "meta": [["deep"]]}
    ]


def test_refresh_button_for_members_only(users, connection):
    refresh = reverse(
        "connections:models_refresh",
        kwargs={"team_id": connection.team_id, "connection_id": connection.pk},
    )
    assert refresh in client_for(users["member"]).get(url(connection)).content.decode()
    assert refresh not in client_for(users["viewer"]).get(url(connection)).content.decode()


def test_outsider_gets_404(outsider_client, connection):
    assert outsider_client.get(url(connection)).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, connection, fake_upstream):
    fake_upstream.reset()
    assert client.get(url(connection)).status_code == 302
    assert fake_upstream.requests == []
