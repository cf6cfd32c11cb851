"""Providers that misbehave below HTTP, on loopback: one that never answers, one that sends
its answer a byte at a time, one that hangs up. Standard library only.

    with SlowUpstream(silent) as upstream:
        ProviderClient(Endpoint(upstream.base_url, key), deadline=1).list_models()
    upstream.requests  # how many requests it read
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable

Behaviour = Callable[[socket.socket, threading.Event], None]


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accepts the request and never answers (the connection stays open)."""
    stop.wait()


def trickle(interval: float = 0.25) -> Behaviour:
    """Sends the status line and headers, then the body one byte every `interval` seconds:
    each read gets data well within any read timeout, but the answer never ends."""

    def behaviour(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        )
        while not stop.wait(interval):
            conn.sendall(b" ")

    return behaviour


def trickle_headers(interval: float = 0.25) -> Behaviour:
    """Sends even the status line one byte every `interval` seconds."""

    def behaviour(conn: socket.socket, stop: threading.Event) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"a" * 100000:
            if stop.wait(interval):
                return
            conn.sendall(bytes([byte]))

    return behaviour


def hang_up(conn: socket.socket, stop: threading.Event) -> None:
    """Closes the connection without a word ("Server disconnected")."""
    conn.close()


def reset(conn: socket.socket, stop: threading.Event) -> None:
    """Resets the connection (RST: "Connection reset by peer")."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class SlowUpstream:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> SlowUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.close()
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _address = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            with self._lock:
                self.requests += 1
            self.behaviour(conn, self._stop)
        except OSError:
            pass  # the client gave up and closed its end
