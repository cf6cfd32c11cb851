"""The form an admin fills in to set a token's, a member's or the team default's limits."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from gateway.limit_services import LIMIT_FIELDS, limit_values
from gateway.models import CURRENCY_CODE, UsageLimit, plain_decimal

_COUNT = {"required": False, "min_value": 1}
_WHOLE = _("Enter a whole number of at least 1, or leave it empty.")


def _count(label: Any, help_text: Any, *, big: bool = False) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        help_text=help_text,
        max_value=9_223_372_036_854_775_807 if big else 2_147_483_647,
        error_messages={"invalid": _WHOLE, "min_value": _WHOLE},
        **_COUNT,
    )


def add_service_errors(form: forms.BaseForm, invalid: ValidationError) -> None:
    """A refusal of `gateway.limit_services` shown on `form`: by field where it names one."""
    if not hasattr(invalid, "error_dict"):
        form.add_error(None, invalid.messages)
        return
    for field, errors in invalid.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


class UsageLimitForm(forms.Form):
    """Every field is optional: empty is no limit."""

    requests_per_minute = _count(
        _("Requests per minute"), _("How many calls may start in any one minute.")
    )
    tokens_per_minute = _count(
        _("Tokens per minute"),
        _("Input and output tokens in any one minute, reserved from each request's maximum."),
    )
    concurrent_requests = _count(
        _("Concurrent requests"), _("How many calls may be in progress at the same time.")
    )
    monthly_token_budget = _count(
        _("Monthly budget in tokens"),
        _("Input and output tokens in a calendar month (UTC)."),
        big=True,
    )
    monthly_money_budget = forms.DecimalField(
        label=_("Monthly budget in money"),
        required=False,
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        error_messages={"min_value": _("A money budget is more than zero.")},
        help_text=_(
            "Counts only calls to models the team has a price for, in the budget's currency. "
            "Calls to models without a price are not counted."
        ),
    )
    budget_currency = forms.CharField(
        label=_("Budget currency"),
        required=False,
        max_length=3,
        help_text=_("Three-letter code, e.g. USD; needed with a money budget."),
    )

    def clean_budget_currency(self) -> str:
        return (self.cleaned_data.get("budget_currency") or "").strip().upper()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        money = cleaned.get("monthly_money_budget")
        currency = cleaned.get("budget_currency") or ""
        if money is None:
            cleaned["budget_currency"] = ""  # no money budget: its currency means nothing
        elif not currency:
            self.add_error("budget_currency", _("Give the currency of the money budget."))
        elif not re.fullmatch(CURRENCY_CODE, currency):
            self.add_error("budget_currency", _("Enter a three-letter currency code, e.g. USD."))
        return cleaned

    @property
    def empty(self) -> bool:
        """Nothing is limited (every field left empty)."""
        return all(
            self.cleaned_data.get(name) in (None, "")
            for name in LIMIT_FIELDS
            if name != "budget_currency"
        )

    def values(self) -> dict[str, Any]:
        return {name: self.cleaned_data.get(name) for name in LIMIT_FIELDS}

    @classmethod
    def initial_from(cls, limit: UsageLimit | None, *, currency: str = "") -> dict[str, Any]:
        initial = limit_values(limit)
        if initial["monthly_money_budget"] is not None:
            initial["monthly_money_budget"] = plain_decimal(initial["monthly_money_budget"])
        initial["budget_currency"] = initial["budget_currency"] or currency
        return initial
