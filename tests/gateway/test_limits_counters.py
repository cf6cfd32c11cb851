"""The limits' counters (gateway.limits), on both backends: this process's memory and Redis
(database 8; skipped when no Redis answers). Checked and reserved at once, settled from the
usage, seeded from the recorded calls of the month (calendar month, UTC)."""

import asyncio
import datetime
import os
from decimal import Decimal

import pytest
import time_machine

from gateway import limits
from gateway.limits import Demand, Limit, LimitSource, Refusal, Ticket
from gateway.prices import PriceBook
from tests.connections.helpers import make_connection
from tests.gateway.test_proxy_processes import _redis_answers
from tests.gateway.usage_helpers import make_call, make_price, make_token

# A database of its own (TABLERO_TEST_LIMITS_REDIS_URL: one per person sharing the machine).
REDIS_URL = os.environ.get("TABLERO_TEST_LIMITS_REDIS_URL", "redis://127.0.0.1:6379/8")


@pytest.fixture(params=["memory", "redis"])
def backend(request, settings):
    if request.param == "redis":
        if not _redis_answers():
            pytest.skip("Redis is not reachable on 127.0.0.1:6379 (CI starts one)")
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": REDIS_URL,
            }
        }
    store = limits.counters()
    assert isinstance(
        store, limits.RedisCounters if request.param == "redis" else limits.MemoryCounters
    )
    store.clear()
    yield request.param
    store.clear()


@pytest.fixture
def token(team, owner, member):
    return make_token(team, make_connection(team, created_by=owner), owner=member)


def _limit(token, **fields) -> Limit:
    return Limit(
        source=LimitSource.TOKEN,
        key=f"t:{token.pk.hex}",
        team_id=token.team_id,
        token_id=token.pk,
        user_id=None,
        **fields,
    )


class _Call:
    """What settle reads of a recorded call."""

    def __init__(self, status=200, input=None, cached=None, output=None, model="gpt-4o-mini"):
        self.status, self.model = status, model
        self.input_tokens, self.cached_tokens, self.output_tokens = input, cached, output


def _run(coroutine):
    return asyncio.run(coroutine)


def test_requests_per_minute(backend, token):
    limit = _limit(token, requests_per_minute=3)

    async def scenario():
        return [await limits.acquire([limit], Demand(tokens=0, model="")) for _ in range(4)]

    *passed, refused = _run(scenario())
    assert all(isinstance(ticket, Ticket) for ticket in passed)
    assert [ticket.headers[:2] for ticket in passed] == [
        [
            (b"x-tablero-ratelimit-limit-requests", b"3"),
            (b"x-tablero-ratelimit-remaining-requests", str(left).encode()),
        ]
        for left in (2, 1, 0)
    ]
    assert isinstance(refused, Refusal)
    assert (refused.kind, refused.ceiling, refused.remaining) == ("requests", 3, 0)
    assert (refused.code, refused.error_type) == ("rate_limit_exceeded", "requests")
    assert 1 <= refused.retry_after <= 60
    assert "this token's limit of 3 requests per minute" in refused.message
    assert "team admin" in refused.message
    headers = dict(refused.headers())
    assert headers[b"retry-after"] == str(refused.retry_after).encode()
    assert headers[b"x-ratelimit-limit-requests"] == b"3"
    assert headers[b"x-ratelimit-remaining-requests"] == b"0"
    assert headers[b"x-ratelimit-reset-requests"].endswith(b"s")


def test_the_window_is_the_clock_minute(backend, token):
    """A new minute counts from zero again (memory backend: the clock is pinned; Redis keeps
    its own clock, so there only the same minute is checked)."""
    if backend == "redis":
        pytest.skip("Redis's clock cannot be moved")
    limit = _limit(token, requests_per_minute=1)
    with time_machine.travel(
        datetime.datetime(2026, 11, 30, 12, 0, 59, tzinfo=datetime.UTC)
    ) as clock:
        assert isinstance(_run(limits.acquire([limit], Demand(0, ""))), Ticket)
        refused = _run(limits.acquire([limit], Demand(0, "")))
        assert isinstance(refused, Refusal) and refused.retry_after == 1
        clock.shift(1)
        assert isinstance(_run(limits.acquire([limit], Demand(0, ""))), Ticket)


