"""The gateway's limits, enforced (issue 14): shared counters, checked and reserved at once.

What applies to a call: the limit row of its token, or the team's default when the token has
none of its own (so the default covers every token without a row, old or new, each counted on
its own); and, for a member's token, the member's row too, counted over all of that member's
tokens in the team. Each row may set:

- requests per minute and tokens per minute, counted in fixed 60-second windows aligned on
  the clock's minutes (`x-ratelimit-reset-*` is then simply the time to the next minute).
  A fixed window costs one small hash per limit; its known weakness, up to twice the limit
  across a minute's edge, is what the provider's own limits tolerate too;
- concurrent requests: a slot per call in flight, given back when the call ends (the answer
  sent, the client gone, an error), and expiring after `SLOT_SECONDS` should its process die
  holding it;
- a monthly budget in tokens, and in money (counted only for the models the team has priced,
  in the limit's currency: an unpriced model costs nothing Tablero knows of, so a money budget
  does not hold it back). The month is the calendar month in UTC. The month's spend is read
  from the database (the recorded calls' usage) the first time the month's counter is needed
  and then kept in the counter, which each answer's usage increments. A call costs the team's
  price for its model on its day (UTC), the price the pages show it at: when a price is set,
  changed or removed, the month's money counters of the team are dropped
  (`forget_team_money`) and the next call counts them again from the records at the new
  prices, so that the gateway and the pages agree on what was spent.

A call reserves, before it is forwarded: one request; its tokens, estimated as its largest
answer (`max_tokens`, `max_completion_tokens` or `max_output_tokens` of a JSON body; else
`DEFAULT_OUTPUT_TOKENS` for the paths that generate text) plus its input (a JSON body's bytes
/ 4); their price, for a money budget; and a concurrency slot. A budget lets a call through
only if the budget, minus what was spent, minus what calls in flight have reserved, covers
the call's reservation: however many calls run at once, the spend stops within one
reservation of the budget (as long as answers use no more than they reserved). When the call
ends (in a task of its own, once the answer is out) its reservation is settled from the
answer's `usage`: the tokens counted per minute are corrected and the month's spend
incremented by what was used. An answer that succeeded
without a `usage` block (a stream without `include_usage`, a client gone mid-answer) is
charged its reservation, which is all Tablero knows of it; an error is charged nothing.

Counters live in Redis when the cache (`CACHE_URL`) is Redis: one Lua script checks and
reserves every limit of a call in one round trip, atomically across all processes; another
settles. Otherwise (the embedded default of `make run`: one uvicorn process, the local memory
cache) the counters are this process's memory, exact there since every call passes through
it; several processes without Redis would each count on their own. The windows and slots use
Redis's clock, so processes on several machines agree.

If the counters cannot be reached, calls go through (logged): a broken Redis must not stop
every program of the team. Money is counted in millionths of the currency's unit.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import math
import secrets
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any
from uuid import UUID

from django.conf import settings

from lib import dbwork

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "SLOT_SECONDS",
    "Demand",
    "Limit",
    "LimitSource",
    "Refusal",
    "Ticket",
    "acquire",
    "counters",
    "demand_of",
    "forget_team_money",
    "month_bounds",
    "month_of",
    "month_range",
    "settle",
    "settle_soon",
    "with_headers",
]

logger = logging.getLogger(__name__)

# The answer's size reserved when a text-generating call names none.
DEFAULT_OUTPUT_TOKENS = 1024
# A concurrency slot (and the reservation with it) is given back at the latest after this long:
# longer than the gateway waits for the provider's next bytes (upstream.READ_SECONDS), so what
# lapses is a dead process's slot, or that of a stream longer than this.
SLOT_SECONDS = 660
WINDOW_MS = 60_000
# Connections to Redis per process and event loop.
REDIS_CONNECTIONS = 32
MICRO = Decimal(1_000_000)
# Paths whose answer is generated text, where an absent maximum means the model's own.
_GENERATES = frozenset({"chat/completions", "completions", "responses"})
_MAX_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


class LimitSource:
    """Whose limit it is (the words the refusals use)."""

    TOKEN = "token"
    MEMBER = "member"
    TEAM_DEFAULT = "team_default"


_WHOSE = {
    LimitSource.TOKEN: "this token's limit",
    LimitSource.MEMBER: "this member's limit (over all their tokens in the team)",
    LimitSource.TEAM_DEFAULT: "the team's default limit (for tokens without their own)",
}
# A refusal's kind, as its record says it (gateway.models.Refusal): a call larger than the
# tokens per minute is refused by that limit.
_REFUSAL_KINDS = {
    "requests": "rpm",
    "tokens": "tpm",
    "too_large": "tpm",
    "concurrent": "concurrent",
    "budget_tokens": "month_tokens",
    "budget_money": "month_money",
}
_RAISE = "A team admin can raise it on the team's limits page in Tablero."


@dataclass(frozen=True)
class Limit:
    """One limit row as the hot path needs it (held in the token's grant)."""

    source: str  # a LimitSource
    key: str  # whose counters: "t:<token>" or "m:<team>:<user>"
    team_id: UUID
    token_id: UUID | None  # the calls counted: this token's...
    user_id: UUID | None  # ...or this member's in the team
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_requests: int | None = None
    monthly_token_budget: int | None = None
    monthly_money_budget: Decimal | None = None
    budget_currency: str = ""

    @property
    def has_budget(self) -> bool:
        return self.monthly_token_budget is not None or self.money_budget_micro is not None

    @property
    def money_budget_micro(self) -> int | None:
        if self.monthly_money_budget is None or not self.budget_currency:
            return None
        return int(self.monthly_money_budget * MICRO)

    @property
    def tracked(self) -> bool:
        """Whether its calls in flight are held (for concurrency or a budget)."""
        return self.concurrent_requests is not None or self.has_budget


@dataclass(frozen=True)
class Demand:
    """What a call asks for, before it is forwarded."""

    tokens: int
    model: str


def demand_of(method: str, path: str, content_type: bytes, body: bytes, model: str) -> Demand:
    """The tokens a call reserves: its largest answer plus its input estimated from its size."""
    if method != "POST" or not content_type.startswith(b"application/json"):
        return Demand(tokens=0, model=model)
    output = None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for name in _MAX_FIELDS:
            value = data.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                output = value
                break
    if output is None:
        output = DEFAULT_OUTPUT_TOKENS if path in _GENERATES else 0
    return Demand(tokens=output + len(body) // 4, model=model)


def month_of(moment: datetime.datetime) -> str:
    """The budget month of a moment: the calendar month in UTC, "2026-11"."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m")


def month_bounds(month: str) -> tuple[datetime.datetime, datetime.datetime]:
    """The start of a budget month and of the next, in UTC."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime.datetime(year, number, 1, tzinfo=datetime.UTC)
    end = datetime.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=datetime.UTC)
    return start, end


def month_range(
    now: datetime.datetime | None = None,
) -> tuple[datetime.datetime, datetime.datetime]:
    """The budget month holding `now` (this moment by default): its start and the next
    month's, in UTC. Every "this month" that a page compares with a budget is this one, the
    month the budgets are enforced in, whatever the site's time zone (TIME_ZONE)."""
    return month_bounds(month_of(now or datetime.datetime.now(datetime.UTC)))


# -- prices --------------------------------------------------------------------------------


def _micro(amount: Decimal, rounding: str) -> int:
    return int((amount * MICRO).to_integral_value(rounding=rounding))


def reserved_money(
    limit: Limit, prices: Any, *, model: str, tokens: int, today: datetime.date
) -> int:
    """The money a reservation of `tokens` holds against `limit`'s budget, in millionths,
    priced as output (the dearer side); -1 when the model has no price in the budget's
    currency (the budget then does not apply)."""
    price = prices.price_on(model, today) if prices is not None and model else None
    if price is None or price.currency != limit.budget_currency:
        return -1
    dearest = max(price.input_per_million, price.output_per_million)
    return _micro(Decimal(tokens) * dearest / MICRO, ROUND_CEILING)


def spent_money(
    limit: Limit,
    prices: Any,
    *,
    model: str,
    day: datetime.date,
    input: int,
    cached: int,
    output: int,
) -> int:
    """What a call cost in `limit`'s currency, in millionths; -1 when not priced in it."""
    price = prices.price_on(model, day) if prices is not None and model else None
    if price is None or price.currency != limit.budget_currency:
        return -1
    money = prices.cost_at(price, input=input, cached=cached, output=output)
    return _micro(money.amounts.get(price.currency, Decimal(0)), ROUND_HALF_UP)


# -- what acquire answers ------------------------------------------------------------------


@dataclass
class Ticket:
    """A call's reservation, to settle when it ends."""

    member: str  # its entry among the calls in flight
    window: int
    month: str
    limits: tuple[Limit, ...]
    tokens: int
    money: tuple[int, ...]  # per limit, -1 where no money budget applies
    prices: Any
    store: Any  # the counters it was reserved in, where it is settled
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    settled: bool = False


@dataclass(frozen=True)
class Refusal:
    limit: Limit
    kind: str  # requests, tokens, too_large, concurrent, budget_tokens, budget_money
    ceiling: int
    remaining: int
    reset_ms: int
    window_requests: tuple[int, int, int] | None = None  # limit, remaining, reset ms
    window_tokens: tuple[int, int, int] | None = None

    @property
    def quota(self) -> bool:
        return self.kind in ("budget_tokens", "budget_money")

    @property
    def refusal(self) -> str:
        """Which limit, and whose, as the call's record keeps it (a gateway.models.Refusal)."""
        return f"limit_{self.limit.source}_{_REFUSAL_KINDS[self.kind]}"

    @property
    def code(self) -> str:
        return "insufficient_quota" if self.quota else "rate_limit_exceeded"

    @property
    def error_type(self) -> str:
        if self.quota:
            return "insufficient_quota"
        return "tokens" if self.kind in ("tokens", "too_large") else "requests"

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.reset_ms / 1000))

    @property
    def message(self) -> str:
        whose = _WHOSE[self.limit.source]
        wait = f"try again in {self.retry_after} s."
        if self.kind == "requests":
            text = f"{whose} of {self.ceiling} requests per minute is reached; {wait}"
        elif self.kind == "tokens":
            text = (
                f"{whose} of {self.ceiling} tokens per minute is reached (a call reserves its "
                f"max_tokens, or {DEFAULT_OUTPUT_TOKENS}, plus its input); {wait}"
            )
        elif self.kind == "too_large":
            text = (
                f"this call alone would reserve more than {whose} of {self.ceiling} tokens "
                f"per minute; ask for fewer tokens (max_tokens) or a smaller input."
            )
        elif self.kind == "concurrent":
            text = f"{whose} of {self.ceiling} requests at once is reached; {wait}"
        elif self.kind == "budget_tokens":
            text = (
                f"{whose}: the monthly budget of {self.ceiling} tokens (calendar month, UTC) "
                f"is spent or would be by this call ({max(0, self.remaining)} left; a call "
                f"reserves its max_tokens, or {DEFAULT_OUTPUT_TOKENS}, plus its input)."
            )
        else:
            budget = Decimal(self.ceiling) / MICRO
            left = Decimal(max(0, self.remaining)) / MICRO
            text = (
                f"{whose}: the monthly budget of {budget:.2f} {self.limit.budget_currency} "
                f"(calendar month, UTC) is spent or would be by this call ({left:.2f} left)."
            )
        return f"{text} {_RAISE}"

    def headers(self) -> list[tuple[bytes, bytes]]:
        found: list[tuple[bytes, bytes]] = []
        if not self.quota:
            found.append((b"retry-after", str(self.retry_after).encode()))
            found.append((b"retry-after-ms", str(max(1, self.reset_ms)).encode()))
        else:
            found.append((b"x-should-retry", b"false"))  # a spent budget does not come back
        if self.kind == "too_large":
            found.append((b"x-should-retry", b"false"))
        found += _window_headers(b"x-ratelimit-", self.window_requests, self.window_tokens)
        return found


