"""Running an operation on a connection's run API, detecting it again when the Assistants API
answers that it is gone (the detection itself is the provider library's, noted on the
connection by `connections.services`)."""

from collections.abc import Callable
from typing import TypeVar

from assistants.backends import AssistantsBackend, RunBackend, backend_for
from connections.models import Connection, RunApi
from connections.services import connection_note_run_api
from provider.errors import ProviderError
from provider.runapi import RESPONSES, detect_run_api, says_not_offered

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
