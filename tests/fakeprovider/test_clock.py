"""The fake provider's clock: timestamps and delays read it, and a test steps it."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

from fakeprovider import ADMIN_KEY_OK, KEY_OK, KEY_SLOW, ManualClock, SystemClock
from tests.conftest import PINNED_NOW

BETA = {"OpenAI-Beta": "assistants=v2"}


def call(fake, method, path, key=KEY_OK, **kwargs):
    headers = {"Authorization": f"Bearer {key}", **BETA}
    return httpx.request(method, f"{fake.base_url}{path}", headers=headers, **kwargs)


def test_manual_clock_moves_only_when_stepped():
    clock = ManualClock(PINNED_NOW)
    assert clock.now() == PINNED_NOW and clock.time() == PINNED_NOW.timestamp()
    clock.advance(90)
    assert clock.now() == datetime(2026, 11, 30, 12, 1, 30, tzinfo=UTC)
    clock.set(PINNED_NOW)
    assert clock.now() == PINNED_NOW
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_manual_clock_sleep_ends_when_the_clock_passes_its_end():
    clock = ManualClock(0)
    with ThreadPoolExecutor(1) as pool:
        slept = pool.submit(clock.sleep, 10)
        assert clock.wait_for_sleepers(1)
        clock.advance(9)
        assert clock.sleeping == 1 and not slept.done()
        clock.advance(1)
        slept.result(timeout=5)
    assert clock.sleeping == 0


def test_system_clock_is_the_wall_clock(pinned_clock):
    # Read at each call, so time_machine (the tests' pinned_clock) moves it too.
    assert abs(SystemClock().now() - PINNED_NOW).total_seconds() < 60


def test_timestamps_come_from_the_fake_clock(fake_upstream, fake_clock):
    created = call(
        fake_upstream, "POST", "/assistants", json={"model": "gpt-4o", "name": "A"}
    ).json()
    assert created["created_at"] == int(PINNED_NOW.timestamp())
    fake_clock.advance(3600)
    response = call(
        fake_upstream, "POST", "/responses", json={"model": "gpt-4o", "input": "Hi"}
    ).json()
    assert response["created_at"] == int(PINNED_NOW.timestamp()) + 3600


def test_a_run_moves_when_the_clock_is_stepped(fake_upstream, fake_clock):
    fake_upstream.run_step_seconds = 30
    assistant = call(fake_upstream, "POST", "/assistants", json={"model": "gpt-4o"}).json()
    body = {
        "assistant_id": assistant["id"],
        "thread": {"messages": [{"role": "user", "content": "Hi"}]},
    }
    run = call(fake_upstream, "POST", "/threads/runs", json=body).json()
    path = f"/threads/{run['thread_id']}/runs/{run['id']}"
    statuses = [run["status"]]
    for _ in range(2):
        fake_clock.advance(30)
        statuses.append(call(fake_upstream, "GET", path).json()["status"])
    assert statuses == ["queued", "in_progress", "completed"]
    completed = call(fake_upstream, "GET", path).json()
    assert completed["completed_at"] == int(PINNED_NOW.timestamp()) + 60


def test_a_background_response_moves_when_the_clock_is_stepped(fake_upstream, fake_clock):
    fake_upstream.run_step_seconds = 5
    body = {"model": "gpt-4o", "input": "Hi", "background": True}
    response = call(fake_upstream, "POST", "/responses", json=body).json()
    assert response["status"] == "queued"
    fake_clock.advance(10)
    done = call(fake_upstream, "GET", f"/responses/{response['id']}").json()
    assert done["status"] == "completed"
    assert done["completed_at"] == int(PINNED_NOW.timestamp()) + 10


def test_costs_end_today_on_the_fake_clock(fake_upstream, fake_clock):
    start = int(PINNED_NOW.timestamp()) - 3 * 86400
    page = call(
        fake_upstream, "GET", "/organization/costs", key=ADMIN_KEY_OK, params={"start_time": start}
    ).json()
    assert len(page["data"]) == 3
    fake_clock.advance(86400)
    page = call(
        fake_upstream, "GET", "/organization/costs", key=ADMIN_KEY_OK, params={"start_time": start}
    ).json()
    assert len(page["data"]) == 4


def test_the_slow_key_answers_once_the_clock_has_moved(fake_upstream, fake_clock):
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(call, fake_upstream, "GET", "/models", KEY_SLOW)
        assert fake_clock.wait_for_sleepers(1)
        fake_clock.advance(fake_upstream.slow_seconds - 0.5)
        assert fake_clock.sleeping == 1 and not answer.done()
        fake_clock.advance(0.5)
        assert answer.result(timeout=5).status_code == 200
