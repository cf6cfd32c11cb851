"""Fair share of the provider's own rate limit among the tokens that use a connection.

Every answer of the provider carries `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`.
The gateway keeps the latest of them per connection (`observe`, in this process's memory: no
I/O). While a connection is far from its limit, `check` costs a dictionary update and nothing
else. Once the remaining requests or tokens fall below `TABLERO_FAIR_SHARE_BELOW` of the limit
(10 % by default) and until the provider's reset, what was left when that happened is shared
among the tokens active on the connection (those that made a request in the last
`ACTIVE_SECONDS`): each may take at most `share_of(left, active)` (rounded up) until the reset,
and a token past its share is refused with 429 `rate_limit_exceeded`, before the provider
refuses everyone. Requests are counted when they are let through; tokens when the answer's
`usage` is known (`settle`). Nothing is let through once every token together has taken what
was left, or once the provider's last answer said nothing is left (minus the requests this
process still has on their way to it); while shared, a later answer's larger count is not
believed before the reset (answers come back out of order).

Where the counts live (the "period" of sharing, each token's use in it, the active tokens):
in Redis when the cache is Redis (`_RedisStore`: one round trip per request, a Lua script, so
two processes never both take a token's last request), in this process's memory otherwise
(`_LocalStore`; `make run` is one process). If Redis fails, the request goes through: the
provider still enforces its own limit.

The provider's headers are untrusted: a count or a reset that is missing, not a plain number
or duration (`provider.answer.header_int`, `duration_seconds`), a remaining above the limit, a
limit of 0 or a reset beyond a day are ignored.

The connection page reads `snapshot(connection_id)`: what was last seen, written to the cache
at most once a second per connection and process, and at once when sharing starts or ends or
the number of tokens it is shared among changes. A shared cache (Redis) is written from a
thread, never from the event loop; the process's memory cache at once.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from gateway.models import Refusal
from gateway.recorder import Call
from lib.dbwork import db_work
from provider.answer import duration_seconds, header_int

__all__ = [
    "Held",
    "Limit",
    "check",
    "forget_local",
    "observe",
    "read_limits",
    "settle",
    "share_of",
    "snapshot",
]

logger = logging.getLogger(__name__)

KINDS = ("requests", "tokens")
# A token counts as active on a connection this long after its last request.
ACTIVE_SECONDS = 60.0
# A reset further away than this is not believed.
MAX_RESET_SECONDS = 24 * 3600.0
# How often (at most) a process writes a connection's last-seen limits for its page.
SNAPSHOT_SECONDS = 1.0
_PREFIX = b"x-ratelimit-"
_MAX_CONNECTIONS = 10_000


@dataclass(frozen=True, slots=True)
class Limit:
    """One of the provider's limits (requests or tokens) as an answer announced it."""

    limit: int
    remaining: int
    reset_at: float  # time.time() of the provider's reset

    def below(self, fraction: float, now: float) -> bool:
        """Whether it is to be shared: under `fraction` of the limit, before the reset."""
        return now < self.reset_at and self.remaining < fraction * self.limit


_NAMES = {
    _PREFIX + f"{part}-{kind}".encode(): (kind, part)
    for kind in KINDS
    for part in ("limit", "remaining", "reset")
}
# Resets as read (`duration_seconds`); the same few texts come back on answer after answer.
_resets: dict[bytes, float | None] = {}


def _reset_seconds(value: bytes) -> float | None:
    seconds = _resets.get(value, -1.0)
    if seconds == -1.0:
        if len(_resets) >= 4096:
            _resets.clear()
        seconds = _resets[value] = duration_seconds(value.decode("latin-1"))
    return seconds


