"""Prices of models, and what calls cost at them.

A team keeps its own table of prices (`ModelPrice`), per model, dated, in its currency. The
price in force on a call's date is the one with the latest `effective_from` on or before that
date. A model with no such price has no cost: the pages say "no price set" rather than guess.

Token counts follow the provider's `usage` block: the input tokens include the cached ones
(`prompt_tokens_details.cached_tokens` / `input_tokens_details.cached_tokens`), so the uncached
input is `input - cached`.
"""

from __future__ import annotations

import bisect
import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import Team
from connections import charts
from gateway.models import ModelPrice

MILLION = Decimal(1_000_000)


def model_price_list(*, team: Team) -> QuerySet[ModelPrice]:
    """The team's prices, by model, the newest first within each."""
    return ModelPrice.objects.filter(team=team).order_by("model", "-effective_from")


@dataclass
class Money:
    """Amounts per currency, and how many tokens were used on models without a price."""

    amounts: dict[str, Decimal] = field(default_factory=dict)
    unpriced_tokens: int = 0

    def add(self, currency: str, amount: Decimal) -> None:
        self.amounts[currency] = self.amounts.get(currency, Decimal(0)) + amount

    def merge(self, other: Money) -> None:
        for currency, amount in other.amounts.items():
            self.add(currency, amount)
        self.unpriced_tokens += other.unpriced_tokens

    @property
    def known(self) -> bool:
        return bool(self.amounts)

    @property
    def partial(self) -> bool:
        """Some of the tokens have a price and some have none."""
        return self.known and self.unpriced_tokens > 0

    def rounded(self) -> list[tuple[str, Decimal]]:
        """Each currency's amount rounded to its smallest unit, by currency code."""
        return [(code, charts.money(amount, code)) for code, amount in sorted(self.amounts.items())]

    def display(self) -> str:
        """ "12.35 USD" (or several, joined), or "—" when no price was given."""
        if not self.amounts:
            return "—"
        return " + ".join(
            charts.format_amount(amount, code) for code, amount in sorted(self.amounts.items())
        )

    def csv(self) -> tuple[str, str]:
        """The amount and the currency for a spreadsheet: plain dot decimals, empty when no
        price was given; several currencies are listed in the amount cell."""
        rounded = self.rounded()
        if not rounded:
            return "", ""
        if len(rounded) == 1:
            code, amount = rounded[0]
            return str(amount), code
        return " + ".join(f"{amount} {code}" for code, amount in rounded), ""

    @property
    def note(self) -> str:
        if not self.known:
            return _("no price set") if self.unpriced_tokens else ""
        if self.partial:
            return _("partial: some models have no price set")
        return ""


class PriceBook:
    """The team's prices, looked up by model and day without another query."""

    def __init__(self, prices: Iterable[ModelPrice]):
        by_model: dict[str, list[ModelPrice]] = {}
        for price in prices:
            by_model.setdefault(price.model, []).append(price)
        self._dates: dict[str, list[datetime.date]] = {}
        self._prices: dict[str, list[ModelPrice]] = {}
        self._by_pk: dict[object, ModelPrice] = {}
        for model, rows in by_model.items():
            rows.sort(key=lambda row: row.effective_from)
            self._by_pk.update((row.pk, row) for row in rows)
            self._prices[model] = rows
            self._dates[model] = [row.effective_from for row in rows]

    @classmethod
    def for_team(cls, team: Team, *, models: Iterable[str] | None = None) -> PriceBook:
        """The team's prices; only those of `models` when given (what a page needs to price
        the calls it shows, whatever the size of the team's price table)."""
        prices = ModelPrice.objects.filter(team=team)
        if models is not None:
            prices = prices.filter(model__in=sorted(set(models)))
        return cls(prices)

    def price_on(self, model: str, day: datetime.date) -> ModelPrice | None:
        """The price in force for `model` on `day`, or None when the team set none by then."""
        dates = self._dates.get(model)
        if not dates:
            return None
        index = bisect.bisect_right(dates, day) - 1
        return self._prices[model][index] if index >= 0 else None

    def get(self, pk: object) -> ModelPrice | None:
        return self._by_pk.get(pk)

    def cost(
        self, *, model: str, day: datetime.date, input: int, cached: int, output: int
    ) -> Money:
        """What these tokens cost at the price in force on `day` (unrounded)."""
        return self.cost_at(self.price_on(model, day), input=input, cached=cached, output=output)

    @staticmethod
    def cost_at(price: ModelPrice | None, *, input: int, cached: int, output: int) -> Money:
        """What these tokens cost at `price` (unrounded); unpriced when `price` is None."""
        money = Money()
        tokens = input + output
        if not tokens:
            return money
        if price is None:
            money.unpriced_tokens = tokens
            return money
        cached = min(cached, input)
        amount = (
            Decimal(input - cached) * price.input_per_million
            + Decimal(cached) * price.cached_rate
            + Decimal(output) * price.output_per_million
        ) / MILLION
        money.add(price.currency, amount)
        return money
