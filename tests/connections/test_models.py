import re

import pytest
from django.urls import reverse
from django.utils import timezone

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


def rows(page: str) -> list[list[str]]:
    """The models table as the reader sees it: one list of cell texts per row."""
    body = page.split('<table class="models-table">', 1)[1].split("<tbody>", 1)[1]
    body = body.split("</tbody>", 1)[0]
    return [
        [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells]
        for cells in (
            re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
        )
    ]


def test_one_table_with_what_each_model_is_for(viewer_client, connection, fake_upstream):
    response = viewer_client.get(url(connection))

    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('<table class="models-table">') == 1
    table = {row[0]: row[1:] for row in rows(page)}
    assert table["gpt-4o"] == ["Chat", "Yes", "OpenAI", "May 10, 2024", "Available"]
    assert table["o3"][:2] == ["Reasoning", "Yes"]
    assert table["text-embedding-3-small"][:2] == ["Embeddings", "No"]
    assert table["whisper-1"][:3] == ["Audio", "No", "OpenAI"]
    assert table["dall-e-3"][:2] == ["Images", "No"]
    # Retired by the provider's own shutdown_date: not for new assistants.
    assert table["gpt-3.5-turbo"][1:2] == ["Not for new ones"]
    assert table["gpt-3.5-turbo"][4] == "shut down on Sept. 15, 2025"
    assert table["gpt-4-0613"][4] == "deprecated: shuts down on June 6, 2099"
    # By purpose, newest first within one.
    order = [row[0] for row in rows(page)]
    assert order.index("gpt-4o-mini") < order.index("gpt-4o") < order.index("o4-mini")
    assert "12 models." in page
    (sent,) = fake_upstream.requests
    assert sent.headers["authorization"] == f"Bearer {KEY_OK}"


def test_search_by_purpose_is_a_plain_get(viewer_client, connection):
    page = viewer_client.get(url(connection), {"purpose": "audio"}).content.decode()
    assert {row[0] for row in rows(page)} == {"whisper-1", "tts-1"}
    assert "2 models of 12 match." in page
    assert 'name="q"' in page and 'method="get"' in page


def test_a_bad_purpose_shows_everything(viewer_client, connection):
    page = viewer_client.get(url(connection), {"purpose": "<script>"}).content.decode()
    assert len(rows(page)) == 12
    assert "<script>" not in page.split("<main", 1)[1]


def test_paginated_through_the_shared_pagination(viewer_client, connection):
    page = viewer_client.get(url(connection), {"size": "10", "q": "", "page": "2"}).content.decode()
    assert len(rows(page)) == 2
    assert "page=1" in page


def test_official_connection_marks_openai_retirements_from_the_table(
    viewer_client, team, pinned_clock
):
    connection = make_connection(
        team,
        base_url="https://api.openai.com/v1",
        models_cache=[
            {"id": "gpt-5.5", "created": 1770000000, "owned_by": "system"},
            {"id": "o4-mini", "created": 1744225351, "owned_by": "system"},
            {"id": "gpt-4o", "created": 1715367049, "owned_by": "system"},
        ],
        models_cached_at=timezone.now(),
    )
    table = {row[0]: row[1:] for row in rows(viewer_client.get(url(connection)).content.decode())}
    assert table["gpt-5.5"][1] == "Yes" and table["gpt-5.5"][4] == "Available"
    assert table["o4-mini"][4] == "shut down on Oct. 23, 2026"
    assert table["gpt-4o"][4] == "deprecated: shuts down on Jan. 14, 2027"
    assert table["gpt-4o"][1] == "Not for new ones"


def test_an_error_without_a_kept_list_shows_only_the_explanation(
    viewer_client, team, fake_upstream
):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_INVALID)
    services.models_refresh(connection=connection, user=None)
    page = viewer_client.get(url(connection)).content.decode()
    assert "Invalid authentication (401)" in page
    assert "models-table" not in page and 'role="search"' not in page
    assert "No models to show." not in page and "not been fetched" not in page


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
    table = {row[0]: row[1:] for row in rows(page)}
    assert table["local-llama"][:2] == ["Other", "No"]
    assert table["x"][2:4] == ["Not given", "—"]


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


def test_queries_do_not_grow_with_the_list(viewer_client, team):
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    def count(size: int) -> int:
        connection = make_connection(
            team,
            name=f"List {size}",
            models_cache=[{"id": f"gpt-{n}", "created": n} for n in range(size)],
            models_cached_at=timezone.now(),
        )
        viewer_client.get(url(connection))  # the session is saved on the first visit
        with CaptureQueriesContext(db) as queries:
            assert viewer_client.get(url(connection), {"q": "gpt"}).status_code == 200
        return len(queries)

    assert count(3) == count(400)


def test_a_model_id_too_long_for_a_model_is_shortened_and_not_linked(viewer_client, team):
    long_id = "<i>" + "m" * 400
    connection = make_connection(
        team,
        models_cache=[{"id": long_id, "object": "model"}],
        models_cached_at=timezone.now(),
    )
    page = viewer_client.get(url(connection)).content.decode()
    (row,) = rows(page)
    assert row[0] == "&lt;i&gt;" + "m" * 76 + "…"
    assert "<i>" not in page.split("<main", 1)[1]
    assert "/models/%3Ci%3E" not in page