def read_limits(headers: Iterable[tuple[bytes, bytes]], now: float) -> dict[str, Limit]:
    """The limits an answer's headers announce, each only when its limit, remaining and reset
    are all present and believable (counts as `header_int` reads them, resets as
    `duration_seconds` does)."""
    found: dict[tuple[str, str], bytes] = {}
    for name, value in headers:
        slot = _NAMES.get(name)
        if slot is not None:
            found[slot] = value
    if not found:
        return {}
    limits = {}
    for kind in KINDS:
        raw_limit = found.get((kind, "limit"))
        raw_remaining = found.get((kind, "remaining"))
        raw_reset = found.get((kind, "reset"))
        if raw_limit is None or raw_remaining is None or raw_reset is None:
            continue
        limit = header_int(raw_limit.decode("latin-1"))
        remaining = header_int(raw_remaining.decode("latin-1"))
        reset = _reset_seconds(raw_reset)
        if limit is None or remaining is None or reset is None:
            continue
        if limit <= 0 or remaining > limit or reset > MAX_RESET_SECONDS:
            continue
        limits[kind] = Limit(limit=limit, remaining=remaining, reset_at=now + reset)
    return limits


def share_of(left: int, active: int) -> int:
    """What each of `active` tokens may take of `left`: an equal part, rounded up (the last
    requests go to whoever asks first; nothing goes past `left`)."""
    return math.ceil(max(0, left) / max(1, active))


# -- this process's view of each connection ----------------------------------------------------


@dataclass(slots=True)
class _Connection:
    limits: dict[str, Limit] = field(default_factory=dict)
    # token id → time.time() of its last request here
    active: dict[UUID, float] = field(default_factory=dict)
    # id() of the calls let through and not yet answered
    in_flight: set[int] = field(default_factory=set)
    seen_at: float = 0.0
    written_at: float = 0.0
    written: tuple[tuple[str, ...], int] = ((), 0)

    def sharing(self, fraction: float, now: float) -> list[tuple[str, Limit]]:
        return [(kind, limit) for kind, limit in self.limits.items() if limit.below(fraction, now)]

    def active_count(self, now: float) -> int:
        horizon = now - ACTIVE_SECONDS
        stale = [token for token, when in self.active.items() if when < horizon]
        for token in stale:
            del self.active[token]
        return len(self.active)


_connections: dict[UUID, _Connection] = {}


def _connection(connection_id: UUID) -> _Connection:
    state = _connections.get(connection_id)
    if state is None:
        if len(_connections) >= _MAX_CONNECTIONS:
            _connections.clear()
        state = _connections[connection_id] = _Connection()
    return state


def forget_local() -> None:
    """Forget what this process knows (tests; the shared counts stay)."""
    _connections.clear()
    _local.clear()


# -- the refusal -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Held:
    """A token held back: `message` (after "Tablero refused this request: "), `error_type`
    (the provider's: "requests" or "tokens") and `headers` (Retry-After)."""

    message: str
    error_type: str
    headers: tuple[tuple[bytes, bytes], ...]


def _held(
    call: Call, kind: str, limit: Limit, *, active: int, share: int | None, now: float
) -> Held:
    wait = max(1, math.ceil(limit.reset_at - now))
    call.status = 429
    call.refused = True
    call.refusal = Refusal.FAIR_SHARE_REQUESTS if kind == "requests" else Refusal.FAIR_SHARE_TOKENS
    tokens = "1 token" if active == 1 else f"{active} tokens"
    if share is None:
        taken = f"nothing is left of it until the provider's reset in {wait} s"
    else:
        taken = (
            f"this token has had its share of the {kind} ({share}) until the provider's "
            f"reset in {wait} s"
        )
    message = (
        f"the connection's provider limit on {kind} is nearly used ({limit.remaining} of "
        f"{limit.limit} left) and is being shared among {tokens}; {taken}."
    )
    return Held(message=message, error_type=kind, headers=((b"retry-after", str(wait).encode()),))


# -- the hooks of gateway.proxy ------------------------------------------------------------------


