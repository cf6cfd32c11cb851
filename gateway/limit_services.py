"""Writes of usage limits: set (create or change) and clear a token's, a member's or the team
default's limits, each audited. The pages and the Django admin both come through here.

The rules, checked here whatever the caller checked:

- only an admin or owner of the team sets or clears limits (`actor` None is Tablero itself;
  `site_admin` is the admin site's staff, whose permission the admin checked);
- a token's limit is on one of the team's tokens, a member's on a member of the team;
- every number is a whole number of at least 1 (empty: no limit); a money budget is more than
  zero and names its currency (three letters); without a money budget the currency is dropped.

A limit whose every field is empty limits nothing; the pages clear it rather than keep it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import AuditAction, Membership, Role, Team, User
from accounts.services import audit_log
from gateway.models import CURRENCY_CODE, ApiToken, LimitTarget, UsageLimit

__all__ = [
    "LIMIT_FIELDS",
    "limit_clean",
    "limit_values",
    "usage_limit_clear",
    "usage_limit_set",
    "usage_limit_target",
]

# The fields of a limit an admin sets, in the order the pages show them.
COUNT_FIELDS = (
    "requests_per_minute",
    "tokens_per_minute",
    "concurrent_requests",
    "monthly_token_budget",
)
LIMIT_FIELDS = (*COUNT_FIELDS, "monthly_money_budget", "budget_currency")
# Their names in the audit log, which drops any key with "token" in it (a secret's, mostly).
AUDIT_NAMES = {
    "requests_per_minute": "rpm",
    "tokens_per_minute": "tpm",
    "concurrent_requests": "concurrent",
    "monthly_token_budget": "monthly_budget",
    "monthly_money_budget": "monthly_money_budget",
    "budget_currency": "currency",
}


def limit_values(limit: UsageLimit | None) -> dict[str, Any]:
    """The limit's settable fields (all None/"" when there is no limit)."""
    values = {name: getattr(limit, name) if limit else None for name in LIMIT_FIELDS}
    values["budget_currency"] = limit.budget_currency if limit else ""
    return values


def _audit_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def _describe(limit: UsageLimit) -> dict[str, Any]:
    """What the audit log says the limit applies to."""
    data: dict[str, Any] = {"target": limit.target}
    if limit.token_id:
        data["prefix"] = limit.token.display_prefix
        data["name"] = limit.token.name
    if limit.user_id:
        data["member"] = limit.user.email
    return data


def _via(site_admin: bool) -> dict[str, str]:
    return {"via": "admin"} if site_admin else {}


def _check_actor(team: Team, actor: User | None, *, site_admin: bool) -> None:
    if actor is None or site_admin or not getattr(actor, "is_authenticated", False):
        return
    role = Membership.objects.filter(team=team, user=actor).values_list("role", flat=True).first()
    if role is None or not Role(role).at_least(Role.ADMIN):
        raise PermissionDenied


def limit_clean(values: dict[str, Any]) -> dict[str, Any]:
    """The limit's values as stored, or ValidationError (by field) for a wrong one."""
    unknown = set(values) - set(LIMIT_FIELDS)
    if unknown:
        raise TypeError(f"Not a limit field: {', '.join(sorted(unknown))}")
    cleaned: dict[str, Any] = {}
    for name in COUNT_FIELDS:
        value = values.get(name)
        if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
            raise ValidationError(
                {name: _("Enter a whole number of at least 1, or leave it empty.")}, code="min"
            )
        cleaned[name] = None if value is None else int(value)
    money = values.get("monthly_money_budget")
    currency = (values.get("budget_currency") or "").strip().upper()
    if money is None:
        currency = ""
    else:
        money = Decimal(money)
        if money <= 0:
            raise ValidationError(
                {"monthly_money_budget": _("A money budget is more than zero.")}, code="min"
            )
        if not re.fullmatch(CURRENCY_CODE, currency):
            raise ValidationError(
                {"budget_currency": _("Give the budget's currency, e.g. USD.")}, code="currency"
            )
    cleaned["monthly_money_budget"] = money
    cleaned["budget_currency"] = currency
    return cleaned


def usage_limit_target(
    *, team: Team, token: ApiToken | None, user: User | None
) -> tuple[LimitTarget, ApiToken | None, User | None]:
    if token is not None and user is not None:
        raise ValidationError(_("A limit is on a token or on a member, not both."), code="both")
    if token is not None:
        if token.team_id != team.pk:
            raise ValidationError(_("Choose one of this team's tokens."), code="token")
        return LimitTarget.TOKEN, token, None
    if user is not None:
        if not Membership.objects.filter(team=team, user=user).exists():
            raise ValidationError(_("This person is not a member of the team."), code="member")
        return LimitTarget.MEMBER, None, user
    return LimitTarget.TEAM_DEFAULT, None, None


def _current(team: Team, target: LimitTarget, token: ApiToken | None, user: User | None):
    limits = UsageLimit.objects.select_for_update().filter(team=team, target=target)
    if token is not None:
        limits = limits.filter(token=token)
    if user is not None:
        limits = limits.filter(user=user)
    return limits.first()


@transaction.atomic
def usage_limit_set(
    *,
    team: Team,
    actor: User | None,
    token: ApiToken | None = None,
    user: User | None = None,
    site_admin: bool = False,
    **values: Any,
) -> UsageLimit:
    """Set the limits of `token`, of member `user`, or (neither) the team's default for new
    tokens: the one limit row of that target is made or changed to `values` (the fields of
    LIMIT_FIELDS; one left out or None is no limit). Audited with what changed.
    PermissionDenied for an actor below admin, ValidationError for a wrong value."""
    _check_actor(team, actor, site_admin=site_admin)
    target, token, user = usage_limit_target(team=team, token=token, user=user)
    cleaned = limit_clean(values)
    limit = _current(team, target, token, user)
    created = limit is None
    before = limit_values(limit)
    if limit is None:
        limit = UsageLimit(team=team, target=target, token=token, user=user)
    for name, value in cleaned.items():
        setattr(limit, name, value)
    limit.updated_at = timezone.now()
    limit.full_clean()
    limit.save()
    after = limit_values(limit)
    changes = {
        AUDIT_NAMES[name]: {"from": _audit_value(before[name]), "to": _audit_value(after[name])}
        for name in LIMIT_FIELDS
        if before[name] != after[name]
    }
    if created or changes:
        audit_log(
            team=team,
            actor=actor,
            action=AuditAction.LIMIT_SET,
            target=limit,
            data={
                **_describe(limit),
                "changes": changes,
                **({"via": "admin"} if site_admin else {}),
            },
        )
    return limit


@transaction.atomic
def usage_limit_clear(*, limit: UsageLimit, actor: User | None, site_admin: bool = False) -> None:
    """Remove a limit (its target is then not limited), audited with what it was."""
    _check_actor(limit.team, actor, site_admin=site_admin)
    values = {AUDIT_NAMES[name]: _audit_value(value) for name, value in limit_values(limit).items()}
    data = {**_describe(limit), "was": values, **_via(site_admin)}
    audit_log(team=limit.team, actor=actor, action=AuditAction.LIMIT_CLEAR, target=limit, data=data)
    limit.delete()
