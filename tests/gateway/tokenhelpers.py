"""Builders for the tests of gateway tokens and their pages."""

from datetime import timedelta

from accounts.models import Team, User
from connections.models import Connection
from gateway import services
from gateway.models import ApiToken
from gateway.scopes import Scope
from tests.connections.helpers import make_connection

MODELS_CACHE = [
    {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
    {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
    {"id": "text-embedding-3-small", "object": "model", "created": 1705948997, "owned_by": "x"},
]


def token_connection(team: Team, *, name: str = "Production", **fields) -> Connection:
    fields.setdefault("models_cache", MODELS_CACHE)
    return make_connection(team, name=name, **fields)


def make_token(
    team: Team,
    owner: User | None,
    *,
    connection: Connection | None = None,
    name: str = "Notebook",
    scopes=(Scope.MODELS, Scope.INFERENCE),
    created_by: User | None = None,
    lifetime: timedelta = services.DEFAULT_LIFETIME,
    allowed_models=(),
) -> tuple[ApiToken, str]:
    """A token made through the service, as the page makes it; (token, full value)."""
    if connection is None:
        connection = Connection.objects.filter(team=team).first() or token_connection(team)
    return services.token_create(
        team=team,
        connection=connection,
        name=name,
        created_by=created_by if created_by is not None else owner,
        owner=owner,
        scopes=scopes,
        allowed_models=allowed_models,
        lifetime=lifetime,
    )
