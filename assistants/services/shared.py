"""What the services share: the one-time form tokens and the error history."""

import uuid

from accounts.models import Team, User
from assistants.models import Assistant, Run
from connections.models import Connection
from connections.services import error_event_record
from provider.errors import ProviderError


class AlreadySubmitted(Exception):
    """The form with this one-time token was sent before; `target` is what it made then."""

    def __init__(self, target: Assistant | Run) -> None:
        super().__init__("already submitted")
        self.target = target


class SyncInProgress(Exception):
    """Another request is bringing this assistant to the provider right now."""


def record_error(
    connection: Connection, error: ProviderError, *, operation: str, user: User | None
) -> None:
    error_event_record(connection=connection, error=error, operation=operation, user=user)


def raise_if_submitted(model: type[Assistant | Run], team: Team, token: uuid.UUID | None) -> None:
    """Raise AlreadySubmitted when the form with this one-time token already made a record."""
    if token is None:
        return
    existing = model.objects.filter(team=team, submission_token=token).first()
    if existing is not None:
        raise AlreadySubmitted(existing)
