"""Reads of the gateway's tokens, for the pages. Nothing here writes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.access import TeamAccess
from accounts.models import Team
from connections.models import Connection
from gateway import budgets, usage
from gateway.budgets import month_start
from gateway.models import (
    FAIR_SHARE_REFUSALS,
    LIMIT_REFUSALS,
    ApiToken,
    GatewayCall,
    Refusal,
)
from lib.pagination import Counted

__all__ = [
    "HeldBack",
    "RefusedLately",
    "TokenListing",
    "cached_model_ids",
    "held_back",
    "limit_refusals",
    "model_choices",
    "month_start",
    "token_get",
    "token_list",
    "token_month_use",
    "visible_tokens",
]

# Revoked and expired tokens stay on the page this long, then only in the audit log.
RECENTLY_ENDED = timedelta(days=30)


def visible_tokens(access: TeamAccess) -> QuerySet[ApiToken]:
    """The tokens of the team this person may see: an admin's or owner's, everyone's (service
    tokens included); anyone else's, their own."""
    tokens = ApiToken.objects.filter(team=access.team)
    if not access.is_admin:
        tokens = tokens.filter(owner=access.membership.user_id)
    return tokens


def token_get(*, access: TeamAccess, pk: Any) -> ApiToken:
    """One of the team's tokens that this person may see: 404 if the team has none such,
    403 if it is someone else's and this person is not an admin (a role too low)."""
    token = (
        ApiToken.objects.filter(team=access.team, pk=pk)
        .select_related("connection", "owner")
        .first()
    )
    if token is None:
        raise Http404
    if not access.is_admin and token.owner_id != access.membership.user_id:
        raise PermissionDenied
    return token


@dataclass(frozen=True)
class TokenListing:
    active: Counted  # querysets whose sizes are known (lib.pagination.Counted)
    ended: Counted  # revoked or expired lately


def token_list(*, access: TeamAccess, now: datetime | None = None) -> TokenListing:
    """The tokens this person may see: those in use, then those revoked or expired lately.
    Both are counted in one query, and a page reads one page of each (lib.pagination);
    `token_month_use` then adds each shown token's use this month and its budgets. Only the
    columns the list shows are read (not the connection's keys and settings, not the token's
    digest)."""
    now = now or timezone.now()
    active_filter = Q(revoked_at__isnull=True, expires_at__gt=now)
    since = now - RECENTLY_ENDED
    ended_filter = Q(revoked_at__gte=since) | Q(
        revoked_at__isnull=True, expires_at__range=(since, now)
    )
    counts = (
        visible_tokens(access)
        .order_by()
        .aggregate(active=Count("pk", filter=active_filter), ended=Count("pk", filter=ended_filter))
    )
    tokens = (
        visible_tokens(access)
        .select_related("connection", "owner")
        .only(*TOKEN_LIST_FIELDS)
        .order_by("-created_at")
    )
    return TokenListing(
        active=Counted(tokens.filter(active_filter), counts["active"]),
        ended=Counted(tokens.filter(ended_filter), counts["ended"]),
    )


# What the token list shows of each token, its connection and its owner.
TOKEN_LIST_FIELDS = (
    "name",
    "kind",
    "prefix",
    "scopes",
    "allowed_models",
    "created_at",
    "expires_at",
    "revoked_at",
    "last_used_at",
    "last_used_ip",
    "connection__name",
    "owner__name",
    "owner__email",
)


def token_month_use(
    *, access: TeamAccess, tokens: Iterable[ApiToken], now: datetime | None = None
) -> list[ApiToken]:
    """`tokens` (one page of them), each given `month` (its use this month: requests, errors,
    tokens, money where priced; `gateway.usage.token_usage_this_month`) and `budget` (that use
    against its own monthly budgets, `gateway.budgets.BudgetUse`). A fixed number of queries,
    however many tokens."""
    now = now or timezone.now()
    listed = list(tokens)
    ids = [token.pk for token in listed]
    if not ids:
        return listed
    month = usage.token_usage_this_month(team=access.team, token_ids=ids, now=now)
    uses = budgets.budget_use(budgets.token_limits(team=access.team, token_ids=ids), month, ids)
    for token in listed:
        token.month = month.get(token.pk)
        token.budget = uses[token.pk]
    return listed


