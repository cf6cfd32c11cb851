"""Which run API a connection's server offers, noted on the connection, and running an
operation on it (detecting again when the Assistants API answers that it is gone)."""

from collections.abc import Callable
from typing import Any, TypeVar

from django.utils import timezone

from assistants.backends import (
    ASSISTANTS,
    RESPONSES,
    AssistantsBackend,
    RunApiDetection,
    RunBackend,
    backend_for,
    detect_run_api,
    says_not_offered,
)
from connections import crypto
from connections.errors import ProviderError
from connections.models import Connection, RunApi
from connections.services import client_for

T = TypeVar("T")


def with_backend(
    connection: Connection, operation: Callable[[RunBackend], T], *, api: str | None = None
) -> tuple[T, RunBackend]:
    """Run `operation` on the connection's backend.

    When the Assistants API answers that it is not offered (404, 501, a "not supported" 500 as
    LiteLLM gives) and the connection detects its run API by itself, detect it again
    (api.openai.com removed the Assistants API on 2026-08-26); if the Responses API answers,
    note that on the connection and run `operation` on the Responses API.
    """
    backend = backend_for(connection, api=api)
    try:
        return operation(backend), backend
    except ProviderError as error:
        if not (
            isinstance(backend, AssistantsBackend)
            and says_not_offered(error)
            and connection.run_api == RunApi.AUTO
            and api is None
        ):
            raise
        detection = detect_run_api(backend.client, previous=connection.detected_run_api)
        if detection.api != RESPONSES:
            raise
    connection_note_run_api(connection=connection, detection=detection)
    backend = backend_for(connection, api=RESPONSES, client=backend.client)
    return operation(backend), backend


def connection_note_run_api(*, connection: Connection, detection: RunApiDetection) -> None:
    """Store a run-API detection on the connection: the API found (a detection without one,
    pending or finding neither, keeps the one noted before), why, and when; without touching
    its `updated_at`."""
    values: dict[str, Any] = {
        "run_api_reason": detection.reason,
        "run_api_status": detection.status
        if detection.status and 0 < detection.status < 1000
        else None,
        "run_api_checked_at": timezone.now(),
    }
    if detection.api in (ASSISTANTS, RESPONSES):
        values["detected_run_api"] = detection.api
    # Only while the key and server it was detected with are still the stored ones: a key
    # replaced meanwhile (perhaps with a new base URL) is detected on its own next test.
    updated = Connection.objects.filter(
        pk=connection.pk,
        api_key_encrypted=connection.api_key_encrypted,
        base_url=connection.base_url,
    ).update(**values)
    if updated:
        for field, value in values.items():
            setattr(connection, field, value)


def connection_detect_run_api(*, connection: Connection) -> RunApiDetection | None:
    """Ask which run API the connection's server offers and note the answer, and why, on the
    connection (`connections.services.connection_test` calls this after a successful check).
    None when the key does not decrypt (nothing is asked)."""
    try:
        client = client_for(connection)
    except crypto.DecryptionError:
        return None
    # Each question is asked once: an answer that says nothing clear makes the detection
    # pending (and is said so), and a "not supported" 500 is not worth asking three times.
    client.max_retries = 0
    detection = detect_run_api(client, previous=connection.detected_run_api)
    connection_note_run_api(connection=connection, detection=detection)
    return detection
