"""Alerts on the use of the gateway (issue 14): a token or a member at 80 % and at 100 % of a
monthly budget, and a token that sees a burst of errors. Read from the GatewayCall records by
a periodic task, every minute (`dashboard.tasks`):

- budgets: only the tokens and members with a monthly budget that made a call lately (or whose
  limit changed lately) are measured again, so an idle team costs one small query: per team, a
  look at its recent calls, then one aggregate of this month's calls of those spenders and one
  read of the prices. Each threshold goes out once per month and budget (a unique key in
  AlertSent), to the member concerned and to the admins (their spend alerts choice);
- bursts: the errors of the last BURST_WINDOW per token, read through the errors-only index of
  the calls. A token with BURST_ERRORS or more is alerted once, to its owner and the admins
  (their connection alerts choice); its burst stays open, and quiet, until a check finds fewer
  errors in the window, which ends it: the next burst is alerted again.

The month is the calendar month in UTC, as the gateway counts it when it enforces a budget.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from dashboard.alerts import Alert, alert_claim, alert_send
from dashboard.models import AlertKind, AlertSent
from gateway import budgets
from gateway.models import ApiToken, GatewayCall, LimitTarget, UsageLimit
from gateway.prices import PriceBook

logger = logging.getLogger(__name__)

BURST_ERRORS = 10
BURST_WINDOW = timedelta(minutes=5)
# A spender whose last call is older than this is not measured again (nothing changed). Longer
# than the task's period, so a late run misses nothing.
RECENT = timedelta(minutes=5)
BURST_KEY = "error-burst:"


def _errors() -> Q:
    return Q(status__gte=400) | Q(refused=True)


# --- budgets ------------------------------------------------------------------------------------


def _budget_of(use: budgets.BudgetUse, measure: str) -> str:
    value = use.token_budget if measure == "tokens" else use.money_budget
    return format(value.normalize(), "f") if measure == "money" else str(value)


def _budget_facts(
    limit: UsageLimit, use: budgets.BudgetUse, measure: str, threshold: int, percent: int, month
) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "target": limit.target,
        "measure": measure,
        "threshold": threshold,
        "percent": percent,
        "month": month,
        "budget": _budget_of(use, measure),
        "used": str(use.tokens) if measure == "tokens" else format(use.money_spent, "f"),
        "currency": use.currency,
    }
    if limit.target == LimitTarget.TOKEN:
        token = limit.token
        facts |= {
            "name": token.name,
            "prefix": token.display_prefix,
            "owner": token.owner.email if token.owner_id else "",
        }
    else:
        facts["name"] = limit.user.name or limit.user.email
    return facts


def _alert_budget(limit: UsageLimit, use: budgets.BudgetUse, *, month: str) -> int:
    sent, kind = 0, AlertKind.BUDGET_THRESHOLD
    for measure, threshold, percent in use.crossed():
        base = f"budget:{limit.pk}:{month}:{measure}:{_budget_of(use, measure)}"
        # The lower thresholds are passed too: a budget found wholly used is alerted once, at
        # 100 %, not at 80 % afterwards.
        for lower in budgets.THRESHOLDS:
            if lower < threshold:
                alert_claim(
                    key=f"{base}:{lower}", team_id=limit.team_id, kind=AlertKind.BUDGET_THRESHOLD
                )
        if not alert_claim(key=f"{base}:{threshold}", team_id=limit.team_id, kind=kind):
            continue
        facts = _budget_facts(limit, use, measure, threshold, percent, month)
        concerned = limit.user_id if limit.target == LimitTarget.MEMBER else limit.token.owner_id
        alert_send(
            alert=Alert(team_id=limit.team_id, kind=AlertKind.BUDGET_THRESHOLD, facts=facts),
            concerned=concerned,
        )
        sent += 1
    return sent


def budget_alerts_run(*, now: datetime | None = None) -> int:
    """Alert every budget threshold newly reached this month. Returns how many were sent."""
    now = now or timezone.now()
    month = f"{budgets.month_start(now):%Y-%m}"
    recent = now - RECENT
    by_team: dict[Any, list[UsageLimit]] = defaultdict(list)
    for limit in budgets.budgeted_limits().select_related("team", "token__owner", "user"):
        by_team[limit.team_id].append(limit)
    sent = 0
    for limits in by_team.values():
        team = limits[0].team
        token_ids = {limit.token_id for limit in limits if limit.token_id}
        user_ids = {limit.user_id for limit in limits if limit.user_id}
        callers = (
            GatewayCall.objects.filter(team=team, created_at__gte=recent, created_at__lte=now)
            .filter(Q(token_id__in=token_ids) | Q(user_id__in=user_ids))
            .values_list("token_id", "user_id")
            .distinct()
        )
        active_tokens, active_users = set(), set()
        for token_id, user_id in callers:
            active_tokens.add(token_id)
            active_users.add(user_id)
        changed = [limit for limit in limits if limit.updated_at >= recent]
        active_tokens = (active_tokens & token_ids) | {c.token_id for c in changed if c.token_id}
        active_users = (active_users & user_ids) | {c.user_id for c in changed if c.user_id}
        if not active_tokens and not active_users:
            continue
        book = PriceBook.for_team(team)
        used = {
            "token": budgets.month_use(
                team=team, group="token", keys=active_tokens, now=now, book=book
            ),
            "member": budgets.month_use(
                team=team, group="member", keys=active_users, now=now, book=book
            ),
        }
        for limit in limits:
            group, key = (
                ("token", limit.token_id)
                if limit.target == LimitTarget.TOKEN
                else ("member", limit.user_id)
            )
            if key not in (active_tokens if group == "token" else active_users):
                continue
            use = budgets.budget_use({key: limit}, used[group], [key])[key]
            sent += _alert_budget(limit, use, month=month)
    return sent


# --- bursts of errors ---------------------------------------------------------------------------


def error_burst_alerts_run(*, now: datetime | None = None) -> int:
    """Alert each token that got BURST_ERRORS errors or more in the last BURST_WINDOW, once
    per burst; end the bursts that are over. Returns how many were sent."""
    now = now or timezone.now()
    bursting = {
        row["token_id"]: row["errors"]
        for row in GatewayCall.objects.filter(
            _errors(), created_at__gt=now - BURST_WINDOW, created_at__lte=now
        )
        .exclude(token_id=None)
        .values("token_id")
        .annotate(errors=Count("pk"))
        .filter(errors__gte=BURST_ERRORS)
        .order_by()
    }
    open_keys = set(
        AlertSent.objects.filter(kind=AlertKind.ERROR_BURST, key__startswith=BURST_KEY).values_list(
            "key", flat=True
        )
    )
    wanted = {f"{BURST_KEY}{token_id}" for token_id in bursting}
    ended = open_keys - wanted
    if ended:
        AlertSent.objects.filter(key__in=ended).delete()
    sent = 0
    tokens = ApiToken.objects.select_related("owner").in_bulk(
        [token_id for token_id in bursting if f"{BURST_KEY}{token_id}" not in open_keys]
    )
    for token_id, token in tokens.items():
        if not alert_claim(
            key=f"{BURST_KEY}{token_id}", team_id=token.team_id, kind=AlertKind.ERROR_BURST
        ):
            continue
        statuses = list(
            GatewayCall.objects.filter(
                _errors(), token_id=token_id, created_at__gt=now - BURST_WINDOW, created_at__lte=now
            )
            .values_list("status")
            .annotate(count=Count("pk"))
            .order_by("-count", "status")[:3]
        )
        facts = {
            "name": token.name,
            "prefix": token.display_prefix,
            "owner": token.owner.email if token.owner_id else "",
            "errors": bursting[token_id],
            "minutes": int(BURST_WINDOW.total_seconds() // 60),
            "statuses": [[status, count] for status, count in statuses],
        }
        alert_send(
            alert=Alert(team_id=token.team_id, kind=AlertKind.ERROR_BURST, facts=facts),
            concerned=token.owner_id,
        )
        sent += 1
    return sent


def gateway_alerts_run(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return budget_alerts_run(now=now) + error_burst_alerts_run(now=now)
