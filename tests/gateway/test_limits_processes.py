"""The race the limits exist for: a budget of 1,000 tokens, 50 SDK calls at once, half of them
through each of two gateway processes (uvicorn, as `make run` starts it) sharing Redis: the
spend stops within one request's reservation of the budget.

The processes share a SQLite database file and Redis database 8 (tests/gateway/
test_proxy_processes.py explains the set-up); skipped when no Redis answers. The fake
provider's usage is deterministic (prompt: the message's words + 3; completion: the words of
"Hello from the fake provider. You said: …"): 23 + 27 = 50 tokens a call here."""

import os
import sqlite3
import threading

import openai
import pytest

from gateway.limits import RedisCounters
from tests.gateway.test_proxy_processes import (
    _manage,
    _redis_answers,
    _serve,
    _stop,
    _wait_up,
)
from tests.gateway.test_proxy_processes import env as _shared_env  # noqa: F401

REDIS_URL = os.environ.get("TABLERO_TEST_LIMITS_REDIS_URL", "redis://127.0.0.1:6379/8")
BUDGET = 1000
CALLERS = 50
MAX_TOKENS = 40
WORDS = " ".join(f"word{n}" for n in range(20))
CALL_TOKENS = (20 + 3) + (7 + 20)

MAKE_TOKEN = f"""
import os
from accounts.models import Membership, Role, Team, User
from connections.models import Connection
from gateway.models import LimitTarget, UsageLimit
from gateway.scopes import Scope
from gateway.services import token_create

team = Team.objects.create(name="Acme")
user = User.objects.create_user(email="one@example.com", password="correct-horse-battery-42")
Membership.objects.create(team=team, user=user, role=Role.MEMBER)
connection = Connection(team=team, name="Fake", base_url=os.environ["FAKE_BASE_URL"])
connection.set_api_key(os.environ["FAKE_KEY"])
connection.full_clean()
connection.save()
token, value = token_create(team=team, connection=connection, name="s", created_by=user,
                            owner=user, scopes=list(Scope))
UsageLimit.objects.create(team=team, target=LimitTarget.TOKEN, token=token,
                          monthly_token_budget={BUDGET})
print("TOKEN", value)
"""


@pytest.fixture
def env(_shared_env):  # noqa: F811
    if not _redis_answers():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379 (CI starts one)")
    counters = RedisCounters(REDIS_URL)
    counters.clear()
    yield {**_shared_env, "CACHE_URL": REDIS_URL}
    counters.clear()


def test_fifty_calls_across_two_processes_stop_within_one_reservation(tmp_path, env, fake_upstream):
    _manage("migrate", "--noinput", env=env)
    made = _manage("shell", "-c", MAKE_TOKEN, env=env)
    (token,) = (line.split()[1] for line in made.splitlines() if line.startswith("TOKEN"))
    servers = [_serve(env, tmp_path / f"server{n}.log") for n in (1, 2)]
    passed = {url: 0 for _process, url in servers}
    stopped = {url: 0 for _process, url in servers}
    failures: list[BaseException] = []
    start = threading.Barrier(CALLERS)
    lock = threading.Lock()

    def caller(url: str) -> None:
        client = openai.OpenAI(api_key=token, base_url=f"{url}/v1", max_retries=0)
        try:
            start.wait()
            while True:
                client.chat.completions.create(
                    model="gpt-4o",
                    messages=[{"role": "user", "content": WORDS}],
                    max_tokens=MAX_TOKENS,
                )
                with lock:
                    passed[url] += 1
        except openai.RateLimitError as error:
            if error.code != "insufficient_quota":
                failures.append(error)
            with lock:
                stopped[url] += 1
        except BaseException as error:  # reported below, with the test's own assertion
            failures.append(error)
        finally:
            client.close()

    try:
        for (process, url), n in zip(servers, (1, 2), strict=True):
            _wait_up(process, url, tmp_path / f"server{n}.log")
        threads = [
            threading.Thread(target=caller, args=(servers[i % 2][1],)) for i in range(CALLERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        for process, _url in servers:
            _stop(process)  # writes every call it still holds

    assert failures == []
    # Each process answered half the callers; whichever let a call through, each refused
    # with the budget the other's calls had spent too (per process counters would have let
    # about twice the budget through).
    assert list(stopped.values()) == [CALLERS // 2, CALLERS // 2]
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        (spent, answered) = db.execute(
            "SELECT SUM(input_tokens + output_tokens), COUNT(*) FROM gateway_gatewaycall "
            "WHERE status = 200"
        ).fetchone()
        (refused,) = db.execute(
            "SELECT COUNT(*) FROM gateway_gatewaycall WHERE status = 429 AND refused"
        ).fetchone()
    assert answered == sum(passed.values())
    assert spent == answered * CALL_TOKENS
    assert refused == CALLERS  # each caller stopped at its first refusal
    sent = fake_upstream.requests_to("/v1/chat/completions", "POST")
    assert len(sent) == answered
    reservation = MAX_TOKENS + max(len(request.body) for request in sent) // 4
    assert BUDGET - reservation < spent <= BUDGET + reservation
