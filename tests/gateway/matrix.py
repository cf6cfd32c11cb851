"""The gateway's team-scoped pages for the permission matrix (tests/test_permission_matrix.py).

The API tokens pages:
everyone in a team may list and make tokens (a viewer, read-only ones). Revoking takes a
token one may see: the "token" builder's belongs to the owner, so an admin revokes it as an
admin and the owner as its owner, while a member or viewer is refused (403). The usage page
and its CSV are everyone's (each sees their own calls); the price table is the admins'.
"""

from typing import Any

from accounts.models import Role
from gateway.scopes import Scope
from tests.connections.matrix import build_connection
from tests.gateway.tokenhelpers import make_token, token_connection
from tests.gateway.usage_helpers import make_call, make_price
from tests.gateway.usage_helpers import make_token as make_usage_token
from tests.matrix import Case, World, team_kwargs


def build_token_connection(world: World):
    return token_connection(world.team, name="Gateway", created_by=world.users["owner"])


def build_token(world: World):
    connection = world.objects.get("token_connection") or build_token_connection(world)
    world.objects.setdefault("token_connection", connection)
    token, _value = make_token(world.team, world.users["owner"], connection=connection)
    return token


def build_model_price(world: World):
    return make_price(world.team)


def build_gateway_calls(world: World):
    """Calls by the member and by a service token, so the usage pages have rows to show."""
    if "connection" not in world.objects:
        world.objects["connection"] = build_connection(world)
    connection = world.objects["connection"]
    mine = make_usage_token(world.team, connection, owner=world.users["member"])
    service = make_usage_token(world.team, connection, owner=None, name="ci")
    return [make_call(mine), make_call(mine, status=429), make_call(service, model="gpt-4o")]


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


def build_owner_membership(world: World):
    from accounts.models import Membership

    return Membership.objects.get(team=world.team, user=world.users["owner"])


def member_kwargs(world: World) -> dict[str, Any]:
    return {"team_id": world.team.pk, "membership_id": world.objects["owner_membership"].pk}


def _limit_data(world: World) -> dict[str, Any]:
    return {"requests_per_minute": "60", "monthly_money_budget": "10", "budget_currency": "USD"}


BUILDERS = {
    "owner_membership": build_owner_membership,
    "token_connection": build_token_connection,
    "token": build_token,
    "model_price": build_model_price,
    "gateway_calls": build_gateway_calls,
}


def one(world: World) -> dict[str, Any]:
    return {"team_id": world.team.pk, "token_id": world.objects["token"].pk}


def _create_data(world: World) -> dict[str, Any]:
    return {
        "name": "Matrix",
        "connection": world.objects["token_connection"].pk,
        "scopes": [Scope.MODELS.value],
        "lifetime": "30",
    }


CASES = [
    Case("gateway:tokens", team_kwargs, Role.VIEWER, bad_uuid="team_id"),
    Case("gateway:token_create", team_kwargs, Role.VIEWER, bad_uuid="team_id"),
    Case(
        "gateway:token_create",
        team_kwargs,
        Role.VIEWER,
        method="post",
        data=_create_data,
        needs=("token_connection",),
    ),
    Case("gateway:token_revoke", one, Role.ADMIN, needs=("token",), bad_uuid="token_id"),
    Case(
        "gateway:token_revoke",
        one,
        Role.ADMIN,
        method="post",
        needs=("token",),
        bad_uuid="token_id",
    ),
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
    # Usage limits: everyone sees the overview and the team default; a token's and a
    # member's limits are their own's to see (here the owner's: 403 below admin); only admins
    # and the owner set or clear any.
    Case("gateway_limits:overview", team_kwargs, Role.VIEWER, bad_uuid="team_id"),
    Case("gateway_limits:default", team_kwargs, Role.VIEWER, bad_uuid="team_id"),
    Case(
        "gateway_limits:default",
        team_kwargs,
        Role.ADMIN,
        method="post",
        data=_limit_data,
        bad_uuid="team_id",
    ),
    Case("gateway_limits:default_clear", team_kwargs, Role.ADMIN, method="post"),
    Case("gateway_limits:token", one, Role.ADMIN, needs=("token",), bad_uuid="token_id"),
    Case(
        "gateway_limits:token",
        one,
        Role.ADMIN,
        method="post",
        data=_limit_data,
        needs=("token",),
        bad_uuid="token_id",
    ),
    Case(
        "gateway_limits:token_clear",
        one,
        Role.ADMIN,
        method="post",
        needs=("token",),
        bad_uuid="token_id",
    ),
    Case(
        "gateway_limits:member",
        member_kwargs,
        Role.ADMIN,
        needs=("owner_membership",),
        bad_uuid="membership_id",
    ),
    Case(
        "gateway_limits:member",
        member_kwargs,
        Role.ADMIN,
        method="post",
        data=_limit_data,
        needs=("owner_membership",),
        bad_uuid="membership_id",
    ),
    Case(
        "gateway_limits:member_clear",
        member_kwargs,
        Role.ADMIN,
        method="post",
        needs=("owner_membership",),
        bad_uuid="membership_id",
    ),
]