def test_tokens_per_minute_reserved_then_settled(backend, token):
    limit = _limit(token, tokens_per_minute=1000)

    async def scenario():
        first = await limits.acquire([limit], Demand(tokens=600, model=""))
        refused = await limits.acquire([limit], Demand(tokens=600, model=""))
        # The answer used 100 of the 600 reserved: 900 are free again.
        await limits.settle(first, _Call(input=40, output=60))
        second = await limits.acquire([limit], Demand(tokens=600, model=""))
        too_large = await limits.acquire([limit], Demand(tokens=1001, model=""))
        return first, refused, second, too_large

    first, refused, second, too_large = _run(scenario())
    assert isinstance(first, Ticket) and isinstance(second, Ticket)
    assert (refused.kind, refused.remaining, refused.error_type) == ("tokens", 400, "tokens")
    assert dict(refused.headers())[b"x-ratelimit-remaining-tokens"] == b"400"
    assert dict(second.headers)[b"x-tablero-ratelimit-remaining-tokens"] == b"300"
    assert too_large.kind == "too_large"
    assert dict(too_large.headers())[b"x-should-retry"] == b"false"


def test_concurrent_requests_released_at_the_end(backend, token):
    limit = _limit(token, concurrent_requests=2)

    async def scenario():
        first = await limits.acquire([limit], Demand(0, ""))
        second = await limits.acquire([limit], Demand(0, ""))
        third = await limits.acquire([limit], Demand(0, ""))
        await limits.settle(first, _Call(status=499))
        fourth = await limits.acquire([limit], Demand(0, ""))
        return first, second, third, fourth

    first, second, third, fourth = _run(scenario())
    assert isinstance(first, Ticket) and isinstance(second, Ticket)
    assert isinstance(third, Refusal)
    assert (third.kind, third.ceiling, third.retry_after) == ("concurrent", 2, 1)
    assert "2 requests at once" in third.message
    assert isinstance(fourth, Ticket)


def test_a_dead_process_slot_lapses(backend, token, monkeypatch):
    monkeypatch.setattr(limits, "SLOT_SECONDS", 0.2)
    limit = _limit(token, concurrent_requests=1)

    async def scenario():
        held = await limits.acquire([limit], Demand(0, ""))  # never settled: its process died
        refused = await limits.acquire([limit], Demand(0, ""))
        # A real wait: the slot lapses on the counters' own clock (Redis's, or this one).
        await asyncio.sleep(0.3)
        return held, refused, await limits.acquire([limit], Demand(0, ""))

    held, refused, later = _run(scenario())
    assert isinstance(held, Ticket) and isinstance(refused, Refusal) and isinstance(later, Ticket)


@pytest.fixture
def pinned(pinned_clock):
    return pinned_clock


def test_token_budget_seeded_from_the_month_calls(backend, token, pinned):
    # Spent this month (UTC): 1,500 tokens; last month's calls do not count.
    make_call(token, input_tokens=1000, output_tokens=500)
    make_call(token, when=datetime.datetime(2026, 10, 31, 23, 0, tzinfo=datetime.UTC))
    limit = _limit(token, monthly_token_budget=2000)

    async def scenario():
        first = await limits.acquire([limit], Demand(tokens=300, model=""))
        refused = await limits.acquire([limit], Demand(tokens=300, model=""))
        await limits.settle(first, _Call(input=50, output=50))
        second = await limits.acquire([limit], Demand(tokens=300, model=""))
        await limits.settle(second, _Call(status=500))  # an error costs nothing
        third = await limits.acquire([limit], Demand(tokens=400, model=""))
        fourth = await limits.acquire([limit], Demand(tokens=1, model=""))
        return first, refused, second, third, fourth

    first, refused, second, third, fourth = _run(scenario())
    assert isinstance(first, Ticket) and first.month == "2026-11"
    # 2000 - 1500 spent - 300 held: 200 left, less than the 300 asked.
    assert (refused.kind, refused.remaining, refused.ceiling) == ("budget_tokens", 200, 2000)
    assert (refused.code, refused.error_type) == ("insufficient_quota", "insufficient_quota")
    assert dict(refused.headers())[b"x-should-retry"] == b"false"
    assert b"retry-after" not in dict(refused.headers())
    assert "monthly budget of 2000 tokens" in refused.message
    assert isinstance(second, Ticket)
    assert isinstance(third, Ticket)  # 2000 - 1600 = 400
    assert isinstance(fourth, Refusal)


def test_a_success_without_usage_is_charged_its_reservation(backend, token, pinned):
    limit = _limit(token, monthly_token_budget=1000)

    async def scenario():
        first = await limits.acquire([limit], Demand(tokens=600, model=""))
        await limits.settle(first, _Call(status=200))
        return await limits.acquire([limit], Demand(tokens=600, model=""))

    assert _run(scenario()).kind == "budget_tokens"


