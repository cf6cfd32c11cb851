"""Two gateway processes (uvicorn, as `make run` starts it) sharing a database and Redis: a
token revoked, or a member removed, in a third process is refused by both within a second.

The servers cannot share the test database (SQLite's is in memory), so they get a database
file of their own, prepared with `migrate`; a `manage.py shell` process makes and revokes
the tokens there. The cache is Redis (database 7); skipped when no Redis answers.
"""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from fakeprovider import KEY_OK
from gateway.grants import CHECK_SECONDS

REDIS_URL = "redis://127.0.0.1:6379/7"
START_SECONDS = 60

MAKE_TOKENS = """
import os
from accounts.models import Membership, Role, Team, User
from connections.models import Connection
from gateway.scopes import Scope
from gateway.services import token_create

team = Team.objects.create(name="Acme")
users = []
for email in ("one@example.com", "two@example.com"):
    user = User.objects.create_user(email=email, password="correct-horse-battery-42")
    Membership.objects.create(team=team, user=user, role=Role.MEMBER)
    users.append(user)
connection = Connection(team=team, name="Fake", base_url=os.environ["FAKE_BASE_URL"])
connection.set_api_key(os.environ["FAKE_KEY"])
connection.full_clean()
connection.save()
for user in users:
    token = token_create(team=team, connection=connection, name="s", created_by=user,
                         owner=user, scopes=list(Scope))[1]
    print("TOKEN", token)
"""

REVOKE_FIRST = """
from gateway.models import ApiToken
from gateway.services import token_revoke
token = ApiToken.objects.get(owner__email="one@example.com")
token_revoke(token=token, actor=None)
"""

REMOVE_SECOND_MEMBER = """
from accounts.models import Membership
Membership.objects.get(user__email="two@example.com").delete()
"""


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture
def env(tmp_path, fake_upstream) -> dict[str, str]:
    if not _redis_answers():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379 (CI starts one)")
    environment = {
        **os.environ,  # the test settings' secrets (tests/testenv.py)
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CACHE_URL": REDIS_URL,
        "TABLERO_ALLOWED_UPSTREAM_HOSTS": "127.0.0.1",
        "FAKE_BASE_URL": fake_upstream.base_url,
        "FAKE_KEY": KEY_OK,
        "PYTHONUNBUFFERED": "1",
    }
    environment.pop("TASK_QUEUE_URL", None)
    return environment


def _serve(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--lifespan",
            "on",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


def _wait_up(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            httpx.get(f"{url}/v1/models", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"the server did not start:\n{log.read_text()[-3000:]}")


def _status(url: str, token: str) -> int:
    return httpx.get(
        f"{url}/v1/models", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).status_code


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)  # a clean shutdown: the ASGI lifespan runs
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_revocation_reaches_every_process_within_a_second(tmp_path, env):
    _manage("migrate", "--noinput", env=env)
    made = _manage("shell", "-c", MAKE_TOKENS, env=env)
    first, second = (line.split()[1] for line in made.splitlines() if line.startswith("TOKEN"))
    servers = [_serve(env, tmp_path / f"server{n}.log") for n in (1, 2)]
    try:
        for (process, url), n in zip(servers, (1, 2), strict=True):
            _wait_up(process, url, tmp_path / f"server{n}.log")
        (_, url_a), (_, url_b) = servers
        # Both processes now hold both grants.
        assert [_status(url, token) for url in (url_a, url_b) for token in (first, second)] == [
            200
        ] * 4

        _manage("shell", "-c", REVOKE_FIRST, env=env)
        time.sleep(CHECK_SECONDS)
        assert [_status(url_a, first), _status(url_b, first)] == [401, 401]

        _manage("shell", "-c", REMOVE_SECOND_MEMBER, env=env)
        time.sleep(CHECK_SECONDS)
        assert [_status(url_b, second), _status(url_a, second)] == [401, 401]
    finally:
        for process, _url in servers:
            _stop(process)
    # Every call that reached the provider was recorded, the last ones at shutdown.
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        (recorded,) = db.execute("SELECT COUNT(*) FROM gateway_gatewaycall").fetchone()
    assert recorded == 4
