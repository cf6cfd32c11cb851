"""What a presented token grants: found by its prefix, checked by its secret's HMAC.

`resolve` reads the database every time. The pass-through asks `cached` first, and only on a
miss `load` (which reads the database and remembers the answer):

- Each process keeps the grants it resolved in memory (the decrypted key with them: it never
  goes to the shared cache), each with the generations it was read under: one per token and
  one per team, kept in Django's cache (Redis when several processes serve).
- `forget` and `forget_team` give the token or team a new generation and drop what this
  process holds. Every process compares its grants' generations with the shared ones at least
  once a second (`refresh`, from a background thread; a grant not compared for
  `CHECK_SECONDS` is compared again before it is used), so a revocation, a member's departure
  or a removed connection takes effect everywhere within a second.
- A grant is read again from the database after `TTL_SECONDS` whatever happens, and refused
  as soon as it expires.

A grant carries the limits that apply to its token (`gateway.limits`): the token's own row,
else the team's default, and its member's row; and, when one of them has a money budget, the
team's prices. So the hot path reads no database; a limit or a price that changes forgets the
team's grants (`gateway.signals`).
"""

from __future__ import annotations

import logging
import re
import secrets as pyrandom
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from accounts.models import Membership, Role, User
from connections.crypto import DecryptionError
from gateway import tokens
from gateway.limits import Limit, LimitSource
from gateway.models import ApiToken, LimitTarget, ModelPrice, TokenKind, UsageLimit
from gateway.prices import PriceBook
from gateway.scopes import READ_ONLY_SCOPES, Scope
from lib.dbwork import db_work
from provider.endpoint import Endpoint

__all__ = ["Grant", "cached", "forget", "forget_team", "load", "refresh", "resolve"]

logger = logging.getLogger(__name__)

# A grant is compared with the shared generations at least this often (seconds)...
CHECK_SECONDS = 1.0
# ...and read again from the database after this long in any case.
TTL_SECONDS = 60.0
# How often the background thread compares (seconds): half the bound, so it holds.
REFRESH_SECONDS = 0.4
# More grants than this in one process: start again from none (a bound, not an expected size).
MAX_ENTRIES = 20_000
# How long a generation stays in the shared cache; when it lapses, the grants read under it
# are simply read again.
GENERATION_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Grant:
    token_id: UUID
    prefix: str
    team_id: UUID
    connection_id: UUID
    user_id: UUID | None  # None for a service token
    scopes: frozenset[Scope]
    allowed_models: frozenset[str]  # empty: any model
    expires_at: datetime
    endpoint: Endpoint
    limits: tuple[Limit, ...] = ()  # what applies: the token's (or team default's), member's
    prices: Any = None  # the team's PriceBook, when a limit has a money budget

    def allows_model(self, model: str) -> bool:
        return not self.allowed_models or model in self.allowed_models


def _token_key(prefix: str) -> str:
    return f"tablero:gateway:gen:token:{prefix}"


def _team_key(team_id: UUID) -> str:
    return f"tablero:gateway:gen:team:{team_id.hex}"


