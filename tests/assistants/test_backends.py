"""The two run backends against httpx.MockTransport: the exact URLs, headers and JSON they send,
and how they read what comes back."""

import json
import uuid
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from assistants.backends import (
    AssistantsBackend,
    ResponsesBackend,
    backend_for,
    normalise_remote_tools,
    run_api_for,
)
from connections.models import Connection, RunApiReason
from provider.client import ProviderClient
from provider.endpoint import Endpoint
from provider.errors import ErrorKind, ProviderError
from provider.runapi import (
    ASSISTANTS,
    RESPONSES,
    RESPONSES_PROBE_ID,
    RunApiDetection,
    detect_run_api,
)

BASE = "https://api.example.test/v1"
KEY = "sk-test-ok-000000000000abcd"
RECORD_ID = uuid.UUID("0b6f4a1e-3c1d-4d59-9a57-2f0c6c1d9e11")

FUNCTION = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


class Recorder:
    """A MockTransport handler that answers from a list and records every request."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, body = self.answers.pop(0)
        return httpx.Response(status, json=body)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def client_with(recorder: Recorder) -> ProviderClient:
    return ProviderClient(
        Endpoint(BASE, KEY),
        transport=httpx.MockTransport(recorder),
        sleep=lambda seconds: None,
        max_retries=0,
    )


def assistant(**fields: Any) -> SimpleNamespace:
    values = {
        "pk": RECORD_ID,
        "remote_id": "",
        "name": "Math Tutor",
        "description": "",
        "instructions": "You are a personal math tutor.",
        "model": "gpt-4o",
        "tools": [
            {"type": "code_interpreter"},
            {"type": "file_search"},
            {"type": "function", "function": FUNCTION},
        ],
        "temperature": None,
        "top_p": None,
        "metadata": {},
    }
    return SimpleNamespace(**{**values, **fields})


def run_object(status: str = "queued", **fields: Any) -> dict[str, Any]:
    return {
        "id": "run_abc123",
        "object": "thread.run",
        "created_at": 1699063290,
        "thread_id": "thread_abc123",
        "assistant_id": "asst_abc123",
        "status": status,
        "last_error": None,
        "completed_at": None,
        "failed_at": None,
        "cancelled_at": None,
        "incomplete_details": None,
        "usage": None,
        **fields,
    }


def response_object(status: str = "queued", **fields: Any) -> dict[str, Any]:
    return {
        "id": "resp_abc123",
        "object": "response",
        "created_at": 1741476777,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "output": [],
        "usage": None,
        **fields,
    }


# --- Assistants API -------------------------------------------------------------------------


def test_create_assistant_sends_v2_body_and_beta_header():
    recorder = Recorder((200, {"id": "asst_abc123", "object": "assistant"}))
    backend = AssistantsBackend(client_with(recorder))

    remote_id = backend.create_assistant(
        assistant(description="Tutor", temperature=0.2, metadata={"team": "maths"})
    )

    assert remote_id == "asst_abc123"
    request = recorder.requests[0]
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/assistants"
    assert request.headers["OpenAI-Beta"] == "assistants=v2"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert recorder.body() == {
        "model": "gpt-4o",
        "name": "Math Tutor",
        "description": "Tutor",
        "instructions": "You are a personal math tutor.",
        "tools": [
            {"type": "code_interpreter"},
            {"type": "file_search"},
            {"type": "function", "function": FUNCTION},
        ],
        "metadata": {"team": "maths", "tablero_id": str(RECORD_ID)},
        "temperature": 0.2,
    }


def test_update_assistant_posts_every_field_to_its_id():
    recorder = Recorder((200, {"id": "asst_abc123", "object": "assistant"}))
    backend = AssistantsBackend(client_with(recorder))

    backend.update_assistant(assistant(remote_id="asst_abc123", tools=[]))

    request = recorder.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/assistants/asst_abc123")
    assert request.headers["OpenAI-Beta"] == "assistants=v2"
    body = recorder.body()
    assert body["tools"] == []
    assert body["temperature"] is None and body["top_p"] is None
    assert body["description"] is None


def test_the_tag_never_replaces_the_users_metadata():
    # Sixteen pairs leave no room (the provider allows 16), and a key of the tag's name is the
    # user's own: both are sent as they are, without the tag.
    full = {f"k{number}": "v" for number in range(16)}
    own = {"tablero_id": "mine"}
    recorder = Recorder(*[(200, {"id": "asst_abc123", "object": "assistant"})] * 2)
    backend = AssistantsBackend(client_with(recorder))

    backend.create_assistant(assistant(metadata=full))
    backend.update_assistant(assistant(remote_id="asst_abc123", metadata=own))

    assert recorder.body(0)["metadata"] == full
    assert recorder.body(1)["metadata"] == own


def test_update_sends_the_tag_with_the_users_metadata():
    recorder = Recorder((200, {"id": "asst_abc123", "object": "assistant"}))

    AssistantsBackend(client_with(recorder)).update_assistant(
        assistant(remote_id="asst_abc123", metadata={"team": "maths"})
    )

    assert recorder.body()["metadata"] == {"team": "maths", "tablero_id": str(RECORD_ID)}


def test_find_tagged_assistant_looks_newest_first_through_pages():
    other = {"id": "asst_other", "metadata": {"tablero_id": str(uuid.uuid4())}}
    users_own = {"id": "asst_mine", "metadata": {"tablero_id": "not a uuid"}}
    tagged = {"id": "asst_tagged", "metadata": {"tablero_id": str(RECORD_ID).upper()}}
    page = {"object": "list", "has_more": True, "last_id": "asst_mine"}
    recorder = Recorder(
        (200, {**page, "data": [other, users_own]}),
        (200, {**page, "data": [tagged], "last_id": "asst_tagged"}),
    )

    found = AssistantsBackend(client_with(recorder)).find_tagged_assistant(str(RECORD_ID))

    assert found == "asst_tagged"
    assert len(recorder.requests) == 2  # stops at the first match
    assert recorder.requests[1].url.params["after"] == "asst_mine"


def test_find_tagged_assistant_gives_up_after_its_pages():
    page = {"object": "list", "has_more": True}
    answers = [
        (200, {**page, "data": [{"id": f"asst_{n}", "metadata": {}}], "last_id": f"asst_{n}"})
        for n in range(20)
    ]
    recorder = Recorder(*answers)

    assert AssistantsBackend(client_with(recorder)).find_tagged_assistant(str(RECORD_ID)) is None
    assert len(recorder.requests) == 10


def test_update_without_remote_id_creates():
    recorder = Recorder((200, {"id": "asst_new", "object": "assistant"}))

    assert AssistantsBackend(client_with(recorder)).update_assistant(assistant()) == "asst_new"
    assert str(recorder.requests[0].url) == f"{BASE}/assistants"


def test_delete_assistant():
    recorder = Recorder(
        (200, {"id": "asst_abc123", "object": "assistant.deleted", "deleted": True})
    )

    AssistantsBackend(client_with(recorder)).delete_assistant(assistant(remote_id="asst_abc123"))

    request = recorder.requests[0]
    assert (request.method, str(request.url)) == ("DELETE", f"{BASE}/assistants/asst_abc123")
    assert request.headers["OpenAI-Beta"] == "assistants=v2"


def test_delete_without_remote_id_sends_nothing():
    recorder = Recorder()
    AssistantsBackend(client_with(recorder)).delete_assistant(assistant())
    assert recorder.requests == []


def test_list_follows_the_after_cursor_while_has_more():
    page = {"object": "list", "first_id": "asst_1", "last_id": "asst_2", "has_more": True}
    recorder = Recorder(
        (200, {**page, "data": [{"id": "asst_1"}, {"id": "asst_2"}]}),
        (
            200,
            {
                **page,
                "data": [{"id": "asst_3"}],
                "first_id": "asst_3",
                "last_id": "asst_3",
                "has_more": False,
            },
        ),
    )

    found = list(AssistantsBackend(client_with(recorder)).list_remote_assistants())

    assert [item["id"] for item in found] == ["asst_1", "asst_2", "asst_3"]
    assert [str(request.url) for request in recorder.requests] == [
        f"{BASE}/assistants?limit=100",
        f"{BASE}/assistants?limit=100&after=asst_2",
    ]
    assert all(r.headers["OpenAI-Beta"] == "assistants=v2" for r in recorder.requests)


def test_list_stops_when_the_cursor_does_not_move():
    page = {
        "object": "list",
        "data": [{"id": "asst_1"}],
        "first_id": "asst_1",
        "last_id": "asst_1",
        "has_more": True,
    }
    recorder = Recorder((200, page), (200, page))

    found = list(AssistantsBackend(client_with(recorder)).list_remote_assistants())

    assert [item["id"] for item in found] == ["asst_1", "asst_1"]
    assert len(recorder.requests) == 2


def test_list_with_bad_shape_is_bad_response():
    recorder = Recorder((200, {"object": "list", "data": "nope"}))
    with pytest.raises(ProviderError) as caught:
        list(AssistantsBackend(client_with(recorder)).list_remote_assistants())
    assert caught.value.kind == ErrorKind.BAD_RESPONSE


def test_start_run_creates_thread_and_run():
    recorder = Recorder((200, run_object("queued")))

    snapshot = AssistantsBackend(client_with(recorder)).start_run(
        assistant(remote_id="asst_abc123"), "What is 2 + 2?"
    )

    request = recorder.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/threads/runs")
    assert request.headers["OpenAI-Beta"] == "assistants=v2"
    assert recorder.body() == {
        "assistant_id": "asst_abc123",
        "thread": {"messages": [{"role": "user", "content": "What is 2 + 2?"}]},
    }
    assert snapshot.status == "queued"
    assert (snapshot.thread_id, snapshot.remote_run_id) == ("thread_abc123", "run_abc123")


def test_get_completed_run_fetches_its_messages_once():
    messages = {
        "object": "list",
        "data": [
            {
                "role": "assistant",
                "run_id": "run_abc123",
                "content": [{"type": "text", "text": {"value": "Four.", "annotations": []}}],
            },
            {
                "role": "assistant",
                "run_id": "run_other",
                "content": [{"type": "text", "text": {"value": "Other run", "annotations": []}}],
            },
            {
                "role": "user",
                "run_id": None,
                "content": [
                    {"type": "text", "text": {"value": "What is 2 + 2?", "annotations": []}}
                ],
            },
        ],
        "first_id": "msg_3",
        "last_id": "msg_1",
        "has_more": False,
    }
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
    recorder = Recorder(
        (200, run_object("completed", completed_at=1699063300, usage=usage)), (200, messages)
    )
    run = SimpleNamespace(thread_id="thread_abc123", remote_run_id="run_abc123")

    snapshot = AssistantsBackend(client_with(recorder)).get_run(run)

    assert [str(r.url) for r in recorder.requests] == [
        f"{BASE}/threads/thread_abc123/runs/run_abc123",
        f"{BASE}/threads/thread_abc123/messages?order=desc&limit=20",
    ]
    assert snapshot.status == "completed"
    assert snapshot.output_text == "Four."
    assert snapshot.usage.input_tokens == 10
    assert snapshot.usage.output_tokens == 2
    assert snapshot.usage.total_tokens == 12
    assert snapshot.completed_at.year == 2023


def test_get_running_run_asks_no_messages():
    recorder = Recorder((200, run_object("in_progress")))
    run = SimpleNamespace(thread_id="thread_abc123", remote_run_id="run_abc123")

    snapshot = AssistantsBackend(client_with(recorder)).get_run(run)

    assert snapshot.status == "in_progress"
    assert len(recorder.requests) == 1


def test_failed_run_carries_last_error():
    recorder = Recorder(
        (200, run_object("failed", last_error={"code": "rate_limit_exceeded", "message": "Slow"}))
    )
    run = SimpleNamespace(thread_id="thread_abc123", remote_run_id="run_abc123")

    snapshot = AssistantsBackend(client_with(recorder)).get_run(run)

    assert (snapshot.error_code, snapshot.error_message) == ("rate_limit_exceeded", "Slow")


def test_cancel_run():
    recorder = Recorder((200, run_object("cancelling")))
    run = SimpleNamespace(thread_id="thread_abc123", remote_run_id="run_abc123")

    snapshot = AssistantsBackend(client_with(recorder)).cancel_run(run)

    request = recorder.requests[0]
    assert (request.method, str(request.url)) == (
        "POST",
        f"{BASE}/threads/thread_abc123/runs/run_abc123/cancel",
    )
    assert request.headers["OpenAI-Beta"] == "assistants=v2"
    assert snapshot.status == "cancelling"


@pytest.mark.parametrize("body", [[], {"status": "exploded", "id": "run_1"}, {"status": "queued"}])
def test_run_with_bad_shape_is_bad_response(body):
    recorder = Recorder((200, body))
    run = SimpleNamespace(thread_id="thread_abc123", remote_run_id="run_abc123")
    with pytest.raises(ProviderError) as caught:
        AssistantsBackend(client_with(recorder)).get_run(run)
    assert caught.value.kind == ErrorKind.BAD_RESPONSE


@pytest.mark.parametrize("bad_id", ["../models", "run/../x", "", "run abc"])
def test_ids_cannot_reach_another_path(bad_id):
    recorder = Recorder()
    with pytest.raises(ProviderError) as caught:
        AssistantsBackend(client_with(recorder)).lookup("thread_abc123", bad_id)
    assert caught.value.kind == ErrorKind.BAD_RESPONSE
    assert recorder.requests == []


# --- Responses API --------------------------------------------------------------------------


def test_responses_backend_keeps_nothing_remotely():
    recorder = Recorder()
    backend = ResponsesBackend(client_with(recorder))

    assert backend.create_assistant(assistant()) is None
    backend.update_assistant(assistant())
    backend.delete_assistant(assistant())
    assert list(backend.list_remote_assistants()) == []
    assert recorder.requests == []


def test_start_run_posts_a_background_response():
    recorder = Recorder((200, response_object("queued")))

    snapshot = ResponsesBackend(client_with(recorder)).start_run(
        assistant(temperature=0.5, top_p=0.9, metadata={"team": "maths"}), "What is 2 + 2?"
    )

    request = recorder.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/responses")
    assert "OpenAI-Beta" not in request.headers
    assert recorder.body() == {
        "model": "gpt-4o",
        "input": "What is 2 + 2?",
        "background": True,
        "store": True,
        "instructions": "You are a personal math tutor.",
        "tools": [
            {"type": "code_interpreter", "container": {"type": "auto"}},
            {
                "type": "function",
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": FUNCTION["parameters"],
                "strict": False,
            },
        ],
        "temperature": 0.5,
        "top_p": 0.9,
        "metadata": {"team": "maths"},
    }
    assert snapshot.status == "queued"
    assert snapshot.response_id == "resp_abc123"


def test_start_run_without_tools_or_settings_sends_the_minimum():
    recorder = Recorder((200, response_object("queued")))

    ResponsesBackend(client_with(recorder)).start_run(
        assistant(tools=[{"type": "file_search"}], instructions=""), "Hi"
    )

    assert recorder.body() == {"model": "gpt-4o", "input": "Hi", "background": True, "store": True}


def test_completed_response_output_and_usage():
    output = [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {
            "type": "message",
            "id": "msg_1",
            "role": "assistant",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "Four.", "annotations": []},
                {"type": "refusal", "refusal": "no"},
            ],
        },
    ]
    usage = {"input_tokens": 328, "output_tokens": 52, "total_tokens": 380}
    recorder = Recorder(
        (200, response_object("completed", output=output, usage=usage, completed_at=1741476778))
    )

    snapshot = ResponsesBackend(client_with(recorder)).get_run(
        SimpleNamespace(response_id="resp_abc123")
    )

    assert str(recorder.requests[0].url) == f"{BASE}/responses/resp_abc123"
    assert snapshot.status == "completed"
    assert snapshot.output_text == "Four."
    assert (snapshot.usage.input_tokens, snapshot.usage.output_tokens) == (328, 52)
    assert snapshot.usage.total_tokens == 380
    assert snapshot.completed_at is not None


def test_output_text_convenience_field_is_a_fallback():
    recorder = Recorder((200, response_object("completed", output_text="Four.")))
    snapshot = ResponsesBackend(client_with(recorder)).get_run(
        SimpleNamespace(response_id="resp_abc123")
    )
    assert snapshot.output_text == "Four."


def test_incomplete_response_reason():
    recorder = Recorder(
        (200, response_object("incomplete", incomplete_details={"reason": "max_output_tokens"}))
    )
    snapshot = ResponsesBackend(client_with(recorder)).get_run(
        SimpleNamespace(response_id="resp_abc123")
    )
    assert (snapshot.status, snapshot.error_code) == ("incomplete", "max_output_tokens")


def test_cancel_response():
    recorder = Recorder((200, response_object("cancelled")))

    snapshot = ResponsesBackend(client_with(recorder)).cancel_run(
        SimpleNamespace(response_id="resp_abc123")
    )

    request = recorder.requests[0]
    assert (request.method, str(request.url)) == ("POST", f"{BASE}/responses/resp_abc123/cancel")
    assert snapshot.status == "cancelled"


def test_response_status_the_runs_api_has_only_is_bad_response():
    recorder = Recorder((200, response_object("expired")))
    with pytest.raises(ProviderError) as caught:
        ResponsesBackend(client_with(recorder)).get_run(SimpleNamespace(response_id="resp_abc123"))
    assert caught.value.kind == ErrorKind.BAD_RESPONSE


def raw_client(body: str) -> ProviderClient:
    """A client whose provider answers `body` as it is (JSON that `json=` would not send)."""
    return ProviderClient(
        Endpoint(BASE, KEY),
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=body.encode())),
        sleep=lambda seconds: None,
        max_retries=0,
    )


def test_answers_are_made_fit_for_the_database():
    # PostgreSQL refuses NUL characters in text and JSON; NaN and Infinity are not JSON.
    body = json.dumps(
        response_object(
            "failed\x00",
            id="resp_\x00abc",
            error={"code": "server_error\x00", "message": "Bad\x00 luck"},
            output=[{"type": "message", "content": [{"type": "output_text", "text": "Fo\x00ur."}]}],
            usage={"input_tokens": float("nan"), "output_tokens": 1, "total_tokens": 1},
        )
    )

    snapshot = ResponsesBackend(raw_client(body)).get_run(SimpleNamespace(response_id="resp_1"))

    assert snapshot.status == "failed"
    assert snapshot.response_id == "resp_abc"
    assert (snapshot.error_code, snapshot.error_message) == ("server_error", "Bad luck")
    assert snapshot.output_text == "Four."
    assert snapshot.usage.input_tokens is None


def test_remote_assistants_are_made_fit_for_the_database():
    parameters = {"type": "object", "x": float("inf")}
    remote = {
        "id": "asst_1",
        "name": "Tu\x00tor",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": parameters}}],
    }
    body = json.dumps({"object": "list", "data": [remote], "has_more": False})

    (found,) = AssistantsBackend(raw_client(body)).list_remote_assistants()

    assert found["name"] == "Tutor"
    assert found["tools"][0]["function"]["parameters"] == {"type": "object", "x": None}


def test_an_answer_nested_too_deeply_is_bad_response():
    body = json.dumps(response_object("completed", output="DEEP")).replace(
        '"DEEP"', "[" * 200 + "]" * 200
    )
    with pytest.raises(ProviderError) as caught:
        ResponsesBackend(raw_client(body)).get_run(SimpleNamespace(response_id="resp_1"))
    assert caught.value.kind == ErrorKind.BAD_RESPONSE


# --- tools, detection, choice ---------------------------------------------------------------


def test_remote_tools_map_retrieval_to_file_search():
    tools = [
        {"type": "retrieval"},
        {"type": "file_search"},
        {"type": "code_interpreter"},
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
        {"type": "browser"},
        "junk",
    ]
    assert normalise_remote_tools(tools) == [
        {"type": "file_search"},
        {"type": "code_interpreter"},
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
    ]


def error_body(message: str, code: Any = None, error_type: str = "invalid_request_error"):
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


ASSISTANT_LIST = {"object": "list", "data": [], "has_more": False}
NO_SUCH_RESPONSE = error_body(f"Response with id '{RESPONSES_PROBE_ID}' not found.")
# What LiteLLM answers on /v1/assistants when its provider has no Assistants API: a 500 (its
# code the status as text, its type "None"), worded one way or another.
LITELLM_NOT_SUPPORTED = [
    "litellm.BadRequestError: LiteLLM doesn't support assistants for "
    "custom_llm_provider=hosted_vllm. Received Model Group=None",
    "litellm.BadRequestError: hosted_vllm does not support the assistants API",
    "Not Implemented",
    "Assistants API is not supported for this provider",
    "'custom_llm_provider' must be set. Either via:\n `Router(assistants_config="
    "{'custom_llm_provider': ..})` \nor\n `router.arun_thread(custom_llm_provider=..)`",
]


class Server:
    """A MockTransport handler answering the two detection probes (status, JSON body, or an
    exception to raise), recording every request."""

    def __init__(self, assistants: Any, responses: Any = None) -> None:
        self.answers = {"assistants": assistants, "responses": responses}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        which = "assistants" if request.url.path.endswith("/assistants") else "responses"
        answer = self.answers[which]
        assert answer is not None, f"{which} was not to be asked"
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers={"content-type": "text/html"})
        return httpx.Response(status, json=body)


def detect(server: Server, *, previous: str = "") -> RunApiDetection:
    return detect_run_api(client_with(server), previous=previous)


def test_an_assistants_api_that_answers_is_used_and_responses_is_not_asked():
    server = Server((200, ASSISTANT_LIST))

    assert detect(server) == RunApiDetection(ASSISTANTS, RunApiReason.ASSISTANTS_ANSWERED)
    (request,) = server.requests
    assert str(request.url) == f"{BASE}/assistants?limit=1"
    assert request.headers["OpenAI-Beta"] == "assistants=v2"


@pytest.mark.parametrize("status", [404, 405, 410, 501])
def test_an_assistants_api_not_offered_goes_to_responses(status):
    invalid_url = error_body("Invalid URL (GET /v1/assistants)")
    server = Server((status, invalid_url), (404, NO_SUCH_RESPONSE))

    detection = detect(server, previous=ASSISTANTS)

    assert detection == RunApiDetection(RESPONSES, RunApiReason.ASSISTANTS_NOT_OFFERED, status)
    probe = server.requests[1]
    # The read-only question about a response that does not exist: nothing is created.
    assert probe.method == "GET"
    assert str(probe.url) == f"{BASE}/responses/{RESPONSES_PROBE_ID}"
    assert probe.content == b""
    assert "OpenAI-Beta" not in probe.headers


@pytest.mark.parametrize("message", LITELLM_NOT_SUPPORTED)
@pytest.mark.parametrize("status", [500, 400])
def test_a_not_supported_500_or_400_is_not_offered_not_a_passing_failure(status, message):
    server = Server(
        (status, error_body(message, code=str(status), error_type="None")),
        (404, NO_SUCH_RESPONSE),
    )

    detection = detect(server, previous=ASSISTANTS)

    assert detection == RunApiDetection(RESPONSES, RunApiReason.ASSISTANTS_NOT_OFFERED, status)


@pytest.mark.parametrize(
    "responses",
    [
        (404, NO_SUCH_RESPONSE),
        # LiteLLM wraps the upstream 404 in a 500 of its own that still says so.
        (500, error_body(f"litellm.APIError: Response with id '{RESPONSES_PROBE_ID}' not found")),
        (400, error_body("Invalid 'response_id': expected an ID that begins with 'resp'.")),
        (200, {"id": RESPONSES_PROBE_ID, "object": "response", "status": "completed"}),
    ],
)
def test_the_responses_api_answers_when_it_knows_the_route(responses):
    server = Server((404, error_body("Invalid URL (GET /v1/assistants)")), responses)

    assert detect(server).api == RESPONSES
    assert detect(server).reason == RunApiReason.ASSISTANTS_NOT_OFFERED


@pytest.mark.parametrize(
    "responses",
    [
        (404, error_body(f"Invalid URL (GET /v1/responses/{RESPONSES_PROBE_ID})")),
        (404, error_body("Unknown request URL", code="unknown_url")),
        (404, {"detail": "Not Found"}),
        (404, "<html><body>404 page not found</body></html>"),
        (405, {"detail": "Method Not Allowed"}),
    ],
)
def test_a_server_with_neither_api_says_so_and_keeps_the_previous_one(responses):
    server = Server((404, {"detail": "Not Found"}), responses)

    assert detect(server) == RunApiDetection(None, RunApiReason.NEITHER, 404)


def test_a_catch_all_page_is_not_the_assistants_api():
    server = Server((200, "<!doctype html><title>Chat</title>"), (404, NO_SUCH_RESPONSE))

    assert detect(server) == RunApiDetection(RESPONSES, RunApiReason.ASSISTANTS_NOT_OFFERED, 200)


@pytest.mark.parametrize(
    "assistants",
    [
        (500, error_body("Internal server error", code="server_error", error_type="server_error")),
        (502, "<html>Bad Gateway</html>"),
        (503, error_body("Service Unavailable")),
        (429, error_body("Rate limit reached", code="rate_limit_exceeded")),
        (400, error_body("Something else went wrong")),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("connection refused"),
    ],
)
def test_a_passing_failure_never_falls_back_to_assistants(assistants):
    status = None if isinstance(assistants, Exception) else assistants[0]

    # Nothing detected before, the Responses API answers: it is used, and why is said.
    answered = detect(Server(assistants, (404, NO_SUCH_RESPONSE)))
    assert answered == RunApiDetection(RESPONSES, RunApiReason.ASSISTANTS_FAILED, status)
    # A connection on the Assistants API stays there: detection is pending.
    kept = detect(Server(assistants, (404, NO_SUCH_RESPONSE)), previous=ASSISTANTS)
    assert kept == RunApiDetection(None, RunApiReason.PENDING, status)
    # Neither answers clearly: pending, whatever was detected before.
    unclear = detect(Server(assistants, httpx.ReadTimeout("timed out")))
    assert unclear == RunApiDetection(None, RunApiReason.PENDING, status)


def test_assistants_not_offered_and_responses_unclear_assumes_responses():
    server = Server((404, error_body("Invalid URL (GET /v1/assistants)")), (503, error_body("x")))

    assert detect(server) == RunApiDetection(RESPONSES, RunApiReason.RESPONSES_ASSUMED, 404)


@pytest.mark.parametrize(
    ("reason", "status", "expected"),
    [
        (RunApiReason.ASSISTANTS_ANSWERED, None, "The Assistants API answered."),
        (
            RunApiReason.ASSISTANTS_NOT_OFFERED,
            500,
            "The Responses API answered; the Assistants API is not offered (HTTP 500).",
        ),
        (
            RunApiReason.PENDING,
            None,
            "Detection pending: the Assistants API gave no clear answer (no answer).",
        ),
    ],
)
def test_the_reason_reads_with_what_the_assistants_api_answered(reason, status, expected):
    connection = Connection(run_api_reason=reason, run_api_status=status)
    assert connection.run_api_explanation.startswith(expected)


@pytest.mark.parametrize(
    ("base_url", "run_api", "detected", "expected"),
    [
        ("https://api.openai.com/v1", "auto", "", RESPONSES),
        ("https://llm.example.test/v1", "auto", "", ASSISTANTS),
        ("https://api.openai.com/v1", "auto", "assistants", ASSISTANTS),
        ("https://llm.example.test/v1", "auto", "responses", RESPONSES),
        ("https://llm.example.test/v1", "responses", "assistants", RESPONSES),
        ("https://api.openai.com/v1", "assistants", "responses", ASSISTANTS),
    ],
)
def test_run_api_for(base_url, run_api, detected, expected):
    connection = Connection(base_url=base_url, run_api=run_api, detected_run_api=detected)
    assert run_api_for(connection) == expected
    backend = backend_for(connection, client=client_with(Recorder()))
    assert backend.name == expected


# --- long ids -------------------------------------------------------------------------------

# A LiteLLM background response id: "resp_" and standard base64, 473 characters.
LONG_ID = "resp_++++////" + "bGl0ZWxsbTpjdXN0b21fbGxtX3Byb3ZpZGVy" * 12 + "MDAwMA=="


def json_client(body: Any) -> ProviderClient:
    return raw_client(json.dumps(body))


def test_a_long_response_id_is_kept_whole_and_sent_back_as_one_segment():
    recorder = Recorder(
        (200, response_object(id=LONG_ID)),
        (200, response_object("in_progress", id=LONG_ID)),
        (200, response_object("cancelled", id=LONG_ID)),
    )
    backend = ResponsesBackend(client_with(recorder))

    started = backend.start_run(assistant(), "Hi")
    assert started.response_id == LONG_ID
    run = SimpleNamespace(response_id=started.response_id)
    assert backend.get_run(run).status == "in_progress"
    assert backend.cancel_run(run).status == "cancelled"

    encoded = LONG_ID.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    assert recorder.requests[1].url.raw_path.decode() == f"/v1/responses/{encoded}"
    assert recorder.requests[2].url.raw_path.decode() == f"/v1/responses/{encoded}/cancel"


@pytest.mark.parametrize(
    "answer",
    [
        lambda: ResponsesBackend(json_client(response_object(id="resp_" + "a" * 1020))).get_run(
            SimpleNamespace(response_id="resp_1")
        ),
        lambda: AssistantsBackend(
            json_client({"id": "asst_" + "a" * 1020, "object": "assistant"})
        ).create_assistant(assistant()),
        lambda: AssistantsBackend(json_client(run_object(thread_id="thread_" + "a" * 1018))).lookup(
            "thread_1", "run_1"
        ),
    ],
)
def test_an_id_longer_than_kept_is_refused_with_the_reason_never_cut(answer):
    with pytest.raises(ProviderError) as caught:
        answer()

    assert caught.value.kind == ErrorKind.BAD_RESPONSE
    assert "1025 characters long" in caught.value.message
    assert "does not cut them" in caught.value.message