def _reset_text(ms: int) -> str:
    """A reset time as the provider writes it: "250ms", "12s", "1m3s"."""
    if ms < 1000:
        return f"{max(0, ms)}ms"
    seconds = math.ceil(ms / 1000)
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"


def _window_headers(
    prefix: bytes,
    requests: tuple[int, int, int] | None,
    tokens: tuple[int, int, int] | None,
) -> list[tuple[bytes, bytes]]:
    found = []
    for name, figures in ((b"requests", requests), (b"tokens", tokens)):
        if figures is not None:
            ceiling, remaining, reset = figures
            found.append((prefix + b"limit-" + name, str(ceiling).encode()))
            found.append((prefix + b"remaining-" + name, str(max(0, remaining)).encode()))
            found.append((prefix + b"reset-" + name, _reset_text(reset).encode()))
    return found


# -- the counters' protocol, written once ---------------------------------------------------
#
# Per limit key K (three keys in Redis, three dicts in memory):
#   K:state  hash: w (the window: ms // 60000), r and t (requests and tokens in it), ht and hm
#            (tokens and money held by the calls in flight)
#   K:live   the calls in flight: member "<id>|<tokens>|<money>" -> when it lapses (ms)
#   K:spent:<month>  hash: "tok" (tokens spent), "<currency>" (money spent, millionths)
# acquire(args per limit: rpm, tpm, concurrent, token budget, money budget, currency,
#         reserved money; -1 for "none"), for every limit or none:
#   1. drop the lapsed calls in flight (and what they held); 2. refuse with the first limit
#   reached, or ask for the month's spend to be seeded when a budget's counter is absent;
#   3. count the request and its tokens in the window, hold them, add the call in flight.
# settle(member, window, reserved, used, used money per limit, -1 unknown): remove the call
#   from those in flight (and what it held, if it had not lapsed); correct the window's tokens
#   if the window is the same; add what was used to the month's spend if the counter exists.
# forget money(team, month): drop the money fields of the team's K:spent:<month> (the tokens
#   stay), so that the next acquire asks for a seed and the money is counted again from the
#   records at the prices in force now.

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = math.floor(now / 60000)
local reset = (window + 1) * 60000 - now
local member, slot, tokens = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local n = #KEYS / 3
local states = {}
for i = 1, n do
  local state, live, spent = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local a = 3 + (i-1) * 7
  local rpm, tpm, conc = tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), tonumber(ARGV[a+3])
  local btok, bmoney, currency = tonumber(ARGV[a+4]), tonumber(ARGV[a+5]), ARGV[a+6]
  local money = tonumber(ARGV[a+7])
  local s = redis.call('HMGET', state, 'w', 'r', 't', 'ht', 'hm')
  local r, tk = tonumber(s[2]) or 0, tonumber(s[3]) or 0
  local ht, hm = tonumber(s[4]) or 0, tonumber(s[5]) or 0
  if tonumber(s[1]) ~= window then r = 0; tk = 0 end
  if conc >= 0 or btok >= 0 or bmoney >= 0 then
    local lapsed = redis.call('ZRANGEBYSCORE', live, '-inf', now)
    if #lapsed > 0 then
      for _, gone in ipairs(lapsed) do
        local _, _, gt, gm = string.find(gone, '|(%-?%d+)|(%-?%d+)$')
        ht = ht - (tonumber(gt) or 0)
        if tonumber(gm) and tonumber(gm) > 0 then hm = hm - tonumber(gm) end
      end
      if ht < 0 then ht = 0 end
      if hm < 0 then hm = 0 end
      redis.call('ZREMRANGEBYSCORE', live, '-inf', now)
      redis.call('HSET', state, 'ht', ht, 'hm', hm)
    end
  end
  if rpm >= 0 and r + 1 > rpm then
    return {'refuse', i, 'requests', rpm, rpm - r, reset, r, tk}
  end
  if tpm >= 0 and tokens > tpm then
    return {'refuse', i, 'too_large', tpm, tpm - tk, reset, r, tk}
  end
  if tpm >= 0 and tk + tokens > tpm then
    return {'refuse', i, 'tokens', tpm, tpm - tk, reset, r, tk}
  end
  if conc >= 0 and redis.call('ZCARD', live) >= conc then
    return {'refuse', i, 'concurrent', conc, 0, 1000, r, tk}
  end
  if btok >= 0 or (bmoney >= 0 and money >= 0) then
    local found = redis.call('HMGET', spent, 'tok', currency)
    if btok >= 0 then
      if not found[1] then return {'seed', i} end
      local left = btok - tonumber(found[1]) - ht
      if tokens > left then return {'refuse', i, 'budget_tokens', btok, left, 0, r, tk} end
    end
    if bmoney >= 0 and money >= 0 then
      if not found[2] then return {'seed', i} end
      local left = bmoney - tonumber(found[2]) - hm
      if money > left then return {'refuse', i, 'budget_money', bmoney, left, 0, r, tk} end
    end
  end
  -- The entry is written from the arguments' text, as settle writes it (no number format).
  local text = ARGV[a+7]
  if money < 0 then money = 0; text = '0' end
  states[i] = {r, tk, ht, hm, conc >= 0 or btok >= 0 or bmoney >= 0, money, text}
