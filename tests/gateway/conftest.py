"""The gateway served as in production: the whole ASGI application (`config.asgi`) on a live
uvicorn server in a thread of the test process, with the fake provider behind it.

The server thread, the gateway's worker threads and its recorder read the test database, so
every test here runs with a transactional database (what the test writes is committed).

Fixtures (the server itself, `_live_gateway`, is in tests/conftest.py: one per session, shared
with the contract tests, since the ASGI application and its call recorder are one per process):
- `gateway`: the live server; `gateway.url` is its `/v1` base URL.
- `gateway_connection`: the team's connection to the fake provider, with the canary key.
- `make_token(**fields)`: a token's full value (`gateway.services.token_create`), by default
  the member's, with every scope.
- `sdk(token)`: an `openai.OpenAI` client on the gateway, without retries.
- `written()`: the calls recorded so far, once written (`gateway.recorder`).
"""

import asyncio
import logging
import socket
import threading
import time
from pathlib import Path

import pytest

from gateway import grants, recorder
from gateway.scopes import Scope
from tests.connections.helpers import CANARY_KEY, make_connection

GATEWAY_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if GATEWAY_DIR in Path(str(item.path)).parents and (
            item.get_closest_marker("django_db") is None
        ):
            item.add_marker(pytest.mark.django_db(transaction=True))


class LiveGateway:
    """uvicorn serving `config.asgi.application` on a free loopback port, in a thread."""

    def __init__(self) -> None:
        import uvicorn

        from config.asgi import application

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        config = uvicorn.Config(
            application, lifespan="on", log_level="warning", access_log=False, loop="asyncio"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="live-gateway", daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.socket]))

    def start(self) -> "LiveGateway":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("The live gateway did not start.")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.socket.close()


def settle(timeout: float = 10.0) -> None:
    """Wait until the live gateway answers nothing, then write the calls it recorded."""
    from config.asgi import gateway

    deadline = time.monotonic() + timeout
    while gateway.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    recorder.wait_written()


@pytest.fixture
def gateway(_live_gateway, fake_upstream, transactional_db):
    from config.asgi import gateway as app

    grants.clear_local()
    app.forget_local()
    yield _live_gateway
    settle()
    grants.clear_local()
    app.forget_local()


@pytest.fixture
def gateway_connection(team, owner, fake_upstream):
    return make_connection(
        team, name="Fake", key=CANARY_KEY, base_url=fake_upstream.base_url, created_by=owner
    )


@pytest.fixture
def make_token(team, member, gateway_connection):
    from gateway.services import token_create

    def make(**fields) -> str:
        options = {
            "team": team,
            "connection": gateway_connection,
            "name": "script",
            "created_by": member,
            "owner": member,
            "scopes": list(Scope),
        }
        options.update(fields)
        return token_create(**options)[1]

    return make


@pytest.fixture
def sdk(gateway):
    import openai

    clients = []

    def make(token: str, **options) -> openai.OpenAI:
        client = openai.OpenAI(api_key=token, base_url=gateway.url, max_retries=0, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def written():
    from gateway.models import GatewayCall

    def read() -> list[GatewayCall]:
        settle()
        return list(GatewayCall.objects.order_by("created_at", "id"))

    return read


@pytest.fixture
def all_logs(caplog):
    """Every log record of the test, at every level, from every logger."""
    caplog.set_level(logging.DEBUG)
    return caplog
