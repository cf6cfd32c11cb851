"""Writes to the team's price table: add, edit and remove a model's price, each audited."""

import datetime
from decimal import Decimal

from django.db import transaction

from accounts.models import AuditAction, Team, User
from accounts.services import audit_log
from gateway.models import ModelPrice


def _plain(value: Decimal | None) -> str:
    """A price as typed, whatever its stored scale: 8.5, not 8.500000."""
    return "" if value is None else format(Decimal(value).normalize(), "f")


def _audit_data(price: ModelPrice) -> dict[str, str]:
    return {
        "model": price.model,
        "currency": price.currency,
        "input_per_million": _plain(price.input_per_million),
        "cached_input_per_million": _plain(price.cached_input_per_million),
        "output_per_million": _plain(price.output_per_million),
        "effective_from": price.effective_from.isoformat(),
    }


@transaction.atomic
def model_price_create(
    *,
    team: Team,
    actor: User | None,
    model: str,
    currency: str,
    input_per_million: Decimal,
    cached_input_per_million: Decimal | None,
    output_per_million: Decimal,
    effective_from: datetime.date,
) -> ModelPrice:
    price = ModelPrice(
        team=team,
        model=model.strip(),
        currency=currency.strip().upper(),
        input_per_million=input_per_million,
        cached_input_per_million=cached_input_per_million,
        output_per_million=output_per_million,
        effective_from=effective_from,
    )
    price.full_clean()
    price.save()
    audit_log(
        team=team,
        actor=actor,
        action=AuditAction.PRICE_CREATE,
        target=price,
        data=_audit_data(price),
    )
    return price


@transaction.atomic
def model_price_update(
    *,
    price: ModelPrice,
    actor: User | None,
    model: str,
    currency: str,
    input_per_million: Decimal,
    cached_input_per_million: Decimal | None,
    output_per_million: Decimal,
    effective_from: datetime.date,
) -> ModelPrice:
    before = _audit_data(price)
    price.model = model.strip()
    price.currency = currency.strip().upper()
    price.input_per_million = input_per_million
    price.cached_input_per_million = cached_input_per_million
    price.output_per_million = output_per_million
    price.effective_from = effective_from
    price.full_clean()
    price.save(
        update_fields=[
            "model",
            "currency",
            "input_per_million",
            "cached_input_per_million",
            "output_per_million",
            "effective_from",
        ]
    )
    after = _audit_data(price)
    changed = {
        key: {"from": before[key], "to": after[key]} for key in after if before[key] != after[key]
    }
    audit_log(
        team=price.team,
        actor=actor,
        action=AuditAction.PRICE_UPDATE,
        target=price,
        data={"model": price.model, "changes": changed},
    )
    return price


@transaction.atomic
def model_price_delete(*, price: ModelPrice, actor: User | None) -> None:
    data = _audit_data(price)
    team = price.team
    audit_log(team=team, actor=actor, action=AuditAction.PRICE_DELETE, target=price, data=data)
    price.delete()
