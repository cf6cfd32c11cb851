"""Prism, serving the provider's OpenAPI spec as a mock that checks every request.

`prism` (the cut official spec, openapi-tablero.yaml) and `prism_errors` (the same plus
declared error answers and a required OpenAI-Beta header, openapi-tablero-errors.yaml) are
started once per session, on first use, on a free loopback port. Each test gets a view with
`base_url`, `endpoint(key)` and `rejections()`: the lines of Prism's log since the test began
that say a request broke the spec (422 UNPROCESSABLE_ENTITY and friends). The fixtures also
allow 127.0.0.1 as an upstream host for the test.

Without `npx`, or when Prism does not start, the tests are skipped with the reason; with
TABLERO_REQUIRE_CONTRACT=1 (CI) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fakeprovider import KEY_OK
from provider.endpoint import Endpoint

PRISM_PACKAGE = "@stoplight/prism-cli@5.14.2"
SPEC_DIR = Path(__file__).resolve().parent
START_TIMEOUT = float(os.environ.get("TABLERO_PRISM_START_TIMEOUT", "60"))
REJECTION_MARKERS = (
    "UNPROCESSABLE_ENTITY",
    "Request terminated with error",
    "Request did not pass the validation rules",
    "[VALIDATOR] ✖",
)


def _unavailable(reason: str) -> None:
    if os.environ.get("TABLERO_REQUIRE_CONTRACT") == "1":
        pytest.fail(f"Contract tests are required (TABLERO_REQUIRE_CONTRACT=1): {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrismServer:
    """One Prism process serving one spec; its output goes to a log file."""

    def __init__(self, spec: str) -> None:
        self.spec = SPEC_DIR / spec
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in stop())
            prefix="prism-", suffix=".log", delete=False
        )
        self.log_path = Path(self._log.name)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        npx = shutil.which("npx")
        if npx is None:
            _unavailable("npx is not installed (Node.js is needed to run Prism).")
        command = [npx, "--yes", PRISM_PACKAGE, "mock", "-h", "127.0.0.1"]
        command += ["-p", str(self.port), str(self.spec)]
        self._process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"},
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = self.output()[-2000:]
                self.stop()
                _unavailable(f"Prism exited with {self._process.returncode}: {tail}")
            try:
                httpx.get(
                    f"{self.base_url}/models",
                    headers={"Authorization": "Bearer sk-ready-check"},
                    timeout=1.0,
                    trust_env=False,
                )
            except httpx.HTTPError:
                time.sleep(0.5)
            else:
                return
        tail = self.output()[-2000:]
        self.stop()
        _unavailable(f"Prism did not answer within {START_TIMEOUT:.0f} s: {tail}")

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # The process group is ours alone (start_new_session): npx, npm and node.
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._log.close()


class Prism:
    """What a test sees: the server's base URL and the rejections since the test began."""

    def __init__(self, server: PrismServer) -> None:
        self.server = server
        self.base_url = server.base_url
        self._offset = len(server.output())

    def endpoint(self, key: str = KEY_OK, **kwargs: str) -> Endpoint:
        return Endpoint(self.base_url, key, **kwargs)

    def log(self, *, quiet_for: float = 0.2, at_most: float = 5.0) -> str:
        """The log since the test began, once Prism has stopped writing for `quiet_for` s.

        Prism logs a rejection after it has answered, so a test that reads at once may be
        ahead of it.
        """
        deadline = time.monotonic() + at_most
        size = self.server.log_path.stat().st_size
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < quiet_for:
            time.sleep(0.05)
            current = self.server.log_path.stat().st_size
            if current != size:
                size, quiet_since = current, time.monotonic()
        return self.server.output()[self._offset :]

    def rejections(self) -> list[str]:
        return [
            line.strip()
            for line in self.log().splitlines()
            if any(marker in line for marker in REJECTION_MARKERS)
        ]


def _server(spec: str) -> Iterator[PrismServer]:
    server = PrismServer(spec)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server.log_path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def prism_server() -> Iterator[PrismServer]:
    yield from _server("openapi-tablero.yaml")


@pytest.fixture(scope="session")
def prism_errors_server() -> Iterator[PrismServer]:
    yield from _server("openapi-tablero-errors.yaml")


@pytest.fixture
def prism(prism_server, settings) -> Prism:
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = ["127.0.0.1"]
    return Prism(prism_server)


@pytest.fixture
def prism_errors(prism_errors_server, settings) -> Prism:
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = ["127.0.0.1"]
    return Prism(prism_errors_server)