def model_choices(team: Team) -> list[tuple[str, list[tuple[str, str]]]]:
    """The models each of the team's connections offered when its list was last fetched
    (Connection.models_cache), grouped by connection name: never asks the provider."""
    groups = []
    for connection in Connection.objects.filter(team=team).order_by("name"):
        ids = sorted(cached_model_ids(connection))
        if ids:
            groups.append((connection.name, [(model_id, model_id) for model_id in ids]))
    return groups


def cached_model_ids(connection: Connection) -> set[str]:
    return {
        str(model.get("id"))
        for model in connection.models_cache or []
        if isinstance(model, dict) and model.get("id")
    }


@dataclass(frozen=True)
class CallCounts:
    requests: int
    errors: int


def calls_since(
    *, team: Team, since: datetime, user: Any = None, connection: Connection | None = None
) -> CallCounts:
    """How many gateway calls the team made since `since` (only `user`'s, or only through
    `connection`, when given), and how many of them failed (refused by Tablero or answered
    with an error). One aggregate, served by the team-and-time or connection-and-time index."""
    return calls_since_each(team=team, since={"": since}, user=user, connection=connection)[""]


def calls_since_each(
    *,
    team: Team,
    since: dict[str, datetime],
    user: Any = None,
    connection: Connection | None = None,
) -> dict[str, CallCounts]:
    """`calls_since` for several starts at once (named: {"today": ..., "month": ...}): one
    aggregate over the calls since the earliest, each window counted with a filter."""
    calls = GatewayCall.objects.filter(team=team, created_at__gte=min(since.values()))
    if user is not None:
        calls = calls.filter(user=user)
    if connection is not None:
        calls = calls.filter(connection=connection)
    failed = Q(status__gte=400) | Q(refused=True)
    sums = {}
    for number, start in enumerate(since.values()):
        sums[f"requests_{number}"] = Count("pk", filter=Q(created_at__gte=start))
        sums[f"errors_{number}"] = Count("pk", filter=Q(created_at__gte=start) & failed)
    counts = calls.order_by().aggregate(**sums)
    return {
        name: CallCounts(requests=counts[f"requests_{number}"], errors=counts[f"errors_{number}"])
        for number, name in enumerate(since)
    }


@dataclass(frozen=True)
class HeldBack:
    """A token that the fair share of a connection's provider limit refused lately."""

    token: ApiToken | None
    refusal: Refusal
    refusals: int
    last: datetime


def held_back(*, connection: Connection, since: datetime, user: Any = None) -> list[HeldBack]:
    """The tokens held back by the fair share of `connection`'s provider limit since `since`
    (only `user`'s, when given), most refused first: one grouped read and one of the tokens."""
    calls = GatewayCall.objects.filter(
        connection=connection, created_at__gte=since, refusal__in=FAIR_SHARE_REFUSALS
    )
    if user is not None:
        calls = calls.filter(user=user)
    rows = list(
        calls.values("token", "refusal")
        .annotate(refusals=Count("pk"), last=Max("created_at"))
        .order_by("-refusals", "-last")[:20]
    )
    found = ApiToken.objects.select_related("owner").in_bulk(
        {row["token"] for row in rows if row["token"] is not None}
    )
    return [
        HeldBack(
            token=found.get(row["token"]),
            refusal=Refusal(row["refusal"]),
            refusals=row["refusals"],
            last=row["last"],
        )
        for row in rows
    ]


@dataclass
class RefusedLately:
    """How many calls Tablero's own limits refused lately, and which limits (most first)."""

    total: int = 0
    by: list[tuple[Refusal, int]] | None = None


def limit_refusals(
    *, team: Team, group: str, keys: Iterable[Any], since: datetime
) -> dict[Any, RefusedLately]:
    """The calls of `team` refused by Tablero's own limits since `since`, per member ("member":
    `keys` are user ids) or per token ("token": token ids): one grouped read, served by the
    small index of the refusals (gateway_call_refusal_when). Keys without any are left out."""
    column = {"member": "user", "token": "token"}[group]
    rows = (
        GatewayCall.objects.filter(
            team=team,
            created_at__gte=since,
            refusal__in=LIMIT_REFUSALS,
            **{f"{column}__in": list(keys)},
        )
        .values(column, "refusal")
        .annotate(refusals=Count("pk"))
        .order_by(column, "-refusals", "refusal")
    )
    found: dict[Any, RefusedLately] = {}
    for row in rows:
        lately = found.setdefault(row[column], RefusedLately(by=[]))
        lately.total += row["refusals"]
        lately.by.append((Refusal(row["refusal"]), row["refusals"]))
    return found