end
local counts = {'ok', window, reset}
for i = 1, n do
  local state, live = KEYS[3*i-2], KEYS[3*i-1]
  local r, tk, ht, hm, tracked, money, text = unpack(states[i])
  if tracked then
    redis.call('ZADD', live, now + slot, member .. '|' .. ARGV[3] .. '|' .. text)
    redis.call('PEXPIRE', live, slot + 60000)
    ht = ht + tokens
    hm = hm + money
  end
  redis.call('HSET', state, 'w', window, 'r', r + 1, 't', tk + tokens, 'ht', ht, 'hm', hm)
  redis.call('PEXPIRE', state, slot + 60000)
  table.insert(counts, r + 1)
  table.insert(counts, tk + tokens)
end
return counts
"""

_SETTLE = """
local member, window = ARGV[1], tonumber(ARGV[2])
local reserved, used = tonumber(ARGV[3]), tonumber(ARGV[4])
local n = #KEYS / 3
for i = 1, n do
  local state, live, spent = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local a = 4 + (i-1) * 3
  local held, money, currency = tonumber(ARGV[a+1]), tonumber(ARGV[a+2]), ARGV[a+3]
  if held < 0 then held = 0 end
  if redis.call('ZREM', live, member .. '|' .. ARGV[3] .. '|' .. ARGV[a+1]) == 1 then
    local s = redis.call('HMGET', state, 'ht', 'hm')
    local ht = math.max(0, (tonumber(s[1]) or 0) - reserved)
    local hm = math.max(0, (tonumber(s[2]) or 0) - held)
    redis.call('HSET', state, 'ht', ht, 'hm', hm)
  end
  if tonumber(redis.call('HGET', state, 'w')) == window then
    local tk = tonumber(redis.call('HGET', state, 't')) or 0
    redis.call('HSET', state, 't', math.max(0, tk + used - reserved))
  end
  if redis.call('HEXISTS', spent, 'tok') == 1 then
    redis.call('HINCRBY', spent, 'tok', used)
  end
  if money >= 0 and currency ~= '' and redis.call('HEXISTS', spent, currency) == 1 then
    redis.call('HINCRBY', spent, currency, money)
  end
