"""A stateful, OpenAI-compatible fake provider on loopback, for tests, `make demo` and bench/.

Standard library only: a ``ThreadingHTTPServer`` in a daemon thread. It records every request
and answers like the real API does, down to the error bodies and headers. The key decides what
goes wrong (see `fakeprovider.keys`); any other key starting with ``sk-`` is accepted.

The routes come from a `Router` that `build_router()` fills with the parts (models,
assistants, responses, costs) when a server is built. A test can pass its own router (the
default one plus its routes) and its own clock (`ManualClock`, stepped by the test)::

    router = build_router()

    @router.route("POST", r"/v1/things")
    def create(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply: ...

    fake = FakeProvider(router=router, clock=ManualClock())

``fake.queue(reply, times=n)`` makes the next n requests (after the key check) get `reply`,
for flows like "fails once, then works".

Switches (back to their defaults on ``reset()``): ``slow_seconds`` (how long the slow key
waits), ``run_step_seconds``, ``assistants_api_removed``, ``litellm_mode``,
``lose_created_assistants`` (see `fakeprovider.assistants`) and ``rate_limit`` (a
`fakeprovider.ratelimit.RateLimit` that counts down and answers 429 at 0).

Run it alone: ``python -m fakeprovider --port 8765``.
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakeprovider import assistants, costs, inference, models, responses
from fakeprovider.clock import Clock, SystemClock
from fakeprovider.keys import KEY_SLOW, RATE_LIMIT_REQUESTS, RATE_LIMIT_TOKENS, key_failure
from fakeprovider.ratelimit import RateLimit
from fakeprovider.router import FakeRequest, Reply, Router

DEFAULT_SLOW_SECONDS = 2.0
DEFAULT_RUN_STEP_SECONDS = 1.0


def build_router() -> Router:
    """A router with every part of the fake: models, assistants and threads, responses, costs."""
    router = Router()
    for part in (models, assistants, responses, costs, inference):
        part.register(router)
    return router


class FakeProvider:
    """The fake provider. `start()` returns its base URL (``http://127.0.0.1:PORT/v1``)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        router: Router | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.router = router if router is not None else build_router()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.slow_seconds = DEFAULT_SLOW_SECONDS
        self.run_step_seconds = DEFAULT_RUN_STEP_SECONDS
        self.assistants_api_removed = False
        self.litellm_mode = False
        self.lose_created_assistants: list[str] = []
        # Set: the x-ratelimit-* headers count down and the fake answers 429 at 0.
        self.rate_limit: RateLimit | None = None
        # Set: a streamed answer sends its first chunk, then waits for it before the rest.
        self.stream_gate: threading.Event | None = None
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
            self.slow_seconds = DEFAULT_SLOW_SECONDS
            self.run_step_seconds = DEFAULT_RUN_STEP_SECONDS
            self.assistants_api_removed = False
            self.litellm_mode = False
            self.lose_created_assistants = []
            self.rate_limit = None
            if self.stream_gate is not None:
                self.stream_gate.set()
            self.stream_gate = None
            self.state = self.router.new_state()

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
        counted: dict[str, str] = {}
        refusal = None
        if self.rate_limit is not None and key_failure(request.key) is None:
            with self._lock:
                refusal, counted = self.rate_limit.take(self.clock.time())
        reply = refusal if refusal is not None else self._answer(request, generation)
        if request.key == KEY_SLOW:
            self.clock.sleep(self.slow_seconds)
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
            **counted,
        }
        reply.headers = {**headers, **reply.headers}
        return reply

    def _answer(self, request: FakeRequest, generation: int) -> Reply:
        failure = key_failure(request.key)
        if failure is not None:
            return failure
        with self._lock:
            current = generation == self._generation
            queued = self._queued.pop(0) if self._queued and current else None
        if queued is not None:
            return Reply(queued.status, queued.body, dict(queued.headers), queued.drop)
        found = self.router.resolve(request.method, request.path)
        if found is not None:
            handler, match = found
            return handler(self, request, match)
        return Reply.error(
            404,
            f"Invalid URL ({request.method} {request.path})",
            "invalid_request_error",
            None,
        )


def _make_handler(fake: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeProvider/1.0"
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
                if reply.stream is not None:
                    self._stream(reply.stream)
                    return
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _stream(self, chunks: Any) -> None:
            """Each chunk as it comes, in chunked transfer encoding."""
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the fake records requests instead of printing them."""

    return _Handler
