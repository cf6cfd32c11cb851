"""A gateway process on PostgreSQL with a pool of 2 connections serves many more gateway calls
than that through its threads (asyncio.to_thread's executor, the call recorder), and its pages
still get a connection at once afterwards: every thread hands its connection back to the pool
after each piece of work (lib/dbwork.py). Before, each kept its own, and the pages waited 30 s
and failed (PoolTimeout).

The server is uvicorn, as `make run` starts it, on the test database itself (the tests here
commit what they write); the page is the team home's row of the connection (a fragment, so no
collected static files are needed), signed in with a session made in the test. Only on
PostgreSQL: SQLite has no pool.
"""

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection

from gateway.models import GatewayCall
from tests.gateway.test_proxy_processes import _serve as serve
from tests.gateway.test_proxy_processes import _wait_up as wait_up

POOL_SIZE = 2
CALLS = 24  # each with a token of its own: each is read from the database, in a thread

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the pool is PostgreSQL's (DATABASE_URL)"
)


def _database_url() -> str:
    """The test database, as the server process reaches it."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )


def _serve(log: Path) -> tuple[subprocess.Popen, str]:
    env = {
        **os.environ,  # the test settings' secrets (tests/testenv.py), shared with the session
        "DATABASE_URL": _database_url(),
        "DATABASE_POOL_SIZE": str(POOL_SIZE),
        "TABLERO_ALLOWED_UPSTREAM_HOSTS": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("CACHE_URL", "TASK_QUEUE_URL"):
        env.pop(name, None)
    # The same uvicorn command, and the same wait for it, as the other process tests.
    process, url = serve(env, log)
    wait_up(process, url, log)
    return process, url


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)  # a clean shutdown: the recorder writes what it holds
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _call_all(url: str, tokens: list[str]) -> list[int]:
    async with httpx.AsyncClient(timeout=90) as client:
        answers = await asyncio.gather(
            *(
                client.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {token}"})
                for token in tokens
            )
        )
    return [answer.status_code for answer in answers]


def test_pages_get_a_connection_after_more_gateway_calls_than_the_pool_holds(
    tmp_path, team, member_client, gateway_connection, make_token
):
    tokens = [make_token(name=f"script {n}") for n in range(CALLS)]
    session = member_client.cookies[settings.SESSION_COOKIE_NAME].value
    log = tmp_path / "server.log"
    process, url = _serve(log)
    try:
        first = asyncio.run(_call_all(url, tokens))
        second = asyncio.run(_call_all(url, tokens[: CALLS // 2]))  # the grants, now known
        # The team home's row of the connection, as its page asks for it (htmx).
        page = httpx.get(
            f"{url}/teams/{team.pk}/home/connections/{gateway_connection.pk}/",
            headers={"HX-Request": "true"},
            cookies={settings.SESSION_COOKIE_NAME: session},
            timeout=90,
        )
    finally:
        _stop(process)

    assert first == [200] * CALLS and second == [200] * (CALLS // 2), log.read_text()[-3000:]
    assert page.status_code == 200, log.read_text()[-3000:]
    assert gateway_connection.name in page.text
    # Every call was recorded too (the recorder's thread shares the same pool).
    assert GatewayCall.objects.filter(team=team, status=200).count() == CALLS + CALLS // 2
    assert "PoolTimeout" not in log.read_text()