@dataclass
class _Entry:
    grant: Grant
    digest: str
    generations: tuple[str | None, str | None]
    loaded_at: float
    checked_at: float
    keys: tuple[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.keys = (_token_key(self.grant.prefix), _team_key(self.grant.team_id))


_entries: dict[str, _Entry] = {}
_team_of: dict[str, UUID] = {}
_refresher: threading.Thread | None = None
_refresher_lock = threading.Lock()


class _Miss:
    """`cached` does not know: ask `load`."""


MISS = _Miss()


def _role_scopes(token: ApiToken) -> frozenset[Scope] | None:
    """The scopes the token's owner may still use through it (None: none at all)."""
    if token.kind == TokenKind.SERVICE:
        return frozenset(Scope)
    membership = (
        Membership.objects.filter(team_id=token.team_id, user_id=token.owner_id)
        .only("role")
        .first()
    )
    if membership is None:
        return None
    if not User.objects.filter(pk=token.owner_id, is_active=True).exists():
        return None
    if membership.role == Role.VIEWER:
        return READ_ONLY_SCOPES
    return frozenset(Scope)


def resolve(value: str, *, now: datetime | None = None) -> Grant | None:
    """The grant of a presented token, or None when it is malformed, unknown, wrong, revoked,
    expired, or its owner left the team. Same answer, and no hint, for every refusal."""
    parts = tokens.split(value)
    if parts is None:
        return None
    prefix, secret = parts
    found = _lookup(prefix, now=now)
    if found is None or not tokens.matches(secret, found[1]):
        return None
    return found[0]


def _lookup(prefix: str, *, now: datetime | None = None) -> tuple[Grant, str] | None:
    """The grant of the token `prefix` and its secret's digest, or None."""
    token = (
        ApiToken.objects.usable(now=now).select_related("connection").filter(prefix=prefix).first()
    )
    if token is None:
        return None
    allowed = _role_scopes(token)
    if allowed is None:
        return None
    scopes = token.scope_set & allowed
    if not scopes:
        return None
    try:
        endpoint = token.connection.endpoint()
    except DecryptionError:
        return None
    grant = Grant(
        token_id=token.pk,
        prefix=token.prefix,
        team_id=token.team_id,
        connection_id=token.connection_id,
        user_id=token.owner_id,
        scopes=scopes,
        allowed_models=frozenset(token.allowed_models),
        expires_at=token.expires_at,
        endpoint=endpoint,
    )
    found = _limits(token)
    if found:
        money = any(limit.money_budget_micro is not None for limit in found)
        prices = PriceBook(ModelPrice.objects.filter(team_id=token.team_id)) if money else None
        grant = replace(grant, limits=found, prices=prices)
    return grant, token.secret_digest


def _limits(token: ApiToken) -> tuple[Limit, ...]:
    """The limits on a token: its own row, else the team's default (each token counted on
    its own), and its member's row (counted over all of the member's tokens). One query."""
    wanted = Q(token_id=token.pk) | Q(target=LimitTarget.TEAM_DEFAULT)
    if token.owner_id is not None:
        wanted |= Q(target=LimitTarget.MEMBER, user_id=token.owner_id)
    rows = {row.target: row for row in UsageLimit.objects.filter(wanted, team_id=token.team_id)}
    found = []
    own = rows.get(LimitTarget.TOKEN) or rows.get(LimitTarget.TEAM_DEFAULT)
    if own is not None:
        source = LimitSource.TOKEN if own.target == LimitTarget.TOKEN else LimitSource.TEAM_DEFAULT
        found.append(_limit(own, source, f"t:{token.pk.hex}", token_id=token.pk))
    member = rows.get(LimitTarget.MEMBER)
    if member is not None and token.owner_id is not None:
        key = f"m:{token.team_id.hex}:{token.owner_id.hex}"
        found.append(_limit(member, LimitSource.MEMBER, key, user_id=token.owner_id))
    return tuple(limit for limit in found if _applies(limit))


def _limit(row: UsageLimit, source: str, key: str, **whose: Any) -> Limit:
    return Limit(
        source=source,
        key=key,
        team_id=row.team_id,
        token_id=whose.get("token_id"),
        user_id=whose.get("user_id"),
        requests_per_minute=row.requests_per_minute,
        tokens_per_minute=row.tokens_per_minute,
        concurrent_requests=row.concurrent_requests,
        monthly_token_budget=row.monthly_token_budget,
        monthly_money_budget=row.monthly_money_budget,
        budget_currency=row.budget_currency,
    )


def _applies(limit: Limit) -> bool:
    """A row with every field empty limits nothing."""
    return (
        limit.requests_per_minute is not None
        or limit.tokens_per_minute is not None
        or limit.tracked
    )


# -- the per-process cache -----------------------------------------------------------------


# `tokens.split`'s format as one expression: the hot path's quicker check.
_TOKEN = re.compile(
    rf"{tokens.TOKEN_START}([a-z0-9]{{{tokens.PREFIX_LENGTH}}})_([A-Za-z0-9_-]{{43}})"
)


def cached(value: str) -> Grant | _Miss | None:
    """What this process knows of a presented token without any I/O: its grant, None when it
    is refused for certain (malformed, wrong secret, expired), or MISS."""
    found = _TOKEN.fullmatch(value)
    if found is None:
        return None
    prefix, secret = found.groups()
    entry = _entries.get(prefix)
    if entry is None:
        return MISS
    now = time.monotonic()
    if now - entry.checked_at > CHECK_SECONDS or now - entry.loaded_at > TTL_SECONDS:
        return MISS
    if not tokens.matches(secret, entry.digest):
        return None
    if entry.grant.expires_at <= timezone.now():
        return None
    return entry.grant


def load(value: str) -> Grant | None:
    """The grant of a presented token, from the database (and the shared generations), kept
    in this process for the next calls. Blocking: the pass-through runs it in a thread
    (`lib.dbwork.to_thread`, which hands the thread's connection back)."""
    parts = tokens.split(value)
    if parts is None:
        return None
    prefix, secret = parts
    _ensure_refresher()
    entry = _entries.get(prefix)
    now = time.monotonic()
    if entry is not None and now - entry.loaded_at <= TTL_SECONDS:
        # Only the comparison with the shared generations is late: no need for the database.
        generations = _generations([entry.keys])
        if generations is not None and generations[0] == entry.generations:
            entry.checked_at = now
            result = cached(value)
            return result if isinstance(result, Grant) else None
    # The generations are read before the database, so a change committed in between shows
    # as a new generation at the next comparison. A token's team never changes: the first
    # time, one more read finds it.
    team_id = _team_of.get(prefix)
    if team_id is None:
        found = _lookup(prefix)
        if found is None:
            return None
        team_id = found[0].team_id
    keys = (_token_key(prefix), _team_key(team_id))
    generations = _generations([keys])
    found = _lookup(prefix)
    if found is None:
        _entries.pop(prefix, None)
        return None
    grant, digest = found
    entry = _Entry(
        grant=grant,
        digest=digest,
        generations=generations[0] if generations is not None else (None, None),
        loaded_at=now,
        # Without the shared cache, nothing vouches for the grant: compare again next time.
        checked_at=now if generations is not None else now - 2 * CHECK_SECONDS,
    )
    if len(_entries) >= MAX_ENTRIES:
        _entries.clear()
        _team_of.clear()
    _entries[prefix] = entry
    _team_of[prefix] = grant.team_id
    if not tokens.matches(secret, digest):
        return None
    return grant


def _generations(
    key_pairs: list[tuple[str, str]],
) -> list[tuple[str | None, str | None]] | None:
    """The shared generations of each (token key, team key) pair; None if the cache fails."""
    try:
        found = cache.get_many([key for pair in key_pairs for key in pair])
    except Exception as error:  # any backend's failure: the grants are read again instead
        logger.warning("Gateway: the shared cache failed (%s).", type(error).__name__)
        return None
    return [(found.get(token_key), found.get(team_key)) for token_key, team_key in key_pairs]


def refresh() -> None:
    """Compare every grant this process holds with the shared generations; drop the changed."""
    entries = list(_entries.items())
    if not entries:
        return
    started = time.monotonic()
    generations = _generations([entry.keys for _, entry in entries])
    if generations is None:
        return
    for (prefix, entry), current in zip(entries, generations, strict=True):
        if current != entry.generations:
            if _entries.get(prefix) is entry:
                _entries.pop(prefix, None)
        else:
            entry.checked_at = max(entry.checked_at, started)


def _refresh_forever() -> None:
    while True:
        time.sleep(REFRESH_SECONDS)
        try:
            with db_work():  # a database-backed cache: its connection goes back each time
                refresh()
        except Exception as error:  # never let the thread die; the hot path checks inline
            logger.warning("Gateway: refreshing grants failed (%s).", type(error).__name__)


def _ensure_refresher() -> None:
    global _refresher
    if _refresher is not None and _refresher.is_alive():
        return
    with _refresher_lock:
        if _refresher is None or not _refresher.is_alive():
            _refresher = threading.Thread(
                target=_refresh_forever, name="gateway-grants", daemon=True
            )
            _refresher.start()


def clear_local() -> None:
    """Forget every grant this process holds (tests, and a process that starts over)."""
    _entries.clear()


def _new_generation(key: str) -> None:
    try:
        cache.set(key, pyrandom.token_hex(8), timeout=GENERATION_SECONDS)
    except Exception as error:
        # The other processes then see it within TTL_SECONDS only: say so loudly.
        logger.error("Gateway: could not publish a revocation (%s).", type(error).__name__)


def forget(prefix: str) -> None:
    """Drop what any process remembers of the token `prefix` (revoked, expired, changed).
    Called by the services after their transaction commits."""
    _entries.pop(prefix, None)
    _new_generation(_token_key(prefix))


def forget_team(team_id: UUID) -> None:
    """Drop what any process remembers of the team's tokens (a member left or changed role,
    a connection was removed or its key replaced)."""
    for prefix, entry in list(_entries.items()):
        if entry.grant.team_id == team_id:
            _entries.pop(prefix, None)
    _new_generation(_team_key(team_id))
