"""The fair share of a connection's provider limit (gateway.fairshare), without a server: the
arithmetic, the reading of the provider's headers, and what `check` decides after `observe`."""

import asyncio
import socket
import uuid
from datetime import UTC, datetime

import pytest

from gateway import fairshare
from gateway.fairshare import Limit, read_limits, share_of
from gateway.models import Refusal
from provider.answer import duration_seconds
from tests.gateway.fairshare_helpers import call, headers

NOW = 1_800_000_000.0


@pytest.fixture(autouse=True)
def _forget():
    fairshare.forget_local()
    yield
    fairshare.forget_local()


@pytest.mark.parametrize(
    ("left", "active", "share"),
    [(30, 3, 10), (31, 3, 11), (2, 3, 1), (0, 3, 0), (10, 1, 10), (10, 0, 10), (-5, 2, 0)],
)
def test_each_token_may_take_an_equal_part_rounded_up(left, active, share):
    assert share_of(left, active) == share


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("1s", 1.0), ("12ms", 0.012), ("20", 20.0), ("1h2m3.5s", 3723.5)],
)
def test_resets_are_read_as_the_provider_writes_them(text, seconds):
    assert duration_seconds(text) == pytest.approx(seconds)


def test_the_limits_of_an_answer():
    limits = read_limits(
        headers() + headers("90000", "100", "6m0s", kind="tokens", **{"x-request-id": "r"}), NOW
    )
    assert limits == {
        "requests": Limit(limit=1000, remaining=50, reset_at=NOW + 30),
        "tokens": Limit(limit=90000, remaining=100, reset_at=NOW + 360),
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"limit": "many"},
        {"remaining": "-1"},
        {"remaining": "1e3"},
        {"remaining": "2000"},  # more left than the limit
        {"limit": "0"},
        {"limit": "9" * 40},
        {"reset": "soon"},
        {"reset": "-1s"},
        {"reset": "999999h"},  # beyond a day
        {"reset": "1s; sk-live-secret"},
        {"limit": "１０"},  # not ASCII digits
    ],
)
def test_untrusted_headers_are_ignored(bad):
    assert read_limits(headers(**bad), NOW) == {}


def test_missing_headers_are_ignored():
    assert read_limits([(b"x-ratelimit-remaining-requests", b"3")], NOW) == {}
    assert read_limits([(b"content-type", b"application/json")], NOW) == {}


def test_far_from_the_limit_nothing_is_held_back(settings):
    connection, token = uuid.uuid4(), uuid.uuid4()
    first = call(connection, token)
    assert fairshare.check(first) is None
    fairshare.observe(first, headers(remaining="900"))  # 90 % left
    for _ in range(50):
        assert fairshare.check(call(connection, token)) is None


def test_sharing_off_when_the_setting_is_zero(settings):
    settings.TABLERO_FAIR_SHARE_BELOW = 0
    connection, token = uuid.uuid4(), uuid.uuid4()
    first = call(connection, token)
    fairshare.check(first)
    fairshare.observe(first, headers(remaining="1"))
    assert fairshare.check(call(connection, token)) is None


def warm(connection, tokens, answer) -> None:
    """Each token makes a request, then the answers come back (saying `answer`)."""
    calls = [call(connection, token) for token in tokens]
    for each in calls:
        assert fairshare.check(each) is None
    for each in calls:
        fairshare.observe(each, answer)
        fairshare.settle(each)


