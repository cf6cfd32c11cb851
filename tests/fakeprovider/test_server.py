"""The fake provider itself: what it serves, what it records, how it is extended."""

import json
import subprocess
import sys
from datetime import date

import httpx
import pytest

from fakeprovider import (
    KEY_INVALID,
    KEY_OK,
    KEY_QUOTA,
    KEY_SLOW,
    KEYS,
    FakeProvider,
    Reply,
    build_router,
)


def get(fake, path, key=KEY_OK, **kwargs):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{fake.base_url}{path}", headers=headers, **kwargs)


def test_models_list_is_realistic(fake_upstream, pinned_clock):
    response = get(fake_upstream, "/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    ids = [model["id"] for model in body["data"]]
    assert ids[:2] == ["gpt-4o", "gpt-4o-mini"] and len(ids) == 12
    for model in body["data"]:
        assert model["object"] == "model"
        assert isinstance(model["created"], int) and model["owned_by"]
    shutdowns = {m["id"]: m["shutdown_date"] for m in body["data"] if "shutdown_date" in m}
    assert date.fromisoformat(shutdowns["gpt-3.5-turbo"]) < date.today()
    assert date.fromisoformat(shutdowns["gpt-4-0613"]) > date.today()


def test_every_answer_has_request_id_and_rate_limit_headers(fake_upstream):
    for response in (get(fake_upstream, "/models"), get(fake_upstream, "/nope", key=None)):
        assert response.headers["x-request-id"].startswith("req_")
        for name in ("limit", "remaining", "reset"):
            assert response.headers[f"x-ratelimit-{name}-requests"]
            assert response.headers[f"x-ratelimit-{name}-tokens"]


def test_unknown_model_and_unknown_route(fake_upstream):
    response = get(fake_upstream, "/models/gpt-99")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    response = get(fake_upstream, "/nowhere")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (GET /v1/nowhere)"


def test_missing_and_invalid_keys(fake_upstream):
    missing = get(fake_upstream, "/models", key=None)
    assert missing.status_code == 401 and missing.json()["error"]["code"] is None
    invalid = get(fake_upstream, "/models", key=KEY_INVALID)
    assert invalid.status_code == 401
    assert set(invalid.json()["error"]) == {"message", "type", "param", "code"}
    assert invalid.json()["error"]["code"] == "invalid_api_key"
    assert KEY_INVALID not in invalid.text
    assert get(fake_upstream, "/models", key="not-an-sk-key").status_code == 401


def test_requests_are_recorded(fake_upstream):
    httpx.post(
        f"{fake_upstream.base_url}/models?x=1",
        json={"a": 1},
        headers={"Authorization": f"Bearer {KEY_QUOTA}", "OpenAI-Beta": "assistants=v2"},
    )
    (request,) = fake_upstream.requests
    assert (request.method, request.path, request.query) == ("POST", "/v1/models", {"x": ["1"]})
    assert request.json == {"a": 1} and request.key == KEY_QUOTA
    assert request.headers["openai-beta"] == "assistants=v2"
    assert fake_upstream.requests_to("/v1/models", "post") == [request]


def test_queued_replies_then_normal_service(fake_upstream):
    fake_upstream.queue(Reply.json({"queued": True}, status=201), times=2)
    assert get(fake_upstream, "/models").json() == {"queued": True}
    assert get(fake_upstream, "/models").status_code == 201
    assert get(fake_upstream, "/models").json()["object"] == "list"
    assert get(fake_upstream, "/models", key=KEY_INVALID).status_code == 401


# The slow key's delay itself: tests/fakeprovider/test_clock.py (it waits on the fake's clock).


def test_a_slow_request_left_behind_takes_no_reply_queued_after_a_reset(fake_upstream, fake_clock):
    # A client that gave up on the slow key leaves the fake still answering it; the next
    # test's queued replies must be left for the next test.
    with pytest.raises(httpx.ReadTimeout):
        get(fake_upstream, "/models", key=KEY_SLOW, timeout=httpx.Timeout(2.0, read=0.05))
    assert fake_clock.wait_for_sleepers(1)
    fake_upstream.reset()
    fake_upstream.queue(Reply.json({"queued": True}))
    fake_clock.advance(fake_upstream.slow_seconds)
    assert fake_upstream.wait_idle()  # the abandoned request has been answered meanwhile
    assert get(fake_upstream, "/models").json() == {"queued": True}


def test_reset_restores_state(fake_upstream):
    fake_upstream.state["models"].pop("gpt-4o")
    fake_upstream.slow_seconds = 9
    get(fake_upstream, "/models")
    fake_upstream.reset()
    assert "gpt-4o" in fake_upstream.state["models"]
    assert fake_upstream.requests == [] and fake_upstream.slow_seconds == 2.0


def test_routes_and_state_can_be_added():
    router = build_router()
    router.state("things", dict)

    @router.route("POST", r"/v1/things")
    def create(fake, request, match):
        thing = {"id": f"thing_{len(fake.state['things']) + 1}", **request.json}
        fake.state["things"][thing["id"]] = thing
        return Reply.json(thing)

    @router.route("GET", r"/v1/things/(?P<thing_id>[^/]+)")
    def retrieve(fake, request, match):
        return Reply.json(fake.state["things"][match["thing_id"]])

    fake = FakeProvider(router=router)
    fake.start()
    try:
        headers = {"Authorization": f"Bearer {KEY_OK}"}
        created = httpx.post(f"{fake.base_url}/things", json={"n": 1}, headers=headers).json()
        assert created == {"id": "thing_1", "n": 1}
        assert httpx.get(f"{fake.base_url}/things/thing_1", headers=headers).json() == created
        assert httpx.get(f"{fake.base_url}/models", headers=headers).json()["data"]
    finally:
        fake.stop()


def test_routes_added_to_one_router_stay_out_of_another(fake_upstream):
    router = build_router()
    router.add("GET", r"/v1/things", lambda fake, request, match: Reply.json({}))
    response = get(fake_upstream, "/things")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (GET /v1/things)"


def test_runs_alone_from_the_command_line(tmp_path):
    # From another folder: `make demo` runs it from an install, not only from the checkout.
    process = subprocess.Popen(
        [sys.executable, "-m", "fakeprovider", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        first = process.stdout.readline()
        assert first.startswith("Fake provider at http://127.0.0.1:")
        base_url = first.split(" at ")[1].strip()
        keys = [process.stdout.readline() for _ in KEYS]
        assert any(KEY_OK in line for line in keys)
        response = httpx.get(f"{base_url}/models", headers={"Authorization": f"Bearer {KEY_OK}"})
        assert json.loads(response.text)["data"]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH"])
def test_other_methods_reach_the_router(fake_upstream, method):
    response = httpx.request(
        method, f"{fake_upstream.base_url}/x", headers={"Authorization": f"Bearer {KEY_OK}"}
    )
    assert response.status_code == 404
