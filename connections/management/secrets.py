"""Every encrypted field Tablero stores, for the commands that check and rotate them."""

from collections.abc import Iterator
from dataclasses import dataclass

from connections.models import Connection

# Model, its encrypted fields (the `<field>_encrypted` columns), and how a row is named.
ENCRYPTED_FIELDS: list[tuple[type[Connection], tuple[str, ...]]] = [
    (Connection, ("api_key", "admin_key")),
]


@dataclass(frozen=True)
class StoredSecret:
    instance: Connection
    field: str  # "api_key": the column is `api_key_encrypted`

    @property
    def column(self) -> str:
        return f"{self.field}_encrypted"

    @property
    def token(self) -> str:
        return getattr(self.instance, self.column)

    @property
    def context(self) -> str:
        return self.instance._context(self.field)

    def describe(self) -> str:
        """Names the row (id, team, name) and field, never a value."""
        instance = self.instance
        return (
            f"{instance._meta.label} {instance.pk} "
            f"(team {instance.team.name!r}, name {instance.name!r}): {self.field}"
        )


def stored_secrets() -> Iterator[StoredSecret]:
    """Every non-empty encrypted value, row by row."""
    for model, fields in ENCRYPTED_FIELDS:
        rows = model.objects.select_related("team").order_by("pk").iterator(chunk_size=500)
        for instance in rows:
            for field in fields:
                secret = StoredSecret(instance, field)
                if secret.token:
                    yield secret
