"""The one shape in which a service that calls the provider says how it went.

Every service that talks to the provider (connections and assistants) returns an `Outcome`:
`value` is what it made, read or changed (or None when nothing), and `error` the provider's
failure (None when the provider answered well). A failure the service also stores (health,
`last_error`, the error history, an assistant's or run's error) is stored before it returns;
the page only explains `error`. Provider failures never raise out of these services; what
does raise is a programming error or a race the caller must handle in its own way
(`ConnectionChanged`, `AlreadySubmitted`, `SyncInProgress`).

Selectors that ask the provider live and store nothing (`model_get`, `run_lookup`) raise
`ProviderError` instead: they have nothing else to give.
"""

from dataclasses import dataclass
from typing import Generic, TypeVar

from provider.errors import ProviderError

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    value: T | None = None
    error: ProviderError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None
