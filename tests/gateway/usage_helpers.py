"""Builders for the gateway usage and price tests: tokens and call records made directly."""

import datetime
from decimal import Decimal

from django.utils import timezone

from accounts.models import Team, User
from connections.models import Connection
from gateway import tokens
from gateway.models import ApiToken, GatewayCall, ModelPrice, TokenKind


def make_token(
    team: Team, connection: Connection, *, owner: User | None, name: str = "laptop"
) -> ApiToken:
    new = tokens.generate()
    return ApiToken.objects.create(
        team=team,
        connection=connection,
        name=name,
        kind=TokenKind.PERSONAL if owner else TokenKind.SERVICE,
        owner=owner,
        created_by=owner,
        prefix=new.prefix,
        secret_digest=new.secret_digest,
        scopes=["models", "inference"],
        expires_at=timezone.now() + datetime.timedelta(days=90),
    )


def make_call(
    token: ApiToken,
    *,
    when: datetime.datetime | None = None,
    model: str = "gpt-4o-mini",
    family: str = "inference",
    status: int = 200,
    refused: bool = False,
    latency_ms: int | None = 100,
    input_tokens: int | None = 1000,
    cached_tokens: int | None = 0,
    output_tokens: int | None = 500,
    user: User | str | None = "owner",
) -> GatewayCall:
    return GatewayCall.objects.create(
        team=token.team,
        token=token,
        user=token.owner if user == "owner" else user,
        connection=token.connection,
        family=family,
        method="POST",
        path="chat/completions",
        model=model,
        status=status,
        refused=refused,
        latency_ms=latency_ms,
        input_tokens=input_tokens,
        cached_tokens=cached_tokens,
        output_tokens=output_tokens,
        created_at=when or timezone.now(),
    )


def make_price(
    team: Team,
    *,
    model: str = "gpt-4o-mini",
    day: datetime.date = datetime.date(2026, 1, 1),
    input: str = "0.15",
    cached: str | None = "0.075",
    output: str = "0.60",
    currency: str = "USD",
) -> ModelPrice:
    return ModelPrice.objects.create(
        team=team,
        model=model,
        effective_from=day,
        input_per_million=Decimal(input),
        cached_input_per_million=None if cached is None else Decimal(cached),
        output_per_million=Decimal(output),
        currency=currency,
    )
