"""The fake provider's answers against the provider's OpenAPI spec, so the fake cannot drift
from the real API: a sample of every part (models, assistants, runs in each state, responses,
costs) and its error bodies, each checked against the schema the spec declares for that
operation and status. The cut spec (tests/contract/openapi-tablero.yaml) and its errors
variant beside it are OpenAPI 3.1, whose schemas are JSON Schema 2020-12: `jsonschema` checks
them, with `referencing` resolving the spec's ``$ref``s. No Node or Prism needed."""

from functools import cache
from pathlib import Path

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from fakeprovider import (
    ADMIN_KEY_OK,
    KEY_INVALID,
    KEY_OK,
    KEY_OVERLOADED,
    KEY_QUOTA,
    KEY_RATE_LIMIT,
)

SPEC_DIR = Path(__file__).resolve().parent.parent / "contract"
NULL = {"type": "null"}
SPECS = {"ok": "openapi-tablero.yaml", "errors": "openapi-tablero-errors.yaml"}
STEP = 10


def _with_nullable(node):
    """OpenAPI 3.0's ``nullable: true``, which the spec still writes on some typed fields (the
    run's timestamps, say), as JSON Schema says it: the type or null."""
    if isinstance(node, list):
        return [_with_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _with_nullable(value) for key, value in node.items()}
    if node.pop("nullable", False) is True:
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        else:
            node = {"anyOf": [node, NULL]}
    return node


def _with_known_gaps(document: dict) -> dict:
    """Where the spec is narrower than the API's real answers, widened here on purpose (each
    gap says why); everything else is checked as the spec has it."""
    schemas = document["components"]["schemas"]
    # A background response that is still queued or in progress has "usage": null (the API's
    # own background-mode example shows it); the spec types usage as ResponseUsage only.
    for part in schemas["Response"]["allOf"]:
        usage = part.get("properties", {}).get("usage")
        if usage is not None:
            part["properties"]["usage"] = {"anyOf": [usage, NULL]}
    return document


@cache
def _spec(name: str) -> tuple[dict, Registry]:
    with (SPEC_DIR / SPECS[name]).open() as file:
        document = _with_known_gaps(_with_nullable(yaml.safe_load(file)))
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    return document, Registry().with_resource(f"urn:{name}", resource)


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def check(answer: httpx.Response, path: str, method: str = "get", spec: str = "ok") -> dict:
    """`answer`'s JSON body, after checking it against the schema `spec` declares for
    `method` `path` (a path template, as the spec writes it) and the answer's status."""
    document, _registry = _spec(spec)
    status = str(answer.status_code)
    declared = document["paths"][path][method]["responses"]
    assert status in declared, f"{method.upper()} {path} declares no {status} answer"
    where = ["paths", path, method, "responses", status]
    if "$ref" in declared[status]:  # '#/components/responses/TooManyRequests'
        where = declared[status]["$ref"].removeprefix("#/").split("/")
    return check_schema(answer, _pointer(*where, "content", "application/json", "schema"), spec)


def check_schema(answer: httpx.Response, pointer: str, spec: str = "ok") -> dict:
    """`answer`'s JSON body, after checking it against the schema at `pointer` in `spec`."""
    _document, registry = _spec(spec)
    schema = {"$ref": f"urn:{spec}#/{pointer}"}
    body = answer.json()
    errors = sorted(
        Draft202012Validator(schema, registry=registry).iter_errors(body), key=lambda e: e.path
    )
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    return body


@pytest.fixture
def api(fake_upstream, fake_clock):
    fake_upstream.run_step_seconds = STEP

    def call(
        method: str, path: str, key: str | None = KEY_OK, headers=None, **kwargs
    ) -> httpx.Response:
        headers = {"OpenAI-Beta": "assistants=v2", **(headers or {})}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return httpx.request(method, f"{fake_upstream.base_url}{path}", headers=headers, **kwargs)

    return call


def test_models(api):
    body = check(api("GET", "/models"), "/v1/models")
    assert len(body["data"]) == 12
    check(api("GET", "/models/gpt-4o"), "/v1/models/{model}")
    retired = check(api("GET", "/models/gpt-3.5-turbo"), "/v1/models/{model}")
    assert retired["shutdown_date"]


