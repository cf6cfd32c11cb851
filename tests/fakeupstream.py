"""A stateful, OpenAI-compatible fake provider on loopback, for tests and local runs.

Standard library only: a ``ThreadingHTTPServer`` in a daemon thread. It records every request
and answers like the real API does, down to the error bodies and headers. The key decides what
goes wrong (see the ``KEY_*`` constants); any other key starting with ``sk-`` is accepted.

Extending it: register a handler for a method and a path pattern with ``@route`` and keep its
state in a dict registered with ``@state_factory``; ``reset()`` rebuilds every state dict::

    @state_factory("assistants")
    def _assistants() -> dict: return {}

    @route("POST", r"/v1/assistants")
    def create_assistant(fake: FakeUpstream, request: FakeRequest, match: re.Match) -> Reply:
        ...
        return Reply.json(assistant)

``fake.queue(reply, times=n)`` makes the next n requests (after the key check) get `reply`,
for flows like "fails once, then works".

Run it alone: ``python -m tests.fakeupstream --port 8765``.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

KEY_OK = "sk-test-ok-000000000000abcd"
KEY_INVALID = "sk-test-invalid-0000000401"
KEY_QUOTA = "sk-test-quota-00000000429q"
KEY_RATE_LIMIT = "sk-test-ratelimit-000429r"
KEY_OVERLOADED = "sk-test-overloaded-00503"
KEY_SLOW = "sk-test-slow-0000000slow"
KEY_NOT_JSON = "sk-test-notjson-00000html"
ADMIN_KEY_OK = "sk-admin-test-ok-00000adm1"

KEYS = {
    "KEY_OK": KEY_OK,
    "KEY_INVALID": KEY_INVALID,
    "KEY_QUOTA": KEY_QUOTA,
    "KEY_RATE_LIMIT": KEY_RATE_LIMIT,
    "KEY_OVERLOADED": KEY_OVERLOADED,
    "KEY_SLOW": KEY_SLOW,
    "KEY_NOT_JSON": KEY_NOT_JSON,
    "ADMIN_KEY_OK": ADMIN_KEY_OK,
}

RATE_LIMIT_REQUESTS = 5000
RATE_LIMIT_TOKENS = 800000

# id, created, owned_by, extra fields. Real ids and dates; shutdown_date as the spec has it.
MODELS: list[tuple[str, int, str, dict[str, Any]]] = [
    ("gpt-4o", 1715367049, "system", {}),
    ("gpt-4o-mini", 1721172741, "system", {}),
    ("gpt-4.1", 1744316542, "system", {}),
    ("gpt-4.1-mini", 1744318173, "system", {}),
    ("o3", 1744225308, "system", {}),
    ("o4-mini", 1744225351, "system", {}),
    ("gpt-3.5-turbo", 1677610602, "openai", {"shutdown_date": "2025-09-15"}),
    ("gpt-4-0613", 1686588896, "openai", {"shutdown_date": "2099-06-06"}),
    ("dall-e-3", 1698785189, "system", {}),
    ("whisper-1", 1677532384, "openai-internal", {}),
    ("text-embedding-3-small", 1705948997, "system", {}),
    ("tts-1", 1681940951, "openai-internal", {}),
]


def _error(message: str, error_type: str, code: str | None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _masked(key: str) -> str:
    return f"{key[:8]}{'*' * max(0, len(key) - 12)}{key[-4:]}"


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
        return cls.json(_error(message, error_type, code, param), status, headers)


Handler = Callable[["FakeUpstream", FakeRequest, re.Match[str]], Reply]
ROUTES: dict[tuple[str, re.Pattern[str]], Handler] = {}
STATE_FACTORIES: dict[str, Callable[[], Any]] = {}


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a handler for `method` and a full-match path regex (named groups welcome)."""

    def register(handler: Handler) -> Handler:
        ROUTES[(method.upper(), re.compile(pattern))] = handler
        return handler

    return register


def state_factory(name: str) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
    """Register how `fake.state[name]` starts (rebuilt on every reset)."""

    def register(factory: Callable[[], Any]) -> Callable[[], Any]:
        STATE_FACTORIES[name] = factory
        return factory

    return register


# -- models ----------------------------------------------------------------------------------


@state_factory("models")
def _models_state() -> dict[str, dict[str, Any]]:
    return {
        model_id: {"id": model_id, "object": "model", "created": created, "owned_by": owner} | extra
        for model_id, created, owner, extra in MODELS
    }


