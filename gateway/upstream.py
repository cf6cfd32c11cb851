"""The gateway's HTTP/1.1 client to the provider: lean, pooled, and behind the SSRF guard.

httpx (with httpcore, anyio and h11 under it) costs about 1.5 ms of CPU per call on a small
machine, more than the gateway's whole budget (bench/gateway.py). This client does only what
the pass-through needs, on an asyncio protocol with httptools' C parser (which uvicorn
already brings): one write per request, the answer's status and headers, then its body
chunk by chunk as it arrives, with back-pressure (reading pauses while a slow client has not
taken what was read), keep-alive connections kept per host, and the SDK's timeouts.

The SSRF guard is the provider library's: each new connection resolves the host
(`provider.urlguard.resolve_host`, in a thread), refuses when the guard forbids any address
(`URLGuard.vetted_addresses`), and connects to the address it vetted; TLS checks the
certificate against the host name. Redirects are never followed (the answer is passed on).

A request is never sent twice. Bodies come back as sent (the client asks for no compression;
an answer compressed anyway passes with its Content-Encoding).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httptools
import httpx

from provider.urlguard import URLGuard, resolve_host

__all__ = ["Pool", "Response", "Target", "UpstreamError", "UpstreamTimeout"]

CONNECT_SECONDS = 5.0
READ_SECONDS = 600.0
IDLE_SECONDS = 30.0
MAX_IDLE_PER_HOST = 256
# Reading pauses while this much of an answer waits for the client.
HIGH_WATER = 1024 * 1024


class UpstreamError(Exception):
    """The provider could not be reached or answered something that is not HTTP."""


class UpstreamTimeout(UpstreamError):
    """The provider did not connect or answer in time."""


@dataclass(frozen=True)
class Target:
    """Where a base URL leads: scheme, host, port, and the path prefix (no trailing slash)."""

    scheme: str
    host: str
    port: int
    prefix: str
    host_header: bytes

    @classmethod
    def of(cls, base_url: str) -> Target:
        url = httpx.URL(base_url)
        port = url.port or (443 if url.scheme == "https" else 80)
        host = url.host
        default = port == (443 if url.scheme == "https" else 80)
        shown = f"[{host}]" if ":" in host else host
        return cls(
            scheme=url.scheme,
            host=host,
            port=port,
            prefix=url.raw_path.decode("ascii").rstrip("/"),
            host_header=(shown if default else f"{shown}:{port}").encode("ascii"),
        )


class _Connection(asyncio.Protocol):
    """One connection; its parser callbacks fill the answer being read."""

    def __init__(self, key: tuple[str, str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.until_close = False
        self.keep_alive = False
        self.complete = False
        self.error: Exception | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.error = UpstreamError("The provider switched protocols.")
            self.close()
        except httptools.HttpParserError:
            self.error = UpstreamError("The provider's answer is not valid HTTP.")
            self.close()
        self._wake()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            if self.headers_done and self.until_close:
                self.complete = True  # an answer whose body ends with the connection
            else:
                self.error = UpstreamError("The provider closed the connection.")
        self._wake()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.headers_done = True
        # Asked now: httptools forgets it once the message is complete.
        self.keep_alive = self.parser.should_keep_alive()
        names = {name for name, _value in self.headers}
        self.until_close = b"content-length" not in names and b"transfer-encoding" not in names

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        self.complete = True

    # the client's side
    async def wait(self) -> None:
        """Until something happens (data, the end, an error), at most READ_SECONDS."""
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        handle = loop.call_later(READ_SECONDS, self._timeout)
        try:
            await self.waiter
        finally:
            handle.cancel()
            self.waiter = None
        if self.error is not None:
            raise self.error

    def _timeout(self) -> None:
        self.error = UpstreamTimeout("The provider did not answer in time.")
        self.close()
        self._wake()

    def take(self) -> bytes | None:
        if not self.chunks:
            return None
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.paused and self.buffered <= HIGH_WATER // 2 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunk

    def reusable(self) -> bool:
        return self.complete and not self.closed and self.keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Response:
    """An answer being read: `status`, `headers` (lower-case names), then `chunks()`."""

    def __init__(self, pool: Pool, connection: _Connection, head_only: bool) -> None:
        self._pool = pool
        self._connection = connection
        self._head_only = head_only
        self.status = connection.status
        self.headers = connection.headers
        self._released = False

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        connection = self._connection
        if self._head_only:
            return
        while True:
            chunk = connection.take()
            if chunk is not None:
                yield chunk
                continue
            if connection.complete:
                return
            if connection.error is not None:
                raise connection.error
            if connection.closed:
                raise UpstreamError("The provider closed the connection.")
            await connection.wait()

    def close(self) -> None:
        """Give the connection back (when the answer was read to its end) or close it."""
        if self._released:
            return
        self._released = True
        connection = self._connection
        if not self._head_only and connection.reusable() and not connection.chunks:
            self._pool.release(connection)
        else:
            connection.close()


class Pool:
    """Keep-alive connections per (scheme, host, port), for one event loop."""

    def __init__(self, guard: URLGuard) -> None:
        self.guard = guard
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._ssl: ssl.SSLContext | None = None

    def release(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection.key, [])
        if len(idle) >= MAX_IDLE_PER_HOST:
            connection.close()
            return
        connection._reset()
        connection.idle_since = time.monotonic()
        idle.append(connection)

    def _idle_connection(self, key: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.close()
        return None

    async def _connect(self, target: Target) -> _Connection:
        key = (target.scheme, target.host, target.port)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_SECONDS):
                addresses = await asyncio.to_thread(resolve_host, target.host, target.port)
                addresses = self.guard.vetted_addresses(target.host, target.port, addresses)
                if target.scheme == "https" and self._ssl is None:
                    self._ssl = httpx.create_ssl_context()
                last: Exception | None = None
                for address in addresses:
                    try:
                        _transport, connection = await loop.create_connection(
                            lambda: _Connection(key),
                            address,
                            target.port,
                            ssl=self._ssl if target.scheme == "https" else None,
                            server_hostname=target.host if target.scheme == "https" else None,
                        )
                        return connection
                    except OSError as error:
                        last = error
                raise UpstreamError(f"Could not connect ({type(last).__name__}).")
        except TimeoutError:
            raise UpstreamTimeout("The provider did not accept the connection in time.") from None
        except (OSError, UnicodeError) as error:
            raise UpstreamError(f"Could not connect ({type(error).__name__}).") from None

    async def request(
        self,
        method: str,
        target: Target,
        path_and_query: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> Response:
        """Send one request (never twice) and wait for the answer's head."""
        key = (target.scheme, target.host, target.port)
        connection = self._idle_connection(key) or await self._connect(target)
        lines = [
            method.encode("ascii"),
            b" ",
            path_and_query,
            b" HTTP/1.1\r\nHost: ",
            target.host_header,
            b"\r\n",
        ]
        for name, value in headers:
            lines += [name, b": ", value, b"\r\n"]
        if body or method in ("POST", "PUT", "PATCH"):
            lines += [b"Content-Length: ", str(len(body)).encode("ascii"), b"\r\n"]
        lines.append(b"\r\n")
        assert connection.transport is not None
        try:
            connection.transport.write(b"".join(lines) + body if body else b"".join(lines))
            while not connection.headers_done:
                if connection.error is not None:
                    raise connection.error
                if connection.closed:
                    raise UpstreamError("The provider closed the connection.")
                await connection.wait()
        except BaseException:
            connection.close()
            raise
        return Response(self, connection, head_only=method == "HEAD")

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
