"""Shared builders for the connections tests."""

from accounts.models import Team, User
from connections.models import Connection, Health

# A key no fake treats specially; it must never show up anywhere but the fake's request log.
CANARY_KEY = "sk-test-ok-CANARY0123456789wxyz"
# Nothing listens on port 9: a connection there is refused at once (or the URL is refused).
REFUSED_URL = "http://127.0.0.1:9/v1"


def make_connection(
    team: Team,
    *,
    name: str = "Production",
    key: str = "sk-test-ok-000000000000abcd",
    base_url: str = REFUSED_URL,
    created_by: User | None = None,
    **fields,
) -> Connection:
    connection = Connection(
        team=team, name=name, base_url=base_url, created_by=created_by, **fields
    )
    connection.set_api_key(key)
    connection.full_clean()
    connection.save()
    return connection


def make_unreadable(connection: Connection, *, other: Connection) -> Connection:
    """Give `connection` a ciphertext made for another row: it will not decrypt."""
    connection.api_key_encrypted = other.api_key_encrypted
    connection.save(update_fields=["api_key_encrypted"])
    return connection


__all__ = ["CANARY_KEY", "REFUSED_URL", "Health", "make_connection", "make_unreadable"]
