"""Reads of usage limits, and this month's use against the monthly budgets: what the token
list, the limits and usage pages and the budget alerts show. Nothing here writes.

The month is the calendar month in UTC, as the gateway counts it when it enforces a budget.
Tokens are input plus output tokens; money counts only calls to models the team has a price
for, in the budget's currency (`gateway.prices`), each at the price of its day in UTC, as the
gateway counts it too.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet

from accounts.models import Team
from connections import charts
from gateway.limits import month_range
from gateway.models import GatewayCall, LimitTarget, UsageLimit
from gateway.prices import Money, PriceBook
from gateway.usage import UsageRow, usage_by_utc_day

# The shares of a budget at which its member and the admins are alerted.
THRESHOLDS = (80, 100)


def month_start(now: datetime.datetime | None = None) -> datetime.datetime:
    """The first moment of the budget month (the calendar month in UTC, `limits.month_range`)."""
    return month_range(now)[0]


# --- the limits ---------------------------------------------------------------------------------


def team_default(*, team: Team) -> UsageLimit | None:
    return UsageLimit.objects.filter(team=team, target=LimitTarget.TEAM_DEFAULT).first()


def token_limits(*, team: Team, token_ids: Iterable[Any]) -> dict[Any, UsageLimit]:
    """The limits set on these tokens, by token id (one query)."""
    limits = UsageLimit.objects.filter(team=team, token_id__in=list(token_ids))
    return {limit.token_id: limit for limit in limits}


def member_limits(*, team: Team, user_ids: Iterable[Any] | None = None) -> dict[Any, UsageLimit]:
    """The limits set on the team's members (only these when given), by user id."""
    limits = UsageLimit.objects.filter(team=team, target=LimitTarget.MEMBER)
    if user_ids is not None:
        limits = limits.filter(user_id__in=list(user_ids))
    return {limit.user_id: limit for limit in limits.select_related("user")}


def budgeted_limits(*, team: Team | None = None) -> QuerySet[UsageLimit]:
    """The token and member limits that set a monthly budget (every team's unless `team`)."""
    limits = UsageLimit.objects.filter(
        Q(monthly_token_budget__isnull=False) | Q(monthly_money_budget__isnull=False),
        target__in=[LimitTarget.TOKEN, LimitTarget.MEMBER],
    )
    if team is not None:
        limits = limits.filter(team=team)
    return limits


# --- use against budget -------------------------------------------------------------------------


def _share(used: Decimal | int, budget: Decimal | int | None) -> int | None:
    """Whole percent of `budget` used (rounded down: 79.9 % is not yet 80 %)."""
    if not budget:
        return None
    return int(Decimal(used) * 100 / Decimal(budget))


@dataclass
class BudgetUse:
    """A month's use of one token or member against its limit's budgets (if any)."""

    limit: UsageLimit | None
    tokens: int = 0
    money: Money | None = None

    @property
    def token_budget(self) -> int | None:
        return self.limit.monthly_token_budget if self.limit else None

    @property
    def money_budget(self) -> Decimal | None:
        return self.limit.monthly_money_budget if self.limit else None

    @property
    def currency(self) -> str:
        return self.limit.budget_currency if self.limit else ""

    @property
    def money_spent(self) -> Decimal:
        """What was spent in the budget's currency (unrounded), 0 when nothing priced."""
        if self.money is None or not self.currency:
            return Decimal(0)
        return self.money.amounts.get(self.currency, Decimal(0))

    @property
    def token_percent(self) -> int | None:
        return _share(self.tokens, self.token_budget)

    @property
    def money_percent(self) -> int | None:
        return _share(self.money_spent, self.money_budget)

    @property
    def has_budget(self) -> bool:
        return self.token_budget is not None or self.money_budget is not None

    @property
    def money_spent_text(self) -> str:
        return charts.format_amount(self.money_spent, self.currency)

    @property
    def money_budget_text(self) -> str:
        return charts.format_amount(self.money_budget or 0, self.currency)

    def crossed(self) -> list[tuple[str, int, int]]:
        """(measure, threshold, percent) of every threshold reached: measure "tokens" or
        "money", the highest threshold reached of each."""
        found = []
        for measure, percent in (("tokens", self.token_percent), ("money", self.money_percent)):
            if percent is None:
                continue
            reached = [threshold for threshold in THRESHOLDS if percent >= threshold]
            if reached:
                found.append((measure, max(reached), percent))
        return found


def month_use(
    *,
    team: Team,
    group: str,
    keys: Iterable[Any],
    now: datetime.datetime | None = None,
    book: PriceBook | None = None,
) -> dict[Any, UsageRow]:
    """This UTC month's use of these tokens (`group` "token") or members ("member"), by id:
    one query, and one more for the prices of the models called unless `book` is given."""
    keys = [key for key in keys if key is not None]
    if not keys:
        return {}
    start, end = month_range(now)
    calls = GatewayCall.objects.filter(team=team, created_at__gte=start, created_at__lt=end)
    field = {"token": "token_id", "member": "user_id"}[group]
    calls = calls.filter(**{f"{field}__in": keys})
    return usage_by_utc_day(calls, group=group, book=book, team=team)


def budget_use(
    limits: dict[Any, UsageLimit], used: dict[Any, UsageRow], keys: Iterable[Any]
) -> dict[Any, BudgetUse]:
    """Each key's BudgetUse, from its limit (or none) and its month's use (or none)."""
    found = {}
    for key in keys:
        row = used.get(key)
        found[key] = BudgetUse(
            limit=limits.get(key),
            tokens=row.tokens if row else 0,
            money=row.money if row else Money(),
        )
    return found


def budgets_of(
    *, team: Team, group: str, keys: Iterable[Any], now: datetime.datetime | None = None
) -> dict[Any, BudgetUse]:
    """Each token's (`group` "token") or member's ("member") limit, if any, with this month's
    use against it, by id. Three queries whatever the number."""
    keys = list(keys)
    if group == "token":
        limits = token_limits(team=team, token_ids=keys)
    else:
        limits = member_limits(team=team, user_ids=keys)
    return budget_use(limits, month_use(team=team, group=group, keys=keys, now=now), keys)