def test_money_budget_for_priced_models_only(backend, team, token, pinned):
    make_price(team, model="gpt-4o-mini", input="1.00", output="4.00", cached=None)
    make_price(team, model="euro-model", input="1.00", output="4.00", currency="EUR")
    # This month: 100,000 in + 50,000 out of gpt-4o-mini = 0.10 + 0.20 = 0.30 USD.
    make_call(token, input_tokens=100_000, cached_tokens=0, output_tokens=50_000)
    make_call(token, model="unpriced", input_tokens=10**6, output_tokens=10**6)
    book = PriceBook.for_team(team)
    limit = _limit(token, monthly_money_budget=Decimal("0.50"), budget_currency="USD")

    async def scenario():
        # 40,000 tokens reserved at the dearer price (4.00): 0.16 USD; 0.20 left.
        first = await limits.acquire([limit], Demand(40_000, "gpt-4o-mini"), prices=book)
        refused = await limits.acquire([limit], Demand(40_000, "gpt-4o-mini"), prices=book)
        unpriced = await limits.acquire([limit], Demand(40_000, "unpriced"), prices=book)
        other = await limits.acquire([limit], Demand(40_000, "euro-model"), prices=book)
        return first, refused, unpriced, other

    first, refused, unpriced, other = _run(scenario())
    assert first.money == (160_000,)
    assert (refused.kind, refused.ceiling, refused.remaining) == ("budget_money", 500_000, 40_000)
    assert "monthly budget of 0.50 USD" in refused.message and "0.04 left" in refused.message
    # Nothing pretends to know a price it was not given, nor converts currencies.
    assert isinstance(unpriced, Ticket) and isinstance(other, Ticket)


def test_member_limit_covers_all_their_tokens(backend, team, token, owner, member):
    other = make_token(team, token.connection, owner=member, name="other")
    member_limit = Limit(
        source=LimitSource.MEMBER,
        key=f"m:{team.pk.hex}:{member.pk.hex}",
        team_id=team.pk,
        token_id=None,
        user_id=member.pk,
        requests_per_minute=2,
    )

    async def scenario():
        return [
            await limits.acquire([_limit(one), member_limit], Demand(0, ""))
            for one in (token, other, token)
        ]

    first, second, third = _run(scenario())
    assert isinstance(first, Ticket) and isinstance(second, Ticket)
    assert third.limit.source == LimitSource.MEMBER
    assert "this member's limit (over all their tokens in the team)" in third.message


def test_no_two_calls_take_the_last_of_a_budget(backend, token, pinned):
    """50 calls at once against a budget of 10 reservations: exactly 10 pass."""
    limit = _limit(token, monthly_token_budget=1000, concurrent_requests=100)

    async def scenario():
        return await asyncio.gather(
            *(limits.acquire([limit], Demand(tokens=100, model="")) for _ in range(50))
        )

    found = _run(scenario())
    assert sum(isinstance(one, Ticket) for one in found) == 10
    assert {one.kind for one in found if isinstance(one, Refusal)} == {"budget_tokens"}


def test_the_budget_month_is_the_calendar_month_in_utc():
    evening_in_bogota = datetime.datetime(
        2026, 11, 30, 20, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
    )
    assert limits.month_of(evening_in_bogota) == "2026-12"
    assert limits.month_bounds("2026-12") == (
        datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC),
        datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC),
    )


@pytest.mark.parametrize(
    ("path", "body", "output"),
    [
        ("chat/completions", b'{"model": "m", "max_tokens": 50}', 50),
        ("chat/completions", b'{"model": "m", "max_completion_tokens": 70}', 70),
        ("responses", b'{"model": "m", "max_output_tokens": 90}', 90),
        ("responses", b'{"model": "m"}', limits.DEFAULT_OUTPUT_TOKENS),
        ("embeddings", b'{"model": "m", "input": "some text"}', 0),
        ("chat/completions", b'{"max_tokens": true}', limits.DEFAULT_OUTPUT_TOKENS),
    ],
)
def test_a_call_reserves_its_largest_answer_and_its_input(path, body, output):
    demand = limits.demand_of("POST", path, b"application/json", body, "m")
    assert demand.tokens == output + len(body) // 4


def test_a_call_without_a_json_body_reserves_no_tokens():
    assert limits.demand_of("GET", "models", b"", b"", "").tokens == 0
    assert limits.demand_of("POST", "files", b"multipart/form-data", b"x" * 400, "").tokens == 0