def check(call: Call) -> Held | None:
    """Before forwarding `call`: None to let it through, or why its token is held back (the
    call is then marked as refused, with its `refusal`)."""
    connection_id, token_id = call.connection_id, call.token_id
    if connection_id is None or token_id is None:
        return None
    state = _connection(connection_id)
    now = time.time()
    state.active[token_id] = now
    sharing = state.sharing(settings.TABLERO_FAIR_SHARE_BELOW, now) if state.limits else None
    if not sharing:
        state.in_flight.add(id(call))
        return None
    active = state.active_count(now)
    proposals = []
    for kind, limit in sharing:
        left = limit.remaining - (len(state.in_flight) if kind == "requests" else 0)
        if left <= 0:
            return _held(call, kind, limit, active=active, share=None, now=now)
        proposals.append((kind, left, limit.reset_at))
    try:
        verdict = _store().take(connection_id, token_id, now, proposals, active)
    except Exception as error:  # the shared store failed: the provider still enforces its limit
        logger.warning("Gateway: the fair-share counts failed (%s).", type(error).__name__)
        verdict = None
    if verdict is not None and verdict.held is not None:
        kind = verdict.held
        return _held(
            call, kind, state.limits[kind], active=verdict.active, share=verdict.share, now=now
        )
    state.in_flight.add(id(call))
    return None


def observe(call: Call, headers: Iterable[tuple[bytes, bytes]]) -> None:
    """On the provider's answer to `call`: keep the limits it announces."""
    if call.connection_id is None:
        return
    state = _connection(call.connection_id)
    state.in_flight.discard(id(call))
    now = time.time()
    limits = read_limits(headers, now)
    if not limits:
        return
    fraction = settings.TABLERO_FAIR_SHARE_BELOW
    for kind, limit in limits.items():
        known = state.limits.get(kind)
        # While shared, what is left only goes down until the reset: answers come back out of
        # order, and an earlier one's larger count would let too many through.
        if known is None or not known.below(fraction, now) or limit.remaining < known.remaining:
            state.limits[kind] = limit
    state.seen_at = now
    sharing = tuple(kind for kind, _ in state.sharing(fraction, now))
    # What the page says at once: whether it is shared, and among how many.
    shown = (sharing, state.active_count(now) if sharing else 0)
    if now - state.written_at >= SNAPSHOT_SECONDS or shown != state.written:
        state.written_at, state.written = now, shown
        _write_snapshot(call.connection_id, state, sharing, now)


def settle(call: Call) -> None:
    """When `call` is over: it is no longer on its way; its tokens count against its share
    while the connection's tokens are shared."""
    if call.connection_id is None:
        return
    state = _connections.get(call.connection_id)
    if state is None:
        return
    state.in_flight.discard(id(call))
    limit = state.limits.get("tokens")
    if limit is None or call.token_id is None or call.refused:
        return
    now = time.time()
    if not limit.below(settings.TABLERO_FAIR_SHARE_BELOW, now):
        return
    used = (call.input_tokens or 0) + (call.output_tokens or 0)
    if used:
        try:
            _store().charge(call.connection_id, call.token_id, "tokens", used, now)
        except Exception as error:
            logger.warning("Gateway: the fair-share counts failed (%s).", type(error).__name__)


# -- the connection page's view ------------------------------------------------------------------


def _snapshot_key(connection_id: UUID) -> str:
    return f"tablero:fairshare:seen:{connection_id}"


def _write_snapshot(
    connection_id: UUID, state: _Connection, sharing: tuple[str, ...], now: float
) -> None:
    value = {
        "seen_at": now,
        "active": state.active_count(now),
        "sharing": list(sharing),
        "limits": {
            kind: {"limit": limit.limit, "remaining": limit.remaining, "reset_at": limit.reset_at}
            for kind, limit in state.limits.items()
        },
    }
    timeout = max(ACTIVE_SECONDS, *(limit.reset_at - now for limit in state.limits.values()))
    snapshot = (_snapshot_key(connection_id), value, math.ceil(timeout) + 60)
    if _local_cache():
        _set_snapshots([snapshot])
        return
    # A shared cache is a network round trip: never on the event loop. The latest snapshot of
    # each connection waits for one writer in a thread (so they are written in order).
    with _unwritten_lock:
        _unwritten[connection_id] = snapshot
        if _writing:
            return
        _start_writing()


def _local_cache() -> bool:
    """Whether the cache is this process's memory (a write costs microseconds)."""
    return settings.CACHES["default"]["BACKEND"].endswith(".LocMemCache")


