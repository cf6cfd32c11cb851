"""The form an admin fills in to add or edit a model's price."""

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from gateway.models import CURRENCY_CODE, ModelPrice, plain_decimal

_PRICE = {"max_digits": 14, "decimal_places": 6, "min_value": 0}


class ModelPriceForm(forms.Form):
    model = forms.CharField(
        label=_("Model"),
        max_length=200,
        help_text=_("The model's ID exactly as programs send it, e.g. gpt-4o-mini."),
    )
    currency = forms.CharField(
        label=_("Currency"),
        max_length=3,
        initial="USD",
        help_text=_("Three-letter ISO 4217 code, e.g. USD or EUR."),
    )
    input_per_million = forms.DecimalField(label=_("Input, per million tokens"), **_PRICE)
    cached_input_per_million = forms.DecimalField(
        label=_("Cached input, per million tokens"),
        required=False,
        help_text=_(
            "Leave empty if the model has no discount for cached input: cached tokens are then "
            "charged at the input price."
        ),
        **_PRICE,
    )
    output_per_million = forms.DecimalField(label=_("Output, per million tokens"), **_PRICE)
    effective_from = forms.DateField(
        label=_("Effective from"),
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_(
            "Calls from this day on are priced at this price, until a later one takes over."
        ),
    )

    def clean_model(self) -> str:
        return self.cleaned_data["model"].strip()

    def clean_currency(self) -> str:
        code = self.cleaned_data["currency"].strip().upper()
        if not re.fullmatch(CURRENCY_CODE, code):
            raise forms.ValidationError(_("Enter a three-letter currency code, e.g. USD."))
        return code

    @classmethod
    def initial_from(cls, price: ModelPrice) -> dict:
        return {
            "model": price.model,
            "currency": price.currency,
            "input_per_million": plain_decimal(price.input_per_million),
            "cached_input_per_million": (
                None
                if price.cached_input_per_million is None
                else plain_decimal(price.cached_input_per_million)
            ),
            "output_per_million": plain_decimal(price.output_per_million),
            "effective_from": price.effective_from,
        }
