"""The last middleware: it keeps the whole middleware stack synchronous under ASGI.

Tablero's views are synchronous, and so is one of its middleware (WhiteNoise's). Django builds
the stack from the inside out and adapts between the two worlds wherever they meet: with the
views' async-capable handler at the bottom, every middleware below WhiteNoise ran in async
mode, where Django's own (sessions, CSRF, authentication, messages, ...) hand each
`process_request` and `process_response` to a thread and back (`MiddlewareMixin.__acall__`).
That was a dozen thread round trips per page.

A synchronous-only middleware at the bottom makes every middleware above it run in sync mode,
one thread for the whole stack: Django switches once at the top and once here, to call the
view (which it runs on that same thread). Nothing else changes: it passes every request on.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class SynchronousStack:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