end
return 1
"""

_SEED = """
redis.call('HSETNX', KEYS[1], 'tok', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
"""

# Every field of a month's spend but the tokens: the money per currency.
_FORGET_MONEY = """
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  if name ~= 'tok' then redis.call('HDEL', KEYS[1], name) end
end
return 1
"""

_PREFIX = "tablero:limits:"


def _keys(limit: Limit, month: str) -> list[str]:
    # The team in braces: a call's token and member keys share a Redis Cluster hash slot.
    base = f"{_PREFIX}{{{limit.team_id.hex}}}:{limit.key}"
    return [f"{base}:state", f"{base}:live", f"{base}:spent:{month}"]


def _acquire_args(limits: Sequence[Limit], money: Sequence[int]) -> list[Any]:
    args: list[Any] = []
    for limit, held in zip(limits, money, strict=True):
        micro = limit.money_budget_micro
        args += [
            _or_none(limit.requests_per_minute),
            _or_none(limit.tokens_per_minute),
            _or_none(limit.concurrent_requests),
            _or_none(limit.monthly_token_budget),
            -1 if micro is None else micro,
            limit.budget_currency if micro is not None else "",
            held if micro is not None else -1,
        ]
    return args


def _or_none(value: int | None) -> int:
    return -1 if value is None else value


class RedisCounters:
    """The counters in Redis, through the `redis` library's asyncio client (one pool per
    event loop)."""

    def __init__(self, url: str) -> None:
        self.url = url
        # Per event loop (an asyncio client belongs to one), forgotten with it.
        self._scripts: weakref.WeakKeyDictionary[Any, tuple[Any, Any, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self) -> tuple[Any, Any, Any]:
        import redis.asyncio

        loop = asyncio.get_running_loop()
        found = self._scripts.get(loop)
        if found is None:
            # A bounded pool that waits for a free connection (up to 2 s) rather than fail:
            # each use is one short round trip, so a few dozen serve hundreds of calls.
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                self.url, max_connections=REDIS_CONNECTIONS, timeout=2, socket_timeout=2
            )
            client = redis.asyncio.Redis(connection_pool=pool)
            found = self._scripts[loop] = (
                client.register_script(_ACQUIRE),
                client.register_script(_SETTLE),
                client.register_script(_SEED),
            )
        return found

    async def acquire(
        self, limits: Sequence[Limit], money: Sequence[int], *, member: str, tokens: int, month: str
    ) -> list[Any]:
        script = self._client()[0]
        keys = [key for limit in limits for key in _keys(limit, month)]
        answer = await script(
            keys=keys,
            args=[member, SLOT_SECONDS * 1000, tokens, *_acquire_args(limits, money)],
        )
        return [part.decode() if isinstance(part, bytes) else part for part in answer]

    async def settle(
        self,
        limits: Sequence[Limit],
        *,
        member: str,
        window: int,
        month: str,
        reserved: int,
        used: int,
        held: Sequence[int],
        spent: Sequence[int],
    ) -> None:
        script = self._client()[1]
        keys = [key for limit in limits for key in _keys(limit, month)]
        args: list[Any] = [member, window, reserved, used]
        for limit, money_held, money_spent in zip(limits, held, spent, strict=True):
            currency = limit.budget_currency if limit.money_budget_micro is not None else ""
            args += [money_held, money_spent if currency else -1, currency]
        await script(keys=keys, args=args)

    async def seed(self, limit: Limit, month: str, tokens: int, money: int) -> None:
        script = self._client()[2]
        _start, end = month_bounds(month)
        expires = int((end + datetime.timedelta(days=7)).timestamp() * 1000)
        currency = limit.budget_currency if limit.money_budget_micro is not None else ""
        await script(keys=[_keys(limit, month)[2]], args=[tokens, currency, money, expires])

    def forget_money(self, team_id: UUID, month: str) -> None:
        """Drop the money spent in `month` from the counters of `team_id`'s limits (blocking:
        a price change is rare, and made on a page, not on the gateway's path)."""
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=2)
        try:
            forget = client.register_script(_FORGET_MONEY)
            pattern = f"{_PREFIX}{{{team_id.hex}}}:*:spent:{month}"
            for key in client.scan_iter(match=pattern, count=1000):
                forget(keys=[key])
        finally:
            client.close()

    def clear(self) -> None:
        """Drop every counter (tests)."""
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            for key in client.scan_iter(match=f"{_PREFIX}*", count=1000):
                client.delete(key)
        finally:
            client.close()


