"""Team-scoped URLs of the dashboard app, for tests/test_permission_matrix.py."""

from accounts.models import Role
from tests.matrix import Case, team_kwargs

CASES = [
    Case("dashboard:team_home", team_kwargs, Role.VIEWER, bad_uuid="team_id"),
]
