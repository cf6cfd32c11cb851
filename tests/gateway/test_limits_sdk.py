"""Tablero's limits on the live gateway, seen through the official `openai` SDK: requests and
tokens per minute, concurrency, monthly budgets in tokens and money, the refusals' shape and
headers, and a slot given back when the client goes away.

The fake provider's usage is deterministic: prompt tokens are the words of the last user
message plus 3, completion tokens the words of "Hello from the fake provider. You said: …";
so "Hi there" costs 5 + 9 = 14 tokens a call. The live gateway runs in this process with the
test settings' local memory cache, so its counters are this process's (MemoryCounters)."""

import datetime
from decimal import Decimal

import httpx
import openai
import pytest
import time_machine

from gateway import limits, tokens
from gateway.models import ApiToken, LimitTarget, Refusal, UsageLimit
from tests.gateway.conftest import settle
from tests.gateway.usage_helpers import make_price

HELLO = [{"role": "user", "content": "Hi there"}]
CALL_TOKENS = 14


@pytest.fixture(autouse=True)
def _fresh_counters():
    limits.counters().clear()
    yield
    limits.counters().clear()


def _token(value: str) -> ApiToken:
    prefix, _secret = tokens.split(value)
    return ApiToken.objects.get(prefix=prefix)


def _limit(team, value: str, **fields) -> UsageLimit:
    return UsageLimit.objects.create(
        team=team, target=LimitTarget.TOKEN, token=_token(value), **fields
    )


def _chat(client, **options):
    return client.chat.completions.create(model="gpt-4o", messages=HELLO, **options)


def test_requests_per_minute_refused_in_the_provider_shape(
    sdk, make_token, team, fake_upstream, written
):
    value = make_token()
    _limit(team, value, requests_per_minute=2)
    client = sdk(value)

    answer = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    assert answer.headers["x-tablero-ratelimit-limit-requests"] == "2"
    assert answer.headers["x-tablero-ratelimit-remaining-requests"] == "1"
    _chat(client)
    with pytest.raises(openai.RateLimitError) as refused:
        _chat(client)

    error = refused.value
    assert (error.code, error.type) == ("rate_limit_exceeded", "requests")
    assert error.body["message"].startswith("Tablero refused this request: this token's limit of 2")
    assert "A team admin can raise it" in error.body["message"]
    headers = error.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"].endswith("s")
    # Refused before anything was forwarded, and recorded as Tablero's refusal.
    assert len(fake_upstream.requests_to("/v1/chat/completions", "POST")) == 2
    # Which limit refused it, and whose, for the limits page.
    assert [(c.status, c.refused, c.refusal) for c in written()] == [
        (200, False, ""),
        (200, False, ""),
        (429, True, Refusal.TOKEN_RPM),
    ]


def test_the_sdk_waits_for_the_next_minute_and_retries(sdk, make_token, team, fake_upstream):
    value = make_token()
    _limit(team, value, requests_per_minute=1)
    client = sdk(value).with_options(max_retries=2)
    now = datetime.datetime.now(datetime.UTC)
    # 0.6 s before a minute's end; the clock ticks on, and the SDK really sleeps (it is the
    # Retry-After behaviour under test).
    with time_machine.travel(now.replace(second=59, microsecond=400_000), tick=True):
        _chat(client)
        answer = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    assert answer.retries_taken == 1
    assert answer.parse().choices[0].message.content.endswith("Hi there")
    assert len(fake_upstream.requests_to("/v1/chat/completions", "POST")) == 2


def test_tokens_per_minute_reserved_and_settled(sdk, make_token, team, fake_upstream, written):
    value = make_token()
    # Each call reserves 50 tokens plus its body's bytes / 4 (about 20), and uses 14: three
    # pass in a minute only because each is settled from its usage.
    _limit(team, value, tokens_per_minute=160)
    client = sdk(value)

    for _ in range(3):
        answer = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=HELLO, max_tokens=50
        )
    assert answer.headers["x-tablero-ratelimit-limit-tokens"] == "160"
    sent = fake_upstream.requests_to("/v1/chat/completions", "POST")[-1]
    reserved = 50 + len(sent.body) // 4
    assert answer.headers["x-tablero-ratelimit-remaining-tokens"] == str(
        160 - 2 * CALL_TOKENS - reserved
    )

    with pytest.raises(openai.RateLimitError) as refused:
        _chat(client, max_tokens=200)
    error = refused.value
    assert (error.code, error.type) == ("rate_limit_exceeded", "tokens")
    assert "this call alone would reserve more than this token's limit" in error.body["message"]
    assert error.response.headers["x-should-retry"] == "false"
    assert error.response.headers["x-ratelimit-limit-tokens"] == "160"
    # Too large for the tokens per minute: that limit refused it.
    assert [c.refusal for c in written()] == [""] * 3 + [Refusal.TOKEN_TPM]