@dataclass
class _State:
    window: int = -1
    requests: int = 0
    tokens: int = 0
    held_tokens: int = 0
    held_money: int = 0
    live: dict[str, tuple[float, int, int]] = field(default_factory=dict)  # lapses, tok, money


class MemoryCounters:
    """The same protocol in this process's memory, under a lock: exact for one process (the
    embedded `make run`), and per process otherwise."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}
        self._spent: dict[tuple[str, str], dict[str, int]] = {}
        self._teams: dict[str, UUID] = {}  # each limit key's team, for forget_money

    async def acquire(
        self, limits: Sequence[Limit], money: Sequence[int], *, member: str, tokens: int, month: str
    ) -> list[Any]:
        now = int(time.time() * 1000)
        window = now // WINDOW_MS
        reset = (window + 1) * WINDOW_MS - now
        with self._lock:
            found = []
            for i, (limit, held) in enumerate(zip(limits, money, strict=True), start=1):
                state = self._states.setdefault(limit.key, _State())
                if state.window != window:
                    state.window, state.requests, state.tokens = window, 0, 0
                for name, (lapses, tok, mon) in list(state.live.items()):
                    if lapses <= now:
                        del state.live[name]
                        state.held_tokens = max(0, state.held_tokens - tok)
                        state.held_money = max(0, state.held_money - mon)
                r, tk = state.requests, state.tokens
                rpm, tpm = limit.requests_per_minute, limit.tokens_per_minute
                if rpm is not None and r + 1 > rpm:
                    return ["refuse", i, "requests", rpm, rpm - r, reset, r, tk]
                if tpm is not None and tokens > tpm:
                    return ["refuse", i, "too_large", tpm, tpm - tk, reset, r, tk]
                if tpm is not None and tk + tokens > tpm:
                    return ["refuse", i, "tokens", tpm, tpm - tk, reset, r, tk]
                conc = limit.concurrent_requests
                if conc is not None and len(state.live) >= conc:
                    return ["refuse", i, "concurrent", conc, 0, 1000, r, tk]
                spent = self._spent.get((limit.key, month), {})
                if limit.monthly_token_budget is not None:
                    if "tok" not in spent:
                        return ["seed", i]
                    left = limit.monthly_token_budget - spent["tok"] - state.held_tokens
                    if tokens > left:
                        budget = limit.monthly_token_budget
                        return ["refuse", i, "budget_tokens", budget, left, 0, r, tk]
                micro = limit.money_budget_micro
                if micro is not None and held >= 0:
                    if limit.budget_currency not in spent:
                        return ["seed", i]
                    left = micro - spent[limit.budget_currency] - state.held_money
                    if held > left:
                        return ["refuse", i, "budget_money", micro, left, 0, r, tk]
                found.append((state, limit, max(0, held) if micro is not None else 0))
            counts: list[Any] = ["ok", window, reset]
            for state, limit, held in found:
                state.requests += 1
                state.tokens += tokens
                if limit.tracked:
                    state.live[member] = (now + SLOT_SECONDS * 1000, tokens, held)
                    state.held_tokens += tokens
                    state.held_money += held
                counts += [state.requests, state.tokens]
            return counts

    async def settle(
        self,
        limits: Sequence[Limit],
        *,
        member: str,
        window: int,
        month: str,
        reserved: int,
        used: int,
        held: Sequence[int],
        spent: Sequence[int],
    ) -> None:
        with self._lock:
            for limit, money_spent in zip(limits, spent, strict=True):
                state = self._states.get(limit.key)
                if state is not None:
                    gone = state.live.pop(member, None)
                    if gone is not None:
                        state.held_tokens = max(0, state.held_tokens - gone[1])
                        state.held_money = max(0, state.held_money - gone[2])
                    if state.window == window:
                        state.tokens = max(0, state.tokens + used - reserved)
                counter = self._spent.get((limit.key, month))
                if counter is not None:
                    if "tok" in counter:
                        counter["tok"] += used
                    currency = limit.budget_currency
                    if money_spent >= 0 and currency and currency in counter:
                        counter[currency] += money_spent

    async def seed(self, limit: Limit, month: str, tokens: int, money: int) -> None:
        with self._lock:
            self._teams[limit.key] = limit.team_id
            counter = self._spent.setdefault((limit.key, month), {})
            counter.setdefault("tok", tokens)
            if limit.money_budget_micro is not None:
                counter.setdefault(limit.budget_currency, money)

    def forget_money(self, team_id: UUID, month: str) -> None:
        with self._lock:
            for (key, counted), counter in self._spent.items():
                if counted == month and self._teams.get(key) == team_id:
                    for name in [name for name in counter if name != "tok"]:
                        del counter[name]

    def clear(self) -> None:
        with self._lock:
            self._states.clear()
            self._spent.clear()
            self._teams.clear()


_counters: RedisCounters | MemoryCounters | None = None
_counters_for: Any = None


def _redis_url() -> str | None:
    """CACHE_URL's Redis server, when the cache is Redis (the first server, the primary)."""
    cache = settings.CACHES.get("default", {})
    if not cache.get("BACKEND", "").endswith("RedisCache"):
        return None
    location = cache.get("LOCATION")
    if isinstance(location, list | tuple):
        location = location[0] if location else None
    if isinstance(location, str):
        location = location.split(",")[0].strip()
    return location or None