# The snapshots not yet written to a shared cache: connection id → (key, value, timeout).
_unwritten: dict[UUID, tuple[str, dict[str, Any], int]] = {}
_unwritten_lock = threading.Lock()
_writing = False
_writer: threading.Thread | None = None


def _start_writing() -> None:
    """Start the writer (with `_unwritten_lock` held)."""
    global _writing, _writer
    _writing = True
    _writer = threading.Thread(target=_write_unwritten, name="gateway-fairshare", daemon=True)
    _writer.start()


def snapshots_written(timeout: float = 5.0) -> None:
    """Tests: until the snapshots handed to the writer so far are in the cache."""
    writer = _writer
    if writer is not None:
        writer.join(timeout)


def _write_unwritten() -> None:
    global _writing
    while True:
        with _unwritten_lock:
            taken = list(_unwritten.values())
            _unwritten.clear()
            if not taken:
                _writing = False
                return
        with db_work():  # a database-backed cache: its connection goes back
            _set_snapshots(taken)


def _set_snapshots(snapshots: list[tuple[str, dict[str, Any], int]]) -> None:
    for key, value, timeout in snapshots:
        try:
            cache.set(key, value, timeout=timeout)
        except Exception as error:
            logger.warning("Gateway: the shared cache failed (%s).", type(error).__name__)


def snapshot(connection_id: UUID) -> dict[str, Any] | None:
    """What the gateway last saw of the connection's provider limits (any process), or None."""
    try:
        value = cache.get(_snapshot_key(connection_id))
    except Exception as error:
        logger.warning("Gateway: the shared cache failed (%s).", type(error).__name__)
        return None
    return value if isinstance(value, dict) else None


# -- where the shared counts live ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Verdict:
    active: int
    held: str | None = None  # the kind whose share the token has used
    share: int | None = None  # None: nothing is left for anyone


@dataclass(slots=True)
class _Period:
    left: int
    reset_at: float
    used: dict[UUID, int] = field(default_factory=dict)
    taken: int = 0  # by every token