def test_concurrency_slot_given_back_when_the_client_goes(sdk, make_token, team, fake_upstream):
    import threading

    value = make_token()
    _limit(team, value, concurrent_requests=1)
    client = sdk(value)
    fake_upstream.stream_gate = threading.Event()

    stream = _chat(client, stream=True)
    next(iter(stream))  # the first chunk: the call holds its slot
    with pytest.raises(openai.RateLimitError) as refused:
        _chat(client)
    assert refused.value.code == "rate_limit_exceeded"
    assert "this token's limit of 1 requests at once" in refused.value.body["message"]
    assert refused.value.response.headers["retry-after"] == "1"

    stream.close()  # the client goes away mid-answer
    settle()
    fake_upstream.stream_gate.set()
    assert _chat(client).choices[0].message.content.endswith("Hi there")


def test_token_budget_spent_is_insufficient_quota_not_retried(
    sdk, make_token, team, fake_upstream, written
):
    value = make_token()
    _limit(team, value, monthly_token_budget=100)
    client = sdk(value).with_options(max_retries=2)

    passed = 0
    with pytest.raises(openai.RateLimitError) as refused:
        for _ in range(20):
            _chat(client, max_tokens=10)
            passed += 1
    error = refused.value
    assert (error.code, error.type) == ("insufficient_quota", "insufficient_quota")
    assert "this token's limit: the monthly budget of 100 tokens" in error.body["message"]
    assert error.response.headers["x-should-retry"] == "false"
    calls = written()
    # The SDK did not retry the refusal; the spend stayed within the budget.
    assert [c.status for c in calls] == [200] * passed + [429]
    assert calls[-1].refusal == Refusal.TOKEN_MONTH_TOKENS
    spent = sum(c.input_tokens + c.output_tokens for c in calls[:-1])
    assert spent == passed * CALL_TOKENS
    sent = fake_upstream.requests_to("/v1/chat/completions", "POST")[-1]
    assert 100 - (10 + len(sent.body) // 4) < spent <= 100


def test_money_budget_counts_priced_models_only(sdk, make_token, team, fake_upstream, written):
    value = make_token()
    _limit(team, value, monthly_money_budget=Decimal("0.05"), budget_currency="USD")
    client = sdk(value)
    _chat(client, max_tokens=10)  # no price yet: a money budget does not hold it back
    written()

    # 1,000 USD a million tokens, set after the grant was cached: a call of 14 tokens costs
    # 0.014 USD, and the month's spend is read again from the recorded calls, priced.
    make_price(team, model="gpt-4o", input="1000", output="1000", cached=None)
    _chat(client, max_tokens=10)  # 0.014 spent + about 0.030 reserved <= 0.05
    with pytest.raises(openai.RateLimitError) as refused:
        _chat(client, max_tokens=10)
    assert refused.value.code == "insufficient_quota"
    message = refused.value.body["message"]
    assert "the monthly budget of 0.05 USD" in message and "(0.02 left)" in message
    # A model without a price is not held back by a money budget.
    assert client.chat.completions.create(model="o3", messages=HELLO).choices


def test_team_default_member_limit_and_changes_take_effect(
    sdk, make_token, team, member, fake_upstream, written
):
    default = UsageLimit.objects.create(
        team=team, target=LimitTarget.TEAM_DEFAULT, requests_per_minute=1
    )
    plain, own = make_token(name="plain"), make_token(name="own")
    _limit(team, own, requests_per_minute=5)
    _chat(sdk(plain))
    with pytest.raises(openai.RateLimitError) as refused:
        _chat(sdk(plain))
    assert (
        "the team's default limit (for tokens without their own)" in refused.value.body["message"]
    )
    _chat(sdk(own))
    _chat(sdk(own))  # its own row, not the default

    # The member's limit covers both tokens; set after the grants were cached, it applies.
    UsageLimit.objects.create(
        team=team, target=LimitTarget.MEMBER, user=member, concurrent_requests=0
    )
    with pytest.raises(openai.RateLimitError) as refused:
        _chat(sdk(own))
    assert "this member's limit" in refused.value.body["message"]
    UsageLimit.objects.filter(target=LimitTarget.MEMBER).delete()
    default.delete()
    for _ in range(2):
        _chat(sdk(plain))
    # Each refusal is recorded with the limit that refused it, and whose.
    assert [c.refusal for c in written() if c.refused] == [
        Refusal.TEAM_DEFAULT_RPM,
        Refusal.MEMBER_CONCURRENT,
    ]


def test_limits_answer_plain_http_too(gateway, make_token, team):
    value = make_token()
    _limit(team, value, requests_per_minute=0)
    answer = httpx.get(f"{gateway.url}/models", headers={"Authorization": f"Bearer {value}"})
    assert answer.status_code == 429
    assert answer.json()["error"]["code"] == "rate_limit_exceeded"