def test_assistants(api):
    data = {
        "model": "gpt-4o",
        "name": "Helper",
        "instructions": "Be brief.",
        "tools": [{"type": "code_interpreter"}, {"type": "function", "function": {"name": "f"}}],
        "metadata": {"tablero": "1"},
    }
    created = check(api("POST", "/assistants", json=data), "/v1/assistants", "post")
    path = f"/assistants/{created['id']}"
    check(api("GET", path), "/v1/assistants/{assistant_id}")
    check(api("POST", path, json={"name": "Renamed"}), "/v1/assistants/{assistant_id}", "post")
    check(api("GET", "/assistants", params={"limit": 1}), "/v1/assistants")
    check(api("DELETE", path), "/v1/assistants/{assistant_id}", "delete")


def _start_run(api, message: str) -> tuple[dict, str]:
    assistant = api("POST", "/assistants", json={"model": "gpt-4o"}).json()
    data = {
        "assistant_id": assistant["id"],
        "thread": {"messages": [{"role": "user", "content": message}]},
    }
    run = check(api("POST", "/threads/runs", json=data), "/v1/threads/runs", "post")
    return run, f"/threads/{run['thread_id']}/runs/{run['id']}"


@pytest.mark.parametrize(
    ("message", "ending"),
    [
        ("Hi", "completed"),
        ("Hi [fail]", "failed"),
        ("Hi [expire]", "expired"),
        ("Hi [incomplete]", "incomplete"),
    ],
)
def test_a_run_in_every_state(api, fake_clock, message, ending):
    run, path = _start_run(api, message)
    statuses = [run["status"]]
    for _ in range(2):
        fake_clock.advance(STEP)
        statuses.append(check(api("GET", path), "/v1/threads/{thread_id}/runs/{run_id}")["status"])
    assert statuses == ["queued", "in_progress", ending]
    messages = api("GET", f"/threads/{run['thread_id']}/messages")
    check(messages, "/v1/threads/{thread_id}/messages")


def test_a_conversation_on_a_thread(api, fake_clock):
    """A later run on the thread (its message added with it), refused while one is active."""
    run, _path = _start_run(api, "What is 2 + 2?")
    thread = run["thread_id"]
    follow_up = {
        "assistant_id": run["assistant_id"],
        "additional_messages": [{"role": "user", "content": "And times 3?"}],
    }
    busy = api("POST", f"/threads/{thread}/runs", json=follow_up)
    assert busy.status_code == 400 and "already has an active run" in busy.text
    fake_clock.advance(2 * STEP)

    second = check(
        api("POST", f"/threads/{thread}/runs", json=follow_up),
        "/v1/threads/{thread_id}/runs",
        "post",
    )
    fake_clock.advance(2 * STEP)
    ended = check(
        api("GET", f"/threads/{thread}/runs/{second['id']}"),
        "/v1/threads/{thread_id}/runs/{run_id}",
    )
    messages = check(
        api("GET", f"/threads/{thread}/messages", params={"order": "asc"}),
        "/v1/threads/{thread_id}/messages",
    )

    assert ended["status"] == "completed" and second["thread_id"] == thread
    texts = [m["content"][0]["text"]["value"] for m in messages["data"]]
    assert texts == [
        "What is 2 + 2?",
        "Hello from the fake provider. You said: What is 2 + 2?",
        "And times 3?",
        "Hello from the fake provider. You said: And times 3? "
        "(Before that you said: What is 2 + 2?)",
    ]
    missing = api("POST", "/threads/thread_nope/runs", json=follow_up)
    assert missing.status_code == 404


def test_a_response_follows_another(api, fake_clock):
    first = api("POST", "/responses", json={"model": "gpt-4o", "input": "Hi"}).json()
    data = {"model": "gpt-4o", "input": "Again", "previous_response_id": first["id"]}

    second = check(api("POST", "/responses", json=data), "/v1/responses", "post")
    missing = api("POST", "/responses", json={**data, "previous_response_id": "resp_nope"})

    assert second["previous_response_id"] == first["id"]
    assert second["output"][0]["content"][0]["text"].endswith("(Before that you said: Hi)")
    assert missing.status_code == 404 and "previous_response_id" in missing.text