def counters() -> RedisCounters | MemoryCounters:
    """The counters for the cache in use (chosen again if the cache setting changes)."""
    global _counters, _counters_for
    url = _redis_url()
    if _counters is None or _counters_for != url:
        _counters = RedisCounters(url) if url else MemoryCounters()
        _counters_for = url
    return _counters


def forget_team_money(team_id: UUID, *, store: Any = None) -> None:
    """The team's prices changed: drop this month's money spent from its limits' counters, to
    be counted again from the records at the new prices by the next call (`acquire` seeds
    what is missing). The tokens spent do not depend on prices and stay. A failure is logged,
    as the counters' failures are on the gateway's path."""
    store = store or counters()
    try:
        store.forget_money(team_id, month_of(datetime.datetime.now(datetime.UTC)))
    except Exception as error:
        logger.warning("Gateway limits: the counters failed (%s).", type(error).__name__)


# -- the month's spend from the database ----------------------------------------------------


def month_spent(limit: Limit, month: str, prices: Any) -> tuple[int, int]:
    """What `limit`'s calls spent in `month` as the database has them: (tokens, money in
    millionths of its currency, priced models only). Blocking (a thread runs it,
    `lib.dbwork.to_thread`)."""
    from django.db.models import Sum
    from django.db.models.functions import Coalesce, TruncDate

    from gateway.models import GatewayCall

    start, end = month_bounds(month)
    calls = GatewayCall.objects.filter(
        team_id=limit.team_id, created_at__gte=start, created_at__lt=end
    )
    if limit.token_id is not None:
        calls = calls.filter(token_id=limit.token_id)
    else:
        calls = calls.filter(user_id=limit.user_id)
    rows = (
        calls.annotate(day=TruncDate("created_at", tzinfo=datetime.UTC))
        .values("model", "day")
        .annotate(
            input=Coalesce(Sum("input_tokens"), 0),
            cached=Coalesce(Sum("cached_tokens"), 0),
            output=Coalesce(Sum("output_tokens"), 0),
        )
        .order_by()
    )
    tokens = money = 0
    for row in rows:
        tokens += row["input"] + row["output"]
        if limit.money_budget_micro is not None:
            cost = spent_money(
                limit,
                prices,
                model=row["model"],
                day=row["day"],
                input=row["input"],
                cached=row["cached"],
                output=row["output"],
            )
            money += max(0, cost)
    return tokens, money


