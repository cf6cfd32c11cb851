"""Every assistants URL for the permission matrix (tests/test_permission_matrix.py).

The objects come from builders that never reach the network: the connection is the
connections matrix's one (a host the tests do not allow, so provider calls are refused at
once), the assistant is already synced, and the run has ended (ended runs are never polled).
"""

from typing import Any

from accounts.models import Role
from assistants.models import RunStatus
from tests.assistants.helpers import make_assistant, make_run
from tests.connections.matrix import build_connection
from tests.matrix import Case, World, team_kwargs


def build_assistant(world: World):
    connection = world.objects.get("connection") or build_connection(world)
    world.objects["connection"] = connection
    return make_assistant(
        world.team, connection, created_by=world.users["member"], remote_id="asst_matrix"
    )


def build_run(world: World):
    assistant = world.objects.get("assistant") or build_assistant(world)
    world.objects["assistant"] = assistant
    return make_run(assistant, status=RunStatus.COMPLETED, started_by=world.users["member"])


BUILDERS = {"assistant": build_assistant, "run": build_run}


def one(world: World) -> dict[str, Any]:
    return {"team_id": world.team.pk, "assistant_id": world.objects["assistant"].pk}


def run(world: World) -> dict[str, Any]:
    return {"team_id": world.team.pk, "run_id": world.objects["run"].pk}


def connection(world: World) -> dict[str, Any]:
    return {"team_id": world.team.pk, "connection_id": world.objects["connection"].pk}


def _assistant_data(world: World) -> dict[str, Any]:
    return {"connection": world.objects["connection"].pk, "name": "Matrix", "model": "gpt-4o"}


def _edit_data(world: World) -> dict[str, Any]:
    return {"name": "Renamed", "model": "gpt-4o"}


def _run_data(world: World) -> dict[str, Any]:
    return {"message": "Hello"}


def _lookup_data(world: World) -> dict[str, Any]:
    return {"connection": world.objects["connection"].pk, "response_id": "resp_abc123"}


ASSISTANT = ("assistant",)
RUN = ("run",)
CONNECTION = ("connection",)

CASES = [
    Case("assistants:list", team_kwargs, Role.VIEWER, bad_uuid="team_id"),
    Case("assistants:create", team_kwargs, Role.MEMBER, needs=CONNECTION, bad_uuid="team_id"),
    Case(
        "assistants:create",
        team_kwargs,
        Role.MEMBER,
        method="post",
        data=_assistant_data,
        needs=CONNECTION,
    ),
    Case("assistants:detail", one, Role.VIEWER, needs=ASSISTANT, bad_uuid="assistant_id"),
    Case("assistants:edit", one, Role.MEMBER, needs=ASSISTANT, bad_uuid="assistant_id"),
    Case("assistants:edit", one, Role.MEMBER, method="post", data=_edit_data, needs=ASSISTANT),
    Case("assistants:delete", one, Role.MEMBER, needs=ASSISTANT, bad_uuid="assistant_id"),
    Case(
        "assistants:delete",
        one,
        Role.MEMBER,
        method="post",
        needs=ASSISTANT,
        bad_uuid="assistant_id",
    ),
    Case(
        "assistants:sync", one, Role.MEMBER, method="post", needs=ASSISTANT, bad_uuid="assistant_id"
    ),
    Case(
        "assistants:import",
        connection,
        Role.MEMBER,
        method="post",
        needs=CONNECTION,
        bad_uuid="connection_id",
    ),
    Case(
        "assistants:run_start",
        one,
        Role.MEMBER,
        method="post",
        data=_run_data,
        needs=ASSISTANT,
        bad_uuid="assistant_id",
    ),
    Case("assistants:runs", team_kwargs, Role.VIEWER, bad_uuid="team_id"),
    Case("assistants:run_detail", run, Role.VIEWER, needs=RUN, bad_uuid="run_id"),
    Case("assistants:run_status", run, Role.VIEWER, needs=RUN, bad_uuid="run_id"),
    Case("assistants:run_refresh", run, Role.VIEWER, method="post", needs=RUN, bad_uuid="run_id"),
    Case("assistants:run_cancel", run, Role.MEMBER, needs=RUN, bad_uuid="run_id"),
    Case("assistants:run_cancel", run, Role.MEMBER, method="post", needs=RUN, bad_uuid="run_id"),
    Case("assistants:run_follow_up", run, Role.MEMBER, method="post", needs=RUN, bad_uuid="run_id"),
    Case("assistants:run_retry", run, Role.MEMBER, method="post", needs=RUN, bad_uuid="run_id"),
    Case("assistants:run_lookup", team_kwargs, Role.VIEWER, bad_uuid="team_id"),
    Case("assistants:run_lookup", team_kwargs, Role.VIEWER, data=_lookup_data, needs=CONNECTION),
    Case("assistants:usage", team_kwargs, Role.VIEWER, bad_uuid="team_id"),
    Case("assistants:usage", team_kwargs, Role.VIEWER, needs=RUN),
]
