"""The fake provider's counting rate limit (fakeprovider.ratelimit): off by default, counting
down per request when a test sets one, 429 at 0, full again when its window ends."""

import httpx
import pytest

from fakeprovider import KEY_INVALID, KEY_OK, RateLimit
from fakeprovider.ratelimit import reset_text


def get(fake, key=KEY_OK):
    return httpx.get(f"{fake.base_url}/models", headers={"Authorization": f"Bearer {key}"})


def test_without_one_the_fixed_headers_stay(fake_upstream):
    answer = get(fake_upstream)
    assert answer.headers["x-ratelimit-limit-requests"] == "5000"
    assert answer.headers["x-ratelimit-reset-requests"] == "12ms"


def test_it_counts_down_then_answers_429_until_the_window_ends(fake_upstream, fake_clock):
    fake_upstream.rate_limit = RateLimit(
        limit_requests=100,
        remaining_requests=2,
        limit_tokens=5000,
        remaining_tokens=4000,
        tokens_per_request=10,
        window_seconds=60,
    )
    first = get(fake_upstream)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-requests"] == "100"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"] == "1m0s"
    assert first.headers["x-ratelimit-remaining-tokens"] == "3990"
    fake_clock.advance(15)
    second = get(fake_upstream)
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert second.headers["x-ratelimit-reset-requests"] == "45s"

    refused = get(fake_upstream)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.json()["error"]["type"] == "requests"
    assert refused.headers["retry-after"] == "45"
    assert fake_upstream.rate_limit.refused == 1

    fake_clock.advance(45)
    again = get(fake_upstream)
    assert again.status_code == 200
    assert again.headers["x-ratelimit-remaining-requests"] == "1"


def test_a_refused_key_takes_nothing(fake_upstream):
    fake_upstream.rate_limit = RateLimit(remaining_requests=5)
    assert get(fake_upstream, KEY_INVALID).status_code == 401
    assert get(fake_upstream).headers["x-ratelimit-remaining-requests"] == "4"


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.012, "12ms"), (1, "1s"), (20.5, "20.5s"), (360, "6m0s"), (61, "1m1s")]
)
def test_resets_are_written_as_the_provider_writes_them(seconds, text):
    assert reset_text(seconds) == text