# -- the hot path -----------------------------------------------------------------------------


async def acquire(
    limits: Sequence[Limit], demand: Demand, *, prices: Any = None, store: Any = None
) -> Ticket | Refusal | None:
    """Check and reserve a call against `limits`: its ticket (to `settle`), a Refusal, or
    None when no limit applies (or the counters cannot be reached). `store`: the counters
    (by default those of the cache in use, `counters()`)."""
    if not limits:
        return None
    now = datetime.datetime.now(datetime.UTC)
    month = month_of(now)
    money = tuple(
        reserved_money(limit, prices, model=demand.model, tokens=demand.tokens, today=now.date())
        if limit.money_budget_micro is not None
        else -1
        for limit in limits
    )
    member = secrets.token_hex(8)
    store = store or counters()
    try:
        for _attempt in range(len(limits) + 1):
            answer = await store.acquire(
                limits, money, member=member, tokens=demand.tokens, month=month
            )
            if answer[0] != "seed":
                break
            limit = limits[int(answer[1]) - 1]
            tokens, spent = await dbwork.to_thread(month_spent, limit, month, prices)
            await store.seed(limit, month, tokens, spent)
        else:
            return None
    except Exception as error:  # the counters are down: let the call through, say so
        logger.warning("Gateway limits: the counters failed (%s).", type(error).__name__)
        return None
    if answer[0] == "refuse":
        return _refusal(limits, answer)
    window, reset = int(answer[1]), int(answer[2])
    counts = [int(part) for part in answer[3:]]
    ticket = Ticket(
        member=member,
        window=window,
        month=month,
        limits=tuple(limits),
        tokens=demand.tokens,
        money=money,
        prices=prices,
        store=store,
    )
    ticket.headers = _success_headers(limits, counts, reset)
    return ticket


