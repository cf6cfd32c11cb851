"""The connection pools: one pooled `httpx.Client` per process and URL guard, whose
connections go through the SSRF guard's network backend and keep the call's deadline at every
socket operation; and the factory of a guarded `httpx.AsyncClient`.
"""

from __future__ import annotations

import threading
import time
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

from provider import policy
from provider.urlguard import AsyncGuardedTransport, GuardedBackend, GuardedTransport, URLGuard

__all__ = ["CALL_DEADLINE", "guarded_async_client", "shared_http_client"]

# The monotonic time by which the call being made in this thread (or task) must be over;
# `_DeadlineStream` cuts every socket wait at it.
CALL_DEADLINE: ContextVar[float | None] = ContextVar("provider_call_deadline", default=None)


def _within_deadline(timeout: float | None, expired: type[Exception]) -> float | None:
    """`timeout` cut to what is left of the current call's deadline; `expired` raised when
    nothing is left."""
    deadline = CALL_DEADLINE.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise expired("The call's deadline has passed.")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the call's deadline.

    httpx's read timeout bounds each wait for data, and httpcore fixes it once per answer: a
    server sending a byte a second, or going quiet just before the deadline, would hold the
    call far past it. Here each socket operation is cut to the time left.
    """

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _within_deadline(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _within_deadline(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _within_deadline(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(GuardedBackend):
    """The SSRF guard's backend, with connections that keep the call's deadline."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = super().connect_tcp(
            host,
            port,
            timeout=_within_deadline(timeout, httpcore.ConnectTimeout),
            local_address=local_address,
            socket_options=socket_options,
        )
        return _DeadlineStream(stream)


_shared_clients: dict[URLGuard, httpx.Client] = {}
_shared_lock = threading.Lock()


def shared_http_client(guard: URLGuard | None = None) -> httpx.Client:
    """The process's one pooled client for `guard`, built on first use (thread-safe)."""
    guard = guard or URLGuard()
    client = _shared_clients.get(guard)
    if client is None:
        with _shared_lock:
            client = _shared_clients.get(guard)
            if client is None:
                client = httpx.Client(
                    transport=GuardedTransport(network_backend=_DeadlineBackend(guard)),
                    follow_redirects=False,
                    trust_env=False,
                    timeout=policy.DEFAULT_TIMEOUT,
                )
                _shared_clients[guard] = client
    return client


def guarded_async_client(guard: URLGuard | None = None) -> httpx.AsyncClient:
    """A pooled `httpx.AsyncClient` whose connections go through the guard (the caller keeps
    one per event loop and closes it)."""
    return httpx.AsyncClient(
        transport=AsyncGuardedTransport(guard=guard),
        follow_redirects=False,
        trust_env=False,
        timeout=policy.DEFAULT_TIMEOUT,
    )
