"""Team-scoped URLs of the dashboard app, for tests/test_permission_matrix.py."""

from accounts.models import Role
from tests.connections.matrix import CONN, one
from tests.matrix import Case, team_kwargs

CASES = [
    Case("dashboard:team_home", team_kwargs, Role.VIEWER, bad_uuid="team_id"),
    Case("dashboard:connection_row", one, Role.VIEWER, needs=CONN, bad_uuid="connection_id"),
    Case(
        "dashboard:connection_test",
        one,
        Role.ADMIN,
        method="post",
        needs=CONN,
        bad_uuid="connection_id",
    ),
    Case(
        "dashboard:checklist_dismiss",
        team_kwargs,
        Role.ADMIN,
        method="post",
        bad_uuid="team_id",
    ),
    Case("dashboard:notifications", team_kwargs, Role.VIEWER, bad_uuid="team_id"),
    Case(
        "dashboard:notifications",
        team_kwargs,
        Role.VIEWER,
        method="post",
        data=lambda world: {"language": "es"},
        bad_uuid="team_id",
    ),
    Case("dashboard:alert_settings", team_kwargs, Role.ADMIN, bad_uuid="team_id"),
    Case(
        "dashboard:alert_settings",
        team_kwargs,
        Role.ADMIN,
        method="post",
        data=lambda world: {"spend_threshold": "100"},
        bad_uuid="team_id",
    ),
    Case("dashboard:spend", team_kwargs, Role.ADMIN, bad_uuid="team_id"),
    Case("dashboard:spend_csv", team_kwargs, Role.ADMIN, bad_uuid="team_id"),
]