def test_a_cancelled_run(api, fake_clock):
    _run, path = _start_run(api, "Hi [slow]")
    template = "/v1/threads/{thread_id}/runs/{run_id}"
    cancelling = check(api("POST", f"{path}/cancel"), f"{template}/cancel", "post")
    assert cancelling["status"] == "cancelling"
    fake_clock.advance(STEP)
    assert check(api("GET", path), template)["status"] == "cancelled"


@pytest.mark.parametrize(
    ("message", "ending"),
    [("Hi", "completed"), ("Hi [fail]", "failed"), ("Hi [incomplete]", "incomplete")],
)
def test_a_background_response_in_every_state(api, fake_clock, message, ending):
    data = {"model": "gpt-4o", "input": message, "instructions": "Be brief.", "background": True}
    created = check(api("POST", "/responses", json=data), "/v1/responses", "post")
    path = f"/responses/{created['id']}"
    statuses = [created["status"]]
    for _ in range(2):
        fake_clock.advance(STEP)
        statuses.append(check(api("GET", path), "/v1/responses/{response_id}")["status"])
    assert statuses == ["queued", "in_progress", ending]


def test_a_response_at_once_and_a_cancelled_one(api):
    at_once = {"model": "gpt-4o", "input": [{"role": "user", "content": "Hi"}]}
    answer = check(api("POST", "/responses", json=at_once), "/v1/responses", "post")
    assert answer["status"] == "completed" and answer["output"]
    slow = {"model": "gpt-4o", "input": "Hi [slow]", "background": True}
    created = api("POST", "/responses", json=slow).json()
    path = "/v1/responses/{response_id}/cancel"
    cancelled = check(api("POST", f"/responses/{created['id']}/cancel"), path, "post")
    assert cancelled["status"] == "cancelled"


@pytest.mark.parametrize("group_by", [None, "line_item", "project_id"])
def test_a_costs_page(api, fake_clock, group_by):
    params = {"start_time": int(fake_clock.time()) - 9 * 86400, "limit": 7}
    if group_by:
        params["group_by"] = group_by
    page = check(
        api("GET", "/organization/costs", ADMIN_KEY_OK, params=params), "/v1/organization/costs"
    )
    assert page["has_more"] and page["next_page"]
    params["page"] = page["next_page"]
    last = api("GET", "/organization/costs", ADMIN_KEY_OK, params=params)
    assert check(last, "/v1/organization/costs")["has_more"] is False


def test_error_bodies(api):
    errors = [
        (api("GET", "/models/gpt-99"), "/v1/models/{model}", "get", 404),
        (api("GET", "/models", KEY_INVALID), "/v1/models", "get", 401),
        (api("GET", "/models", None), "/v1/models", "get", 401),
        (api("POST", "/assistants", KEY_QUOTA, json={}), "/v1/assistants", "post", 429),
        (api("POST", "/assistants", KEY_RATE_LIMIT, json={}), "/v1/assistants", "post", 429),
        (api("GET", "/models", KEY_OVERLOADED), "/v1/models", "get", 503),
        (api("GET", "/assistants/asst_nope"), "/v1/assistants/{assistant_id}", "get", 404),
        (api("GET", "/responses/resp_nope"), "/v1/responses/{response_id}", "get", 404),
    ]
    for answer, path, method, status in errors:
        assert answer.status_code == status, (path, answer.text)
        body = check(answer, path, method, spec="errors")
        assert set(body["error"]) == {"message", "type", "param", "code"}


def test_refusals_of_a_bad_request_are_error_responses(api):
    # The spec declares no 400 answers; the body is its ErrorResponse all the same.
    refusals = [
        api("POST", "/assistants", json={"model": "gpt-4o", "x": 1}),
        api("POST", "/assistants", json={"model": "gpt-4o"}, headers={"OpenAI-Beta": "v1"}),
        api("POST", "/responses", json={"model": "gpt-4o", "input": "Hi", "temperature": 3}),
        api("GET", "/organization/costs", ADMIN_KEY_OK),
    ]
    for answer in refusals:
        assert answer.status_code == 400, answer.text
        check_schema(answer, "components/schemas/ErrorResponse", spec="errors")