class Provider:
    """What the provider says is left: one request less for each request let through."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining

    def send(self, connection, token):
        attempt = call(connection, token)
        held = fairshare.check(attempt)
        if held is None:
            self.remaining -= 1
            fairshare.observe(attempt, headers(remaining=str(self.remaining)))
            fairshare.settle(attempt)
        return attempt, held


def test_below_the_threshold_each_active_token_gets_its_share():
    connection = uuid.uuid4()
    greedy, *others = tokens = [uuid.uuid4() for _ in range(3)]
    warm(connection, tokens, headers(remaining="30"))  # 30 of 1000 left: below 10 %
    provider = Provider(30)

    greedy_got = 0
    for _ in range(25):
        attempt, held = provider.send(connection, greedy)
        greedy_got += held is None
    assert greedy_got == 10  # 30 shared by 3 tokens
    assert (attempt.status, attempt.refused) == (429, True)
    assert attempt.refusal == Refusal.FAIR_SHARE_REQUESTS
    assert held.error_type == "requests"
    assert "nearly used (20 of 1000 left)" in held.message
    assert "shared among 3 tokens" in held.message
    assert "this token has had its share of the requests (10)" in held.message
    (name, wait), *_ = held.headers
    assert name == b"retry-after" and 1 <= int(wait) <= 30

    # The others still get theirs, and nobody more than what is left.
    for token in others:
        got = sum(provider.send(connection, token)[1] is None for _ in range(25))
        assert got == 10
    assert provider.remaining == 0


def test_requests_on_their_way_are_not_shared_twice():
    connection, token, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    on_their_way = [call(connection, token) for _ in range(4)]
    for pending in on_their_way:
        assert fairshare.check(pending) is None
    fairshare.observe(on_their_way[0], headers(remaining="5"))
    # 5 left, 3 still on their way: 2 to share (one each).
    mine, theirs = call(connection, token), call(connection, other)
    assert fairshare.check(mine) is None
    assert fairshare.check(theirs) is None
    held = fairshare.check(call(connection, other))
    assert held is not None and "nothing is left" in held.message


def test_while_shared_an_older_answer_does_not_raise_what_is_left():
    connection, token = uuid.uuid4(), uuid.uuid4()
    first, second = call(connection, token), call(connection, token)
    fairshare.check(first)
    fairshare.check(second)
    # The provider answered `second` last (1 left), but its answer came back first.
    fairshare.observe(second, headers(remaining="1"))
    fairshare.observe(first, headers(remaining="2"))
    third, fourth = call(connection, token), call(connection, token)
    assert fairshare.check(third) is None
    held = fairshare.check(fourth)
    assert held is not None and "nothing is left" in held.message


def test_nothing_left_holds_everyone_back_until_the_reset(time_machine):
    time_machine.move_to(datetime.fromtimestamp(NOW, UTC), tick=False)
    connection, token = uuid.uuid4(), uuid.uuid4()
    first = call(connection, token)
    fairshare.check(first)
    fairshare.observe(first, headers(remaining="0", reset="2s"))

    held = fairshare.check(call(connection, token))
    assert held is not None and dict(held.headers)[b"retry-after"] == b"2"

    time_machine.shift(2.5)  # the provider's reset has passed
    assert fairshare.check(call(connection, token)) is None


def test_tokens_are_counted_from_the_answers_usage():
    connection, greedy, modest = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for token in (greedy, modest):
        warm = call(connection, token)
        fairshare.check(warm)
        fairshare.observe(warm, headers("100000", "1000", "1m0s", kind="tokens"))
    big = call(connection, greedy)
    assert fairshare.check(big) is None
    big.input_tokens, big.output_tokens = 300, 250  # more than half of 1000
    fairshare.settle(big)

    held = fairshare.check(call(connection, greedy))
    assert held is not None and held.error_type == "tokens"
    assert "its share of the tokens (500)" in held.message
    assert fairshare.check(call(connection, modest)) is None


def test_what_was_seen_is_there_for_the_connection_page():
    connection, token = uuid.uuid4(), uuid.uuid4()
    first = call(connection, token)
    fairshare.check(first)
    fairshare.observe(first, headers(remaining="20") + headers("5000", "4000", kind="tokens"))

    seen = fairshare.snapshot(connection)
    assert seen["sharing"] == ["requests"] and seen["active"] == 1
    assert seen["limits"]["requests"]["remaining"] == 20
    assert seen["limits"]["tokens"]["limit"] == 5000


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_cache(settings):
    if not _redis_answers():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/9",
            "KEY_PREFIX": f"fairshare-test-{uuid.uuid4().hex}",
        }
    }
    return settings


def test_shared_counts_in_redis_hold_across_processes(redis_cache):
    connection = uuid.uuid4()
    tokens = [uuid.uuid4() for _ in range(3)]
    # Two processes, each knowing the limits from its own answers; the counts are in Redis.
    processes = []
    for _ in range(2):
        fairshare._connections.clear()
        warm(connection, tokens, headers(remaining="60"))
        processes.append(dict(fairshare._connections))
    let_through = dict.fromkeys(tokens, 0)
    for turn in range(30):
        fairshare._connections.clear()
        fairshare._connections.update(processes[turn % 2])
        for token in tokens:
            attempt = call(connection, token)
            if fairshare.check(attempt) is None:
                let_through[token] += 1
                fairshare.settle(attempt)
    assert list(let_through.values()) == [20, 20, 20]


def _together(connection) -> list:
    one, two = uuid.uuid4(), uuid.uuid4()
    warm(connection, [one, two], headers(remaining="3"))
    results = []
    for token in (one, one, two, two):
        attempt = call(connection, token)
        results.append(fairshare.check(attempt))
        fairshare.settle(attempt)  # (no answer: what the provider says is left stays 3)
    return results


def test_what_was_seen_reaches_a_shared_cache_off_the_event_loop(redis_cache):
    connection, token = uuid.uuid4(), uuid.uuid4()
    first = call(connection, token)

    async def answered() -> None:  # as the gateway calls it: on the event loop
        fairshare.check(first)
        fairshare.observe(first, headers(remaining="20"))

    asyncio.run(answered())
    fairshare.snapshots_written()  # written by a thread, not the event loop

    seen = fairshare.snapshot(connection)
    assert seen["sharing"] == ["requests"] and seen["limits"]["requests"]["remaining"] == 20


def test_every_token_together_takes_no_more_than_what_was_left():
    results = _together(uuid.uuid4())
    assert results[:3] == [None, None, None]  # shares of 2 (3 by 2, rounded up)
    assert "nothing is left" in results[3].message


def test_every_token_together_takes_no_more_than_what_was_left_in_redis(redis_cache):
    results = _together(uuid.uuid4())
    assert results[:3] == [None, None, None]
    assert "nothing is left" in results[3].message


def test_the_threshold_comes_from_the_environment():
    from tests.test_settings import production_env, settings_under, startup_error

    assert settings_under(production_env(), "TABLERO_FAIR_SHARE_BELOW") == {
        "TABLERO_FAIR_SHARE_BELOW": "0.1"
    }
    assert settings_under(
        production_env(TABLERO_FAIR_SHARE_BELOW="0.25"), "TABLERO_FAIR_SHARE_BELOW"
    ) == {"TABLERO_FAIR_SHARE_BELOW": "0.25"}
    for wrong in ("1.5", "-0.1"):
        assert "TABLERO_FAIR_SHARE_BELOW" in startup_error(
            production_env(TABLERO_FAIR_SHARE_BELOW=wrong)
        )
