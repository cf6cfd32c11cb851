"""What a route sees and answers (`FakeRequest`, `Reply`) and the `Router` that holds the routes.

A part of the fake (models, assistants, responses, costs) is a module with a
``register(router)`` function that adds its routes and the state they keep::

    def register(router: Router) -> None:
        router.state("things", dict)

        @router.route("POST", r"/v1/things")
        def create(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
            ...
            return Reply.json(thing)

`fakeprovider.server.build_router()` calls each part's ``register`` on a fresh router when a
server is built; nothing is registered at import.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakeprovider.server import FakeProvider


def error_body(message: str, error_type: str, code: str | None, param: str | None = None) -> dict:
    """The provider's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


@dataclass
class FakeRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any

    @property
    def key(self) -> str | None:
        auth = self.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :]
        return self.headers.get("api-key")

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering (the request was handled)
    # A streamed answer (server-sent events, audio): its chunks, each sent as it comes
    # (chunked transfer encoding); `body` is then unused.
    stream: Iterable[bytes] | None = None

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(
            status,
            json.dumps(data).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    @classmethod
    def error(
        cls,
        status: int,
        message: str,
        error_type: str,
        code: str | None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        return cls.json(error_body(message, error_type, code, param), status, headers)


Handler = Callable[["FakeProvider", FakeRequest, re.Match[str]], Reply]


class Router:
    """Routes (method and a full-match path regex, named groups welcome) and state factories."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.state_factories: dict[str, Callable[[], Any]] = {}

    def add(self, method: str, pattern: str, handler: Handler) -> Handler:
        self.routes.append((method.upper(), re.compile(pattern), handler))
        return handler

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Decorator form of `add`."""

        def register(handler: Handler) -> Handler:
            return self.add(method, pattern, handler)

        return register

    def state(self, name: str, factory: Callable[[], Any]) -> None:
        """How `fake.state[name]` starts (rebuilt on every reset)."""
        self.state_factories[name] = factory

    def new_state(self) -> dict[str, Any]:
        return {name: factory() for name, factory in self.state_factories.items()}

    def resolve(self, method: str, path: str) -> tuple[Handler, re.Match[str]] | None:
        """The first route that matches, in the order they were added."""
        for route_method, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                return handler, match
        return None