def _refusal(limits: Sequence[Limit], answer: list[Any]) -> Refusal:
    limit = limits[int(answer[1]) - 1]
    kind = str(answer[2])
    ceiling, remaining, reset = int(answer[3]), int(answer[4]), int(answer[5])
    window_requests = window_tokens = None
    if len(answer) > 7:
        used_requests, used_tokens = int(answer[6]), int(answer[7])
        window_reset = reset if kind != "concurrent" else _to_minute()
        if limit.requests_per_minute is not None:
            window_requests = (
                limit.requests_per_minute,
                limit.requests_per_minute - used_requests,
                window_reset,
            )
        if limit.tokens_per_minute is not None:
            window_tokens = (
                limit.tokens_per_minute,
                limit.tokens_per_minute - used_tokens,
                window_reset,
            )
    return Refusal(
        limit=limit,
        kind=kind,
        ceiling=ceiling,
        remaining=remaining,
        reset_ms=reset,
        window_requests=window_requests,
        window_tokens=window_tokens,
    )


def _to_minute() -> int:
    now = int(time.time() * 1000)
    return (now // WINDOW_MS + 1) * WINDOW_MS - now


def _success_headers(
    limits: Sequence[Limit], counts: Sequence[int], reset: int
) -> list[tuple[bytes, bytes]]:
    """Tablero's own window figures for an answer (`x-tablero-ratelimit-*`; the provider's
    `x-ratelimit-*` pass unchanged): the tightest limit of each kind."""
    requests = tokens = None
    for index, limit in enumerate(limits):
        used_requests, used_tokens = counts[2 * index], counts[2 * index + 1]
        if limit.requests_per_minute is not None:
            left = limit.requests_per_minute - used_requests
            if requests is None or left < requests[1]:
                requests = (limit.requests_per_minute, left, reset)
        if limit.tokens_per_minute is not None:
            left = limit.tokens_per_minute - used_tokens
            if tokens is None or left < tokens[1]:
                tokens = (limit.tokens_per_minute, left, reset)
    return _window_headers(b"x-tablero-ratelimit-", requests, tokens)


def with_headers(send: Any, headers: list[tuple[bytes, bytes]]) -> Any:
    """`send` adding `headers` to the answer's start (Tablero's window figures)."""
    if not headers:
        return send

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message["headers"], *headers]}
        await send(message)

    return sending


_settling: set[asyncio.Task[None]] = set()


def settle_soon(ticket: Ticket, call: Any) -> None:
    """`settle`, in a task of its own: the answer is out and its connection free for the
    client's next call one round trip sooner. (Until it is done, the call's reservation still
    counts: a next call sees the counters a moment stale, never generous.)"""
    task = asyncio.ensure_future(settle(ticket, call))
    _settling.add(task)
    task.add_done_callback(_settling.discard)


async def settle(ticket: Ticket, call: Any) -> None:
    """Give back the call's reservation and count what it used (its `usage`, or its
    reservation when it succeeded without one; nothing when it failed)."""
    if ticket.settled:
        return
    ticket.settled = True
    input, cached, output = call.input_tokens, call.cached_tokens, call.output_tokens
    if input is None and output is None:
        # No usage block: a success is charged its reservation (all Tablero knows of it), a
        # failure (the provider's error, Tablero's, a client gone before any answer) nothing.
        used = ticket.tokens if 200 <= call.status < 300 else 0
        spent = tuple(held if used else min(held, 0) for held in ticket.money)
    else:
        used = (input or 0) + (output or 0)
        # The call's day (UTC), as the seed from the records and the pages price it.
        began = getattr(call, "created_at", None) or datetime.datetime.now(datetime.UTC)
        day = began.astimezone(datetime.UTC).date()
        spent = tuple(
            spent_money(
                limit,
                ticket.prices,
                model=call.model,
                day=day,
                input=input or 0,
                cached=cached or 0,
                output=output or 0,
            )
            if limit.money_budget_micro is not None
            else -1
            for limit in ticket.limits
        )
    try:
        await ticket.store.settle(
            ticket.limits,
            member=ticket.member,
            window=ticket.window,
            month=ticket.month,
            reserved=ticket.tokens,
            used=used,
            held=[max(0, held) for held in ticket.money],
            spent=spent,
        )
    except Exception as error:
        logger.warning("Gateway limits: settling failed (%s).", type(error).__name__)
