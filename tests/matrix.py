"""The permission matrix: every team-scoped URL, walked for every kind of visitor.

Each app lists its URLs in `tests/<app>/matrix.py` as `CASES`, a list of `Case`. A case names
the URL, how to build its arguments from the fixture world (`World`), the lowest role allowed,
and the method. `tests/test_permission_matrix.py` walks them all:

- anonymous: redirected to sign in
- outsider (a member of another team): 404
- roles below `min_role`: 403
- roles at or above: not 403/404 (the view itself decides 200, 302, ...)

A case can set `bad_uuid` to a kwarg name; the test then checks that an unknown UUID there is
a 404 for the owner.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from accounts.models import Role, Team, User


@dataclass
class World:
    """What a case can build its URL from. Apps add their objects through `builders`."""

    team: Team
    users: dict[str, User]
    objects: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    name: str  # URL name, e.g. "accounts:members"
    kwargs: Callable[[World], dict[str, Any]]
    min_role: Role
    method: str = "get"
    data: Callable[[World], dict[str, Any]] | None = None
    bad_uuid: str | None = None
    # Objects the case needs, built once per test by the named builder in BUILDERS.
    needs: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.name}"


def team_kwargs(world: World) -> dict[str, Any]:
    return {"team_id": world.team.pk}