@route("GET", r"/v1/models")
def list_models(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    return Reply.json({"object": "list", "data": list(fake.state["models"].values())})


@route("GET", r"/v1/models/(?P<model>[^/]+)")
def retrieve_model(fake: FakeUpstream, request: FakeRequest, match: re.Match[str]) -> Reply:
    model = fake.state["models"].get(match["model"])
    if model is None:
        return Reply.error(
            404,
            f"The model `{match['model']}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
            "model",
        )
    return Reply.json(model)


# -- the server ------------------------------------------------------------------------------


class FakeUpstream:
    """The fake provider. `start()` returns its base URL (``http://127.0.0.1:PORT/v1``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.slow_seconds = 2.0
        self.requests: list[FakeRequest] = []
        self.state: dict[str, Any] = {}
        self._queued: list[Reply] = []
        self._generation = 0
        self._lock = threading.RLock()
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> str:
        if self._server is None:
            self._server = ThreadingHTTPServer((self.host, self.port), _make_handler(self))
            self._server.daemon_threads = True
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="fake-upstream", daemon=True
            )
            self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._thread = None

    def reset(self) -> None:
        with self._lock:
            # A request still in flight from before the reset (a client that timed out on the
            # slow key, say) must not take a reply queued after it.
            self._generation += 1
            self.requests.clear()
            self._queued.clear()
            self.slow_seconds = 2.0
            self.state = {name: factory() for name, factory in STATE_FACTORIES.items()}

    def queue(self, reply: Reply, times: int = 1) -> None:
        """Answer the next `times` authorised requests with `reply`."""
        with self._lock:
            self._queued.extend([reply] * times)

    def requests_to(self, path: str, method: str | None = None) -> list[FakeRequest]:
        return [
            request
            for request in self.requests
            if request.path == path and (method is None or request.method == method.upper())
        ]

    # -- dispatch --------------------------------------------------------------------------

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being answered (a slow one a client gave up on, say)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def handle(self, request: FakeRequest) -> Reply:
        with self._lock:
            self._in_flight += 1
        try:
            return self._handle(request)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _handle(self, request: FakeRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            count = len(self.requests)
            generation = self._generation
        reply = self._answer(request, generation)
        if request.key == KEY_SLOW:
            time.sleep(self.slow_seconds)
        request_id = f"req_{uuid.uuid4().hex}"
        headers = {
            "x-request-id": request_id,
            "openai-processing-ms": "12",
            "x-ratelimit-limit-requests": str(RATE_LIMIT_REQUESTS),
            "x-ratelimit-remaining-requests": str(max(0, RATE_LIMIT_REQUESTS - count)),
            "x-ratelimit-reset-requests": "12ms",
            "x-ratelimit-limit-tokens": str(RATE_LIMIT_TOKENS),
            "x-ratelimit-remaining-tokens": str(RATE_LIMIT_TOKENS - 25 * count),
            "x-ratelimit-reset-tokens": "6m0s",
        }
        reply.headers = {**headers, **reply.headers}
        return reply

    def _answer(self, request: FakeRequest, generation: int) -> Reply:
        failure = self._key_failure(request.key)
        if failure is not None:
            return failure
        with self._lock:
            current = generation == self._generation
            queued = self._queued.pop(0) if self._queued and current else None
        if queued is not None:
            return Reply(queued.status, queued.body, dict(queued.headers), queued.drop)
        for (method, pattern), handler in ROUTES.items():
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                return handler(self, request, match)
        return Reply.error(
            404,
            f"Invalid URL ({request.method} {request.path})",
            "invalid_request_error",
            None,
        )

    def _key_failure(self, key: str | None) -> Reply | None:
        if not key:
            return Reply.error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username. You can obtain an API key "
                "from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                None,
            )
        if key == KEY_INVALID or not key.startswith("sk-"):
            return Reply.error(
                401,
                f"Incorrect API key provided: {_masked(key)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )
        if key == KEY_QUOTA:
            return Reply.error(
                429,
                "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors.",
                "insufficient_quota",
                "insufficient_quota",
            )
        if key == KEY_RATE_LIMIT:
            return Reply.error(
                429,
                "Rate limit reached for gpt-4o in organization org-fake on requests per min "
                "(RPM): Limit 3, Used 3, Requested 1. Please try again in 1s. Visit "
                "https://platform.openai.com/account/rate-limits to learn more.",
                "requests",
                "rate_limit_exceeded",
                headers={
                    "Retry-After": "1",
                    "x-ratelimit-limit-requests": "3",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": "1s",
                },
            )
        if key == KEY_OVERLOADED:
            return Reply.error(
                503,
                "The server is overloaded or not ready yet.",
                "server_error",
                "server_is_overloaded",
            )
        if key == KEY_NOT_JSON:
            return Reply(
                200,
                b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
                b"<body><h1>Please sign in</h1></body></html>",
                {"Content-Type": "text/html; charset=utf-8"},
            )
        return None


def _make_handler(fake: FakeUpstream) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeUpstream/1.0"
        sys_version = ""

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes; without this, delayed ACKs add
            # 40 ms to every answer.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            request = FakeRequest(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                json=parsed,
            )
            reply = fake.handle(request)
            if reply.drop:
                self.close_connection = True
                return
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the fake records requests instead of printing them."""

    return _Handler


from tests.fakeupstream_assistants import register as _register_assistants  # noqa: E402

_register_assistants(sys.modules[__name__])

from tests.fakeupstream_costs import register as _register_costs  # noqa: E402

_register_costs(sys.modules[__name__])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake OpenAI-compatible provider.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--no-assistants-api", action="store_true", help="answer 404 on assistants and threads"
    )
    parser.add_argument(
        "--litellm", action="store_true", help="answer like LiteLLM: assistants 500, long ids"
    )
    args = parser.parse_args(argv)
    fake = FakeUpstream(args.host, args.port)
    fake.assistants_api_removed = args.no_assistants_api
    fake.litellm_mode = args.litellm
    print(f"Fake provider at {fake.start()}", flush=True)
    for name, key in KEYS.items():
        print(f"  {name:<15} {key}", flush=True)
    print(
        f"Allow its host for Tablero: TABLERO_ALLOWED_UPSTREAM_HOSTS={args.host}. Ctrl-C stops it.",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