class _LocalStore:
    """The counts in this process's memory (a cache that is not Redis)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._periods: dict[tuple[UUID, str], _Period] = {}

    def clear(self) -> None:
        with self._lock:
            self._periods.clear()

    def _period(self, key: tuple[UUID, str], left: int, reset_at: float, now: float) -> _Period:
        period = self._periods.get(key)
        if period is None or period.reset_at <= now:
            if len(self._periods) >= _MAX_CONNECTIONS:
                self._periods = {k: p for k, p in self._periods.items() if p.reset_at > now}
            period = self._periods[key] = _Period(left=left, reset_at=reset_at)
        return period

    def take(
        self,
        connection_id: UUID,
        token_id: UUID,
        now: float,
        proposals: list[tuple[str, int, float]],
        active: int,
    ) -> _Verdict:
        with self._lock:
            periods = []
            for kind, left, reset_at in proposals:
                period = self._period((connection_id, kind), left, reset_at, now)
                if period.taken >= period.left:
                    return _Verdict(active=active, held=kind, share=None)
                share = share_of(period.left, active)
                if period.used.get(token_id, 0) >= share:
                    return _Verdict(active=active, held=kind, share=share)
                periods.append((kind, period))
            for kind, period in periods:
                if kind == "requests":
                    period.used[token_id] = period.used.get(token_id, 0) + 1
                    period.taken += 1
            return _Verdict(active=active)

    def charge(
        self, connection_id: UUID, token_id: UUID, kind: str, amount: int, now: float
    ) -> None:
        with self._lock:
            period = self._periods.get((connection_id, kind))
            if period is not None and period.reset_at > now:
                period.used[token_id] = period.used.get(token_id, 0) + amount
                period.taken += amount


# KEYS: the active tokens (sorted set), then per kind asked: its period and its use (hash).
# ARGV: token, now (ms), active window (ms), active tokens known here, then per kind: left,
# reset (ms), and 1 for requests (counted now) or 0 for tokens (counted from the answer).
# The use hash holds each token's use and, under "*", everyone's.
# Returns {active, index of the kind held back (0: none), its share (-1: nothing left)}.
_TAKE = """
local token, now, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now, token)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], window)
local active = math.max(redis.call('ZCARD', KEYS[1]), tonumber(ARGV[4]))
local kinds = (#KEYS - 1) / 2
for i = 1, kinds do
  local period, used = KEYS[2 * i], KEYS[2 * i + 1]
  local left, reset = tonumber(ARGV[2 + 3 * i]), tonumber(ARGV[3 + 3 * i])
  if reset > now and redis.call('SET', period, left, 'NX', 'PX', math.floor(reset - now)) then
    redis.call('DEL', used)
  end
  local shared = tonumber(redis.call('GET', period) or left)
  if tonumber(redis.call('HGET', used, '*') or '0') >= shared then
    return {active, i, -1}
  end
  local share = math.ceil(shared / active)
  if tonumber(redis.call('HGET', used, token) or '0') >= share then
    return {active, i, share}
  end
end
for i = 1, kinds do
  if ARGV[4 + 3 * i] == '1' then
    local ttl = redis.call('PTTL', KEYS[2 * i])
    redis.call('HINCRBY', KEYS[2 * i + 1], token, 1)
    redis.call('HINCRBY', KEYS[2 * i + 1], '*', 1)
    if ttl > 0 then redis.call('PEXPIRE', KEYS[2 * i + 1], ttl) end
  end
end
return {active, 0, 0}
"""
# KEYS: the period, its use. ARGV: token, amount. Counted only while the period lasts.
_CHARGE = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2])
  redis.call('HINCRBY', KEYS[2], '*', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return ttl
"""


class _RedisStore:
    """The counts in the cache's Redis, shared by every process."""

    def __init__(self, backend: RedisCache) -> None:
        self._backend = backend
        client = backend._cache.get_client(write=True)
        self._take = client.register_script(_TAKE)
        self._charge = client.register_script(_CHARGE)
        self._client = client

    def _key(self, connection_id: UUID, name: str) -> str:
        return self._backend.make_key(f"tablero:fairshare:{connection_id}:{name}")

    def take(
        self,
        connection_id: UUID,
        token_id: UUID,
        now: float,
        proposals: list[tuple[str, int, float]],
        active: int,
    ) -> _Verdict:
        keys = [self._key(connection_id, "active")]
        args: list[Any] = [str(token_id), round(now * 1000), round(ACTIVE_SECONDS * 1000), active]
        for kind, left, reset_at in proposals:
            keys += [self._key(connection_id, kind), self._key(connection_id, f"{kind}:used")]
            args += [left, round(reset_at * 1000), 1 if kind == "requests" else 0]
        active_now, index, share = self._take(keys=keys, args=args, client=self._client)
        if index:
            return _Verdict(
                active=int(active_now),
                held=proposals[int(index) - 1][0],
                share=int(share) if int(share) >= 0 else None,
            )
        return _Verdict(active=int(active_now))

    def charge(
        self, connection_id: UUID, token_id: UUID, kind: str, amount: int, now: float
    ) -> None:
        keys = [self._key(connection_id, kind), self._key(connection_id, f"{kind}:used")]
        self._charge(keys=keys, args=[str(token_id), amount], client=self._client)


_local = _LocalStore()
_stores: dict[tuple[str, str, str], _RedisStore] = {}
_stores_lock = threading.Lock()


def _store() -> _LocalStore | _RedisStore:
    config = settings.CACHES["default"]
    if not config["BACKEND"].endswith(".RedisCache"):
        return _local
    key = (str(config.get("LOCATION")), str(config.get("KEY_PREFIX")), str(config.get("VERSION")))
    store = _stores.get(key)
    if store is None:
        with _stores_lock:
            store = _stores.get(key)
            if store is None:
                backend = caches.create_connection("default")
                assert isinstance(backend, RedisCache)
                store = _stores[key] = _RedisStore(backend)
    return store
