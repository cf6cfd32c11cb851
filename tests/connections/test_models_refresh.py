import pytest
from django.urls import reverse

from fakeprovider import KEY_OK, KEY_QUOTA, Reply
from tests.conftest import client_for
from tests.connections.helpers import make_connection

pytestmark = pytest.mark.django_db


def url(connection) -> str:
    return reverse(
        "connections:models_refresh",
        kwargs={"team_id": connection.team_id, "connection_id": connection.pk},
    )


def models_url(connection) -> str:
    return reverse(
        "connections:models",
        kwargs={"team_id": connection.team_id, "connection_id": connection.pk},
    )


@pytest.fixture
def connection(team, fake_upstream):
    return make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)


def test_refresh_asks_the_provider_again(member_client, connection, fake_upstream):
    member_client.post(url(connection))
    fake_upstream.state["models"]["gpt-5"] = {"id": "gpt-5", "object": "model", "created": 1}

    response = member_client.post(url(connection), follow=True)

    assert response.redirect_chain[-1][0] == models_url(connection)
    page = response.content.decode()
    assert "Model list refreshed." in page
    assert "gpt-5" in page
    assert len(fake_upstream.requests_to("/v1/models")) == 2
    connection.refresh_from_db()
    assert "gpt-5" in {m["id"] for m in connection.models_cache}


def test_failed_refresh_shows_why(member_client, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_QUOTA)
    response = member_client.post(url(connection), follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Model list refreshed." not in page
    assert "You exceeded your current quota (429)" in page
    assert "platform.openai.com" in page


def test_viewer_is_refused(viewer_client, connection, fake_upstream):
    assert viewer_client.post(url(connection)).status_code == 403
    assert fake_upstream.requests == []


def test_get_is_not_allowed(member_client, connection):
    assert member_client.get(url(connection)).status_code == 405


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_may_refresh(users, connection, role):
    assert client_for(users[role]).post(url(connection)).status_code == 302


def test_outsider_gets_404(outsider_client, connection):
    assert outsider_client.post(url(connection)).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, connection):
    assert client.post(url(connection)).status_code == 302


@pytest.mark.parametrize(
    ("payload", "stored"),
    [
        (b'{"object":"list","data":[{"id":"gpt-x","created":NaN,"x":[Infinity,1e999]}]}', True),
        (b'{"object":"list","data":[{"id":"gpt-x","x":' + b"[" * 900 + b"]" * 900 + b"}]}", False),
    ],
    ids=["not-finite", "deep"],
)
def test_unstorable_values_never_reach_the_cache(
    payload, stored, member_client, connection, fake_upstream
):
    fake_upstream.queue(Reply(200, payload, {"Content-Type": "application/json"}))

    response = member_client.post(url(connection), follow=True)

    assert response.status_code == 200
    connection.refresh_from_db()
    if stored:  # numbers JSON cannot carry are kept as null
        assert connection.models_cache == [{"id": "gpt-x", "created": None, "x": [None, None]}]
        assert "Model list refreshed." in response.content.decode()
    else:
        assert connection.models_cache == []
        assert "Unexpected answer from the provider" in response.content.decode()
