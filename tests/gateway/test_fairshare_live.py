"""Fair share of the provider's limit with the live gateway and the official SDK: three tokens
hammer one connection whose provider (the fake, counting down) has little left."""

import threading

import openai
import pytest
from django.urls import reverse

from fakeprovider import RateLimit
from gateway import fairshare

HELLO = [{"role": "user", "content": "Hi there"}]
LEFT = 60  # of 1000: below the 10 % at which Tablero starts sharing


@pytest.fixture(autouse=True)
def _forget():
    fairshare.forget_local()
    yield
    fairshare.forget_local()


@pytest.fixture
def hammered(sdk, make_token, fake_upstream, member, admin_user, owner, written):
    """Three tokens (three members') each call until Tablero holds them back; returns what
    each got, the errors they saw, and the fake's rate limit."""
    fake_upstream.rate_limit = RateLimit(
        limit_requests=1000, remaining_requests=LEFT, window_seconds=600
    )
    names = {"member's script": member, "admin's notebook": admin_user, "owner's job": owner}
    clients = {
        name: sdk(make_token(name=name, owner=user, created_by=user))
        for name, user in names.items()
    }
    for client in clients.values():  # each token is in use before the hammering starts
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    got = dict.fromkeys(clients, 1)
    errors: dict[str, openai.APIError] = {}
    start = threading.Barrier(len(clients))

    def hammer(name: str) -> None:
        start.wait()
        while True:
            try:
                clients[name].chat.completions.create(model="gpt-4o", messages=HELLO)
            except openai.APIError as error:
                errors[name] = error
                return
            got[name] += 1

    threads = [threading.Thread(target=hammer, args=(name,)) for name in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    written()
    return got, errors, fake_upstream.rate_limit


def test_three_tokens_each_get_about_a_third_and_never_the_providers_429(hammered):
    got, errors, provider = hammered

    assert provider.refused == 0  # the provider never had to say 429
    assert sum(got.values()) <= LEFT
    for count in got.values():
        assert LEFT // 3 - 2 <= count <= LEFT // 3 + 1, got
    for error in errors.values():
        assert isinstance(error, openai.RateLimitError)
        assert error.code == "rate_limit_exceeded"
        message = error.body["message"]
        assert message.startswith("Tablero refused this request: ")
        assert "the connection's provider limit on requests is nearly used" in message
        assert "is being shared among 3 tokens" in message
        assert 1 <= int(error.response.headers["retry-after"]) <= 600


def test_the_connection_page_shows_who_is_held_back(
    hammered, admin_client_, gateway_connection, member_client
):
    _got, errors, provider = hammered
    assert provider.refused == 0
    assert {name: type(error).__name__ for name, error in errors.items()} == {
        "member's script": "RateLimitError",
        "admin's notebook": "RateLimitError",
        "owner's job": "RateLimitError",
    }
    url = reverse("connections:detail", args=[gateway_connection.team_id, gateway_connection.pk])
    page = admin_client_.get(url).content.decode()
    section = page.split('id="fair-share"')[1].split("</section>")[0]

    assert "Sharing" in section
    assert "what is left is shared among 3 tokens until the provider's reset" in section
    assert "Requests: " in section and " of 1,000 left" in section  # as last written
    held = section.split("Held back in the last 15 minutes")[1].split("</table>")[0]
    for name in ("member&#x27;s script", "admin&#x27;s notebook", "owner&#x27;s job"):
        assert name in held
    assert "Fair share of the provider&#x27;s request limit" in held
    assert held.count("<tr>") == 1 + 3

    # A member sees only their own token held back.
    mine = member_client.get(url).content.decode().split('id="fair-share"')[1]
    mine = mine.split("</section>")[0]
    assert "member&#x27;s script" in mine and "admin&#x27;s notebook" not in mine
