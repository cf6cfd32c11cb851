"""Another request arriving while Tablero waits for the provider, without threads.

`meanwhile(method, path, action)` runs `action` once, in the test's own thread and database
transaction, just after the fake provider has answered `method path` and before Tablero reads
that answer: as if a second request (a double click, another tab, a colleague) came in while the
first was still talking to the provider. It hooks the response event of the shared HTTP client
(the one for the site's URL guard), the provider boundary; nothing inside Tablero is replaced.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from connections.guard import url_guard
from provider.pool import shared_http_client


@contextmanager
def meanwhile(method: str, path: str, action: Callable[[], Any]) -> Iterator[list[Any]]:
    """Yields a list that receives what `action` returned (empty if it never ran)."""
    results: list[Any] = []
    fired: list[bool] = []

    def hook(response: httpx.Response) -> None:
        request = response.request
        if not fired and request.method == method and request.url.path == path:
            fired.append(True)  # before `action`, whose own requests pass through here too
            results.append(action())

    hooks = shared_http_client(url_guard()).event_hooks["response"]
    hooks.append(hook)
    try:
        yield results
    finally:
        hooks.remove(hook)
