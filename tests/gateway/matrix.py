"""The API tokens pages for the permission matrix (tests/test_permission_matrix.py).

Everyone in a team may list and make tokens (a viewer, read-only ones). Revoking takes a
token one may see: the "token" builder's belongs to the owner, so an admin revokes it as an
admin and the owner as its owner, while a member or viewer is refused (403).
"""

from typing import Any

from accounts.models import Role
from gateway.scopes import Scope
from tests.gateway.tokenhelpers import make_token, token_connection
from tests.matrix import Case, World, team_kwargs


def build_token_connection(world: World):
    return token_connection(world.team, name="Gateway", created_by=world.users["owner"])


def build_token(world: World):
    connection = world.objects.get("token_connection") or build_token_connection(world)
    world.objects.setdefault("token_connection", connection)
    token, _value = make_token(world.team, world.users["owner"], connection=connection)
    return token


BUILDERS = {"token_connection": build_token_connection, "token": build_token}


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
]
