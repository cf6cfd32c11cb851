"""Team-scoped URLs of the gateway app, for tests/test_permission_matrix.py."""

from typing import Any

from accounts.models import Role
from tests.connections.matrix import build_connection
from tests.gateway.usage_helpers import make_call, make_price, make_token
from tests.matrix import Case, World, team_kwargs


def build_model_price(world: World):
    return make_price(world.team)


def build_gateway_calls(world: World):
    """Calls by the member and by a service token, so the usage pages have rows to show."""
    if "connection" not in world.objects:
        world.objects["connection"] = build_connection(world)
    connection = world.objects["connection"]
    mine = make_token(world.team, connection, owner=world.users["member"])
    service = make_token(world.team, connection, owner=None, name="ci")
    return [make_call(mine), make_call(mine, status=429), make_call(service, model="gpt-4o")]


BUILDERS = {"model_price": build_model_price, "gateway_calls": build_gateway_calls}


def price_kwargs(world: World) -> dict[str, Any]:
    return {"team_id": world.team.pk, "price_id": world.objects["model_price"].pk}


def _price_data(world: World) -> dict[str, Any]:
    return {
        "model": "gpt-4.1",
        "currency": "USD",
        "input_per_million": "2",
        "cached_input_per_million": "0.5",
        "output_per_million": "8",
        "effective_from": "2026-11-01",
    }


CASES = [
    Case(
        "gateway_usage:summary",
        team_kwargs,
        Role.VIEWER,
        bad_uuid="team_id",
        needs=("gateway_calls", "model_price"),
    ),
    Case(
        "gateway_usage:export",
        team_kwargs,
        Role.VIEWER,
        bad_uuid="team_id",
        needs=("gateway_calls",),
    ),
    Case(
        "gateway_usage:prices", team_kwargs, Role.ADMIN, bad_uuid="team_id", needs=("model_price",)
    ),
    Case("gateway_usage:price_create", team_kwargs, Role.ADMIN, bad_uuid="team_id"),
    Case(
        "gateway_usage:price_create",
        team_kwargs,
        Role.ADMIN,
        method="post",
        data=_price_data,
        bad_uuid="team_id",
    ),
    Case(
        "gateway_usage:price_edit",
        price_kwargs,
        Role.ADMIN,
        bad_uuid="price_id",
        needs=("model_price",),
    ),
    Case(
        "gateway_usage:price_edit",
        price_kwargs,
        Role.ADMIN,
        method="post",
        data=_price_data,
        bad_uuid="price_id",
        needs=("model_price",),
    ),
    Case(
        "gateway_usage:price_delete",
        price_kwargs,
        Role.ADMIN,
        bad_uuid="price_id",
        needs=("model_price",),
    ),
    Case(
        "gateway_usage:price_delete",
        price_kwargs,
        Role.ADMIN,
        method="post",
        bad_uuid="price_id",
        needs=("model_price",),
    ),
]
