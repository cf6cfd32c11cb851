"""A real task consumer (`manage.py run_huey` in a process of its own) follows a run to its
end with nobody on its page, and reports its heartbeat: on the default SQLite storage, and on
Redis when one answers on 127.0.0.1:6379 (CI starts one).

The consumer cannot share the test database (SQLite's is in memory), so it gets a database
file of its own in a temporary folder, prepared with `migrate`; the queue's SQLite file lands
beside it, as it does for `make run`. A second process (`manage.py shell`) starts the run there,
against the fake provider that this test process serves on loopback; then nothing but the
consumer touches it.
"""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from huey import Huey, RedisHuey, SqliteHuey

from fakeprovider import KEY_OK
from lib.taskqueue import HEARTBEAT_KEY

# Generous: the machine may be busy. The run itself takes a few seconds at the fake.
WAIT_SECONDS = 90
REDIS_URL = "redis://127.0.0.1:6379/0"

START_A_RUN = """
import os
from accounts.models import Membership, Role, Team, User
from assistants import services
from assistants.models import Assistant
from connections.models import Connection

team = Team.objects.create(name="Acme")
user = User.objects.create_user(email="owner@example.com", password="correct-horse-battery-42")
Membership.objects.create(team=team, user=user, role=Role.OWNER)
connection = Connection(team=team, name="Fake", base_url=os.environ["FAKE_BASE_URL"])
connection.set_api_key(os.environ["FAKE_KEY"])
connection.full_clean()
connection.save()
assistant = Assistant(
    team=team, connection=connection, name="Tutor", model="gpt-4o", sync_state="pending"
)
assistant.full_clean()
assistant.save()
run = services.run_start(assistant=assistant, user=user, message="Hi").value
print("RUN", run.pk.hex, run.status)
"""


def _manage(*args: str, env: dict[str, str], timeout: float = 120) -> str:
    try:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except OSError as error:  # no way to start a process here
        pytest.skip(f"cannot start manage.py in a process of its own: {error}")
    assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stderr[-3000:]}"
    return done.stdout


def _run_row(database: Path, run_hex: str) -> tuple[str, str] | None:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
        return db.execute(
            "SELECT status, output_text FROM assistants_run WHERE id = ?", (run_hex,)
        ).fetchone()


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "redis"])
def storage(request, tmp_path) -> tuple[dict[str, str], Huey]:
    """The queue's settings for the consumer, and the same queue as seen from this test."""
    if request.param == "sqlite":
        # The default: nothing set, the file lands beside the database.
        yield {}, SqliteHuey("tablero", filename=str(tmp_path / "huey.sqlite3"))
        return
    if not _redis_answers():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379 (CI starts one)")
    name = f"tablero-test-{uuid.uuid4().hex[:12]}"  # apart from anyone else's queue
    queue = RedisHuey(name, url=REDIS_URL)
    yield {"TASK_QUEUE_URL": REDIS_URL, "TASK_QUEUE_NAME": name}, queue
    queue.storage.flush_all()


@pytest.fixture
def consumer_env(tmp_path, fake_upstream, storage) -> dict[str, str]:
    env = {
        **os.environ,  # the test settings' secrets (tests/testenv.py)
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "TASK_QUEUE_IMMEDIATE": "false",
        "TABLERO_ALLOWED_UPSTREAM_HOSTS": "127.0.0.1",
        "FAKE_BASE_URL": fake_upstream.base_url,
        "FAKE_KEY": KEY_OK,
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("TASK_QUEUE_URL", "TASK_QUEUE_NAME", "CACHE_URL"):
        env.pop(name, None)  # the defaults, unless the storage says otherwise
    return {**env, **storage[0]}


def test_a_consumer_process_follows_a_run_to_its_end(
    tmp_path, consumer_env, storage, fake_upstream
):
    fake_upstream.run_step_seconds = 1
    database = tmp_path / "db.sqlite3"
    _manage("migrate", "--noinput", env=consumer_env)
    started = _manage("shell", "-c", START_A_RUN, env=consumer_env)
    run_hex = started.split("RUN ", 1)[1].split()[0]
    assert _run_row(database, run_hex)[0] in ("queued", "in_progress")

    log = (tmp_path / "consumer.log").open("w")
    try:
        consumer = subprocess.Popen(
            [sys.executable, "manage.py", "run_huey", "--workers", "2"],
            cwd=settings.BASE_DIR,
            env=consumer_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    except OSError as error:
        pytest.skip(f"cannot start the consumer in a process of its own: {error}")
    try:
        waited_until = time.monotonic() + WAIT_SECONDS
        row = _run_row(database, run_hex)
        while row[0] in ("queued", "in_progress") and time.monotonic() < waited_until:
            assert consumer.poll() is None, (tmp_path / "consumer.log").read_text()[-3000:]
            time.sleep(0.5)
            row = _run_row(database, run_hex)

        assert row[0] == "completed", (tmp_path / "consumer.log").read_text()[-3000:]
        assert "You said: Hi" in row[1]
        # The consumer reports in the queue's storage, where the web processes read it.
        queue = storage[1]
        assert isinstance(queue.get(HEARTBEAT_KEY, peek=True), float)
    finally:
        consumer.send_signal(signal.SIGINT)  # lets running tasks finish
        try:
            consumer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            consumer.kill()
            consumer.wait()
        log.close()
    assert consumer.returncode == 0
    polls = [r for r in fake_upstream.requests if r.method == "GET" and "/runs/" in r.path]
    assert polls, "the consumer asked the provider about the run"
