"""Every connections URL for the permission matrix (tests/test_permission_matrix.py).

The "connection" builder points at a port where nothing listens and whose host the tests do
not allow, so pages that ask the provider fail at once with an explanation: no case ever
leaves the machine.
"""

from typing import Any

from accounts.models import Role
from tests.connections.helpers import make_connection
from tests.matrix import Case, World, team_kwargs

MODEL_LIST = [{"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"}]


def build_connection(world: World):
    return make_connection(world.team, created_by=world.users["owner"], models_cache=MODEL_LIST)


def build_costed_connection(world: World):
    """A connection with an admin key whose costs cannot be fetched (refused at once)."""
    connection = make_connection(
        world.team, name="Costed", created_by=world.users["owner"], models_cache=MODEL_LIST
    )
    connection.set_admin_key("sk-admin-test-ok-00000adm1")
    connection.save()
    return connection


BUILDERS = {"connection": build_connection, "costed_connection": build_costed_connection}


def one(world: World) -> dict[str, Any]:
    return {"team_id": world.team.pk, "connection_id": world.objects["connection"].pk}


def model(world: World) -> dict[str, Any]:
    return {**one(world), "model_id": "gpt-4o"}


def _create_data(world: World) -> dict[str, Any]:
    return {
        "name": "Matrix",
        "provider": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": "sk-test-ok-000000000000abcd",
    }


def _edit_data(world: World) -> dict[str, Any]:
    return {"name": "Renamed", "run_api": "auto"}


def _replace_data(world: World) -> dict[str, Any]:
    return {"api_key": "sk-test-ok-000000000000abcd"}


def costed(world: World) -> dict[str, Any]:
    return {"team_id": world.team.pk, "connection_id": world.objects["costed_connection"].pk}


def _admin_key_data(world: World) -> dict[str, Any]:
    return {"admin_key": "sk-admin-test-ok-00000adm1"}


CONN = ("connection",)
COSTED = ("costed_connection",)

CASES = [
    Case("connections:list", team_kwargs, Role.VIEWER, bad_uuid="team_id"),
    Case("connections:create", team_kwargs, Role.ADMIN, bad_uuid="team_id"),
    Case("connections:create", team_kwargs, Role.ADMIN, method="post", data=_create_data),
    Case("connections:detail", one, Role.VIEWER, needs=CONN, bad_uuid="connection_id"),
    Case("connections:test", one, Role.ADMIN, method="post", needs=CONN, bad_uuid="connection_id"),
    Case("connections:edit", one, Role.ADMIN, needs=CONN, bad_uuid="connection_id"),
    Case("connections:edit", one, Role.ADMIN, method="post", data=_edit_data, needs=CONN),
    Case("connections:replace_key", one, Role.ADMIN, needs=CONN, bad_uuid="connection_id"),
    Case("connections:replace_key", one, Role.ADMIN, method="post", data=_replace_data, needs=CONN),
    Case("connections:delete", one, Role.ADMIN, needs=CONN, bad_uuid="connection_id"),
    Case(
        "connections:delete", one, Role.ADMIN, method="post", needs=CONN, bad_uuid="connection_id"
    ),
    Case("connections:models", one, Role.VIEWER, needs=CONN, bad_uuid="connection_id"),
    Case(
        "connections:models_refresh",
        one,
        Role.MEMBER,
        method="post",
        needs=CONN,
        bad_uuid="connection_id",
    ),
    Case("connections:model_detail", model, Role.VIEWER, needs=CONN, bad_uuid="connection_id"),
    Case("connections:costs", one, Role.ADMIN, needs=CONN, bad_uuid="connection_id"),
    Case("connections:costs", costed, Role.ADMIN, needs=COSTED, bad_uuid="connection_id"),
    Case(
        "connections:costs_refresh",
        costed,
        Role.ADMIN,
        method="post",
        needs=COSTED,
        bad_uuid="connection_id",
    ),
    Case("connections:costs_refresh", one, Role.ADMIN, method="post", needs=CONN),
    Case("connections:admin_key", one, Role.ADMIN, needs=CONN, bad_uuid="connection_id"),
    Case(
        "connections:admin_key",
        one,
        Role.ADMIN,
        method="post",
        data=_admin_key_data,
        needs=CONN,
        bad_uuid="connection_id",
    ),
    Case(
        "connections:admin_key_remove",
        costed,
        Role.ADMIN,
        method="post",
        needs=COSTED,
        bad_uuid="connection_id",
    ),
]
