"""A consumer killed (SIGKILL) in the middle of a push leaves no orphan and no duplicate at the
provider (issue 11, items 5 and 7).

A real consumer (`manage.py run_huey`, a process of its own, on its own SQLite database and
queue file, as in tests/test_consumer_process.py) starts a run whose assistant is not at the
provider yet: it creates the assistant there, and the fake provider carries the create out but
holds its answer (`lose_created_assistants = ["slow"]`, on a clock that only the test moves).
The consumer is killed while it waits. A task a killed consumer had taken is gone from the
queue, so the start is queued again (as the run's page or an operator would) and a new
consumer takes it: the provider ends with one assistant (the one the killed consumer created,
found again by its tag) and one run, and Tablero with one assistant row that names it.
"""

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests import test_consumer_process as process

WAIT_SECONDS = process.WAIT_SECONDS
_manage = process._manage
# The consumer's own database and queue, as tests/test_consumer_process.py sets them up.
consumer_env = process.consumer_env
storage = process.storage

RECORD_A_RUN = """
import os
from accounts.models import Membership, Role, Team, User
from assistants import tasks
from assistants.models import Assistant
from assistants.services.runs import run_create
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
run, claim = run_create(assistant=assistant, user=user, message="Hi")
tasks.run_begin_queue(run=run, user=user, claim=claim)
print("BEGIN", str(run.pk), str(user.pk), claim.isoformat() if claim else "")
"""

QUEUE_AGAIN = """
import os
from assistants import tasks
tasks.run_begin_task(os.environ["RUN_ID"], os.environ["USER_ID"], os.environ["CLAIM"])
"""


def _consumer(tmp_path: Path, env: dict[str, str], name: str) -> subprocess.Popen:
    log = (tmp_path / f"{name}.log").open("w")
    try:
        return subprocess.Popen(
            [sys.executable, "manage.py", "run_huey", "--workers", "2"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    except OSError as error:
        pytest.skip(f"cannot start the consumer in a process of its own: {error}")


def _rows(database: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
        return db.execute(sql, params).fetchall()


def _wait(condition, *, what: str, log: Path) -> None:
    until = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < until, f"{what}:\n{log.read_text()[-3000:]}"
        time.sleep(0.25)


def _creates(fake) -> list:
    return [r for r in fake.requests if r.method == "POST" and r.path == "/v1/assistants"]


@pytest.mark.parametrize("storage", ["sqlite"], indirect=True)
def test_a_consumer_killed_mid_push_leaves_no_orphan_and_no_duplicate(
    tmp_path, consumer_env, fake_upstream, fake_clock
):
    fake_upstream.lose_created_assistants = ["slow"]
    fake_upstream.slow_seconds = 3600  # of the fake's clock, which only this test moves
    database = tmp_path / "db.sqlite3"
    _manage("migrate", "--noinput", env=consumer_env)
    recorded = _manage("shell", "-c", RECORD_A_RUN, env=consumer_env)
    run_id, user_id, claim = recorded.split("BEGIN ", 1)[1].split("\n")[0].split(" ")

    first = _consumer(tmp_path, consumer_env, "first")
    try:
        _wait(lambda: _creates(fake_upstream), what="no create", log=tmp_path / "first.log")
        # The fake has carried the create out and holds its answer on its clock.
        assert fake_clock.wait_for_sleepers(1)
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert len(fake_upstream.state["assistants"]) == 1  # carried out, answer never read

    again = {**consumer_env, "RUN_ID": run_id, "USER_ID": user_id, "CLAIM": claim}
    _manage("shell", "-c", QUEUE_AGAIN, env=again)
    second = _consumer(tmp_path, consumer_env, "second")
    run_hex = run_id.replace("-", "")
    try:
        _wait(
            lambda: _rows(
                database,
                "SELECT 1 FROM assistants_run WHERE id = ? AND (remote_run_id != '' OR "
                "response_id != '' OR status = 'failed')",
                run_hex,
            ),
            what="the run never started",
            log=tmp_path / "second.log",
        )
    finally:
        second.send_signal(signal.SIGINT)
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait()

    remote = list(fake_upstream.state["assistants"])
    assert len(remote) == 1, f"duplicate assistants at the provider: {remote}"
    local = _rows(database, "SELECT remote_id, sync_state FROM assistants_assistant")
    assert local == [(remote[0], "synced")], local
    started = len(fake_upstream.state["runs"]) + len(fake_upstream.state["responses"])
    assert started == 1
    status = _rows(database, "SELECT status FROM assistants_run WHERE id = ?", run_hex)
    assert status[0][0] != "failed", (tmp_path / "second.log").read_text()[-3000:]