def test_a_price_change_counts_the_months_money_again_as_the_pages_show_it(
    backend, team, token, pinned, django_capture_on_commit_callbacks
):
    """The month's money counter was counted at the prices of its seed; a price changed since
    then must not leave the gateway and the pages apart."""
    from gateway import budgets, limit_services, price_services

    price = make_price(team, model="gpt-4o-mini", input="1.00", output="1.00", cached=None)
    make_call(token, input_tokens=2_000_000, cached_tokens=0, output_tokens=0)  # 2.00 USD
    limit_services.usage_limit_set(
        team=team,
        actor=None,
        token=token,
        monthly_token_budget=100_000_000,
        monthly_money_budget=Decimal("10"),
        budget_currency="USD",
    )
    limit = _limit(
        token,
        monthly_token_budget=100_000_000,
        monthly_money_budget=Decimal("10"),
        budget_currency="USD",
    )

    def call(tokens: int):
        demand = Demand(tokens, "gpt-4o-mini")
        return _run(limits.acquire([limit], demand, prices=PriceBook.for_team(team)))

    first = call(1000)  # the counter is seeded: 2.00 USD spent
    assert isinstance(first, Ticket)
    _run(limits.settle(first, _Call(input=0, cached=0, output=0)))

    # The admin finds the price was 5.00 per million all along: 10.00 USD spent.
    with django_capture_on_commit_callbacks(execute=True):
        price_services.model_price_update(
            price=price,
            actor=None,
            model="gpt-4o-mini",
            currency="USD",
            input_per_million=Decimal("5.00"),
            cached_input_per_million=None,
            output_per_million=Decimal("5.00"),
            effective_from=price.effective_from,
        )
    shown = budgets.budgets_of(team=team, group="token", keys=[token.pk])[token.pk]
    assert (shown.money_spent_text, shown.money_percent) == ("10.00 USD", 100)
    refused = call(1000)
    assert isinstance(refused, Refusal)
    assert (refused.kind, refused.ceiling, refused.remaining) == ("budget_money", 10**7, 0)
    # The tokens spent do not depend on the price: kept, not counted twice (1 token left).
    tight = _limit(token, monthly_token_budget=2_000_001)
    assert isinstance(_run(limits.acquire([tight], Demand(1, ""))), Ticket)
    assert isinstance(_run(limits.acquire([tight], Demand(1, ""))), Refusal)


def test_the_pages_price_a_budgets_calls_on_their_utc_day_as_the_gateway(
    team, token, pinned, settings
):
    """A price dated from 1 December: a call at 03:00 UTC that day is still 30 November in
    Mexico City (TIME_ZONE), yet a budget counts UTC days, on the page as at the gateway."""
    from gateway import budgets, limit_services

    settings.TIME_ZONE = "America/Mexico_City"
    pinned.move_to(datetime.datetime(2026, 12, 1, 4, 0, tzinfo=datetime.UTC))
    make_price(team, input="1.00", output="1.00", cached=None, day=datetime.date(2026, 11, 1))
    make_price(team, input="3.00", output="3.00", cached=None, day=datetime.date(2026, 12, 1))
    make_call(
        token,
        when=datetime.datetime(2026, 12, 1, 3, 0, tzinfo=datetime.UTC),
        input_tokens=1_000_000,
        cached_tokens=0,
        output_tokens=0,
    )
    limit = _limit(token, monthly_money_budget=Decimal("10"), budget_currency="USD")
    assert limits.month_spent(limit, "2026-12", PriceBook.for_team(team)) == (1_000_000, 3 * 10**6)
    limit_services.usage_limit_set(
        team=team,
        actor=None,
        token=token,
        monthly_money_budget=Decimal("10"),
        budget_currency="USD",
    )
    shown = budgets.budgets_of(team=team, group="token", keys=[token.pk])[token.pk]
    assert shown.money_spent_text == "3.00 USD"


def test_two_seeders_racing_count_the_month_once(backend, token, pinned, monkeypatch):
    """Two calls (two processes, in effect) find the month's counter missing at once and both
    read the month's spend from the records: only one seed counts, and what was settled in
    between is kept (the seed sets what is absent, in one step; it never adds nor overwrites)."""
    import threading

    make_call(token, input_tokens=1000, output_tokens=500)  # 1,500 tokens spent this month
    limit = _limit(token, monthly_token_budget=2000)
    both_read = threading.Barrier(2, timeout=10)
    read = limits.month_spent

    def month_spent(*args):
        found = read(*args)
        both_read.wait()  # neither seeds before the other has read the records
        return found

    monkeypatch.setattr(limits, "month_spent", month_spent)

    async def scenario():
        return await asyncio.gather(
            limits.acquire([limit], Demand(tokens=100, model="")),
            limits.acquire([limit], Demand(tokens=100, model="")),
        )

    first, second = _run(scenario())
    assert isinstance(first, Ticket) and isinstance(second, Ticket)
    for ticket in (first, second):
        _run(limits.settle(ticket, _Call(input=100, output=0)))
    # 1,500 + 200: 300 left, not 2000 - 3,200 (seeded twice).
    assert isinstance(_run(limits.acquire([limit], Demand(tokens=300, model=""))), Ticket)
    refused = _run(limits.acquire([limit], Demand(tokens=1, model="")))
    assert (refused.kind, refused.remaining) == ("budget_tokens", 0)
    # A seed arriving late (a third reader of older records) changes nothing either.
    _run(limits.counters().seed(limit, "2026-11", 0, 0))
    assert _run(limits.acquire([limit], Demand(tokens=1, model=""))).kind == "budget_tokens"
