"""Every request the two run backends send, checked against the provider's OpenAPI spec by
Prism; and random answers that fit the spec never crash them.

Prism is stateless: a run's status is whatever the spec's example says, so nothing here
polls; the flows themselves are tested against the fake provider (fakeprovider/).
"""

import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from assistants.backends import AssistantsBackend, ResponsesBackend, RunSnapshot, TurnContext
from provider.client import ProviderClient
from provider.errors import ErrorKind, ProviderError
from provider.runapi import detect_run_api
from tests.provider.helpers import LOOPBACK

pytestmark = pytest.mark.contract

DYNAMIC = {"Prefer": "dynamic=true"}

FUNCTION = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def assistant(**fields: Any) -> SimpleNamespace:
    values = {
        "pk": uuid.UUID("0b6f4a1e-3c1d-4d59-9a57-2f0c6c1d9e11"),  # sent as the metadata tag
        "remote_id": "asst_abc123",
        "name": "Math Tutor",
        "description": "Helps with maths",
        "instructions": "You are a personal math tutor.",
        "model": "gpt-4o",
        "tools": [
            {"type": "code_interpreter"},
            {"type": "file_search"},
            {"type": "function", "function": FUNCTION},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "metadata": {"team": "maths"},
    }
    return SimpleNamespace(**{**values, **fields})


# Lines Prism logs about itself, not about what was sent: the spec's own example answers that
# break the spec (the Response example has `user: null`, and message items its `output`
# schema does not match), and its faker crashing on the large Response schema.
NOT_ABOUT_THE_REQUEST = ("Violation: response.", "Request terminated with error: Error: TypeError")


def refused(prism) -> list[str]:
    """Prism's complaints about what was sent."""
    return [
        line
        for line in prism.rejections()
        if not any(marker in line for marker in NOT_ABOUT_THE_REQUEST)
    ]


THREAD_RUN = SimpleNamespace(thread_id="thread_abc123", remote_run_id="run_abc123")
RESPONSE_RUN = SimpleNamespace(response_id="resp_abc123")


def assistants_calls(backend: AssistantsBackend) -> None:
    """Every call the Assistants backend makes."""
    backend.create_assistant(assistant(remote_id=""))
    backend.create_assistant(
        assistant(remote_id="", description="", instructions="", temperature=None, tools=[])
    )
    # Fifteen pairs of the user's and Tablero's tag: the 16 the spec allows.
    backend.create_assistant(
        assistant(remote_id="", metadata={f"key{n}": "value" for n in range(15)})
    )
    backend.update_assistant(assistant())
    backend.update_assistant(assistant(description="", temperature=None, top_p=None, tools=[]))
    backend.delete_assistant(assistant())
    list(backend.list_remote_assistants())
    backend.find_tagged_assistant("0b6f4a1e-3c1d-4d59-9a57-2f0c6c1d9e11")
    backend.start_run(assistant(), "What is 2 + 2?")
    # A conversation's later turn: a run on its thread, the message added with it; a retry of a
    # run that reached the thread, without it.
    backend.start_run(assistant(), "And times 3?", context=TurnContext(thread_id="thread_abc123"))
    backend.start_run(
        assistant(),
        "And times 3?",
        context=TurnContext(thread_id="thread_abc123", add_message=False),
    )
    backend.get_run(THREAD_RUN)
    backend.cancel_run(THREAD_RUN)
    backend.run_output("thread_abc123", "run_abc123")


def responses_calls(backend: ResponsesBackend) -> None:
    """Every call the Responses backend makes."""
    backend.start_run(assistant(), "What is 2 + 2?")
    backend.start_run(
        assistant(instructions="", tools=[], temperature=None, top_p=None, metadata={}), "Hi"
    )
    # A conversation's later turn follows the previous response.
    backend.start_run(
        assistant(), "And times 3?", context=TurnContext(previous_response_id="resp_abc123")
    )
    backend.get_run(RESPONSE_RUN)
    backend.cancel_run(RESPONSE_RUN)


def test_assistants_requests_are_accepted(prism):
    assistants_calls(
        AssistantsBackend(ProviderClient(prism.endpoint(), guard=LOOPBACK, max_retries=0))
    )
    assert refused(prism) == []


def test_assistants_requests_carry_the_beta_header_the_api_required(prism_errors):
    """The -errors spec requires `OpenAI-Beta: assistants=v2` on every Assistants path."""
    assistants_calls(
        AssistantsBackend(ProviderClient(prism_errors.endpoint(), guard=LOOPBACK, max_retries=0))
    )
    assert refused(prism_errors) == []


def test_responses_requests_are_accepted(prism):
    responses_calls(
        ResponsesBackend(ProviderClient(prism.endpoint(), guard=LOOPBACK, max_retries=0))
    )
    assert refused(prism) == []


# A LiteLLM background response id: "resp_" and standard base64 ("+", "/", "="), 473 characters.
LONG_RUN = SimpleNamespace(response_id="resp_++++////" + "bGl0ZWxsbTpjdXN0b21f" * 23 + "MDA=")


def test_a_long_base64_response_id_is_sent_as_one_path_segment(prism):
    backend = ResponsesBackend(ProviderClient(prism.endpoint(), guard=LOOPBACK, max_retries=0))
    backend.get_run(LONG_RUN)
    backend.cancel_run(LONG_RUN)
    assert refused(prism) == []


def test_run_api_detection_asks_only_what_the_spec_has(prism_errors):
    """Both questions: the Assistants list (with its beta header) and, the Assistants API
    answering 404, the read-only GET of a response that does not exist."""
    client = ProviderClient(
        prism_errors.endpoint(), guard=LOOPBACK, max_retries=0, extra_headers={"Prefer": "code=404"}
    )
    detect_run_api(client)
    assert refused(prism_errors) == []


def test_a_rejected_request_is_seen(prism):
    """Control: a body the spec refuses (`assistant_id` must be a string) is reported."""
    client = ProviderClient(prism.endpoint(), guard=LOOPBACK, max_retries=0)
    with pytest.raises(ProviderError):
        client.request("POST", "/threads/runs", json={"assistant_id": 5})
    assert any("UNPROCESSABLE_ENTITY" in line for line in refused(prism))


def test_spec_examples_are_read(prism):
    client = ProviderClient(prism.endpoint(), guard=LOOPBACK, max_retries=0)
    snapshot = ResponsesBackend(client).get_run(RESPONSE_RUN)
    assert snapshot.status in ("completed", "queued", "in_progress")
    assert isinstance(AssistantsBackend(client).get_run(THREAD_RUN), RunSnapshot)


def _survives(call) -> None:
    try:
        result = call()
    except ProviderError as error:
        if "stoplight.io/prism/errors" in (error.error_type or ""):
            return  # Prism's faker itself failed on a large schema: no answer to read
        assert error.kind == ErrorKind.BAD_RESPONSE, error
    else:
        if isinstance(result, RunSnapshot):
            assert isinstance(result.status, str) and isinstance(result.output_text, str)


@pytest.mark.parametrize("attempt", range(8))
def test_random_answers_do_not_crash_the_backends(prism, attempt):
    client = ProviderClient(prism.endpoint(), guard=LOOPBACK, extra_headers=DYNAMIC, max_retries=0)
    assistants, responses = AssistantsBackend(client), ResponsesBackend(client)

    _survives(lambda: assistants.create_assistant(assistant(remote_id="")))
    _survives(lambda: assistants.update_assistant(assistant()))
    _survives(lambda: assistants.delete_assistant(assistant()))
    _survives(lambda: list(assistants.list_remote_assistants()))
    _survives(lambda: assistants.find_tagged_assistant("0b6f4a1e-3c1d-4d59-9a57-2f0c6c1d9e11"))
    _survives(lambda: assistants.start_run(assistant(), "Hi"))
    _survives(lambda: assistants.get_run(THREAD_RUN))
    _survives(lambda: assistants.cancel_run(THREAD_RUN))
    _survives(lambda: assistants.run_output("thread_abc123", "run_abc123"))
    _survives(lambda: responses.start_run(assistant(), "Hi"))
    _survives(lambda: responses.get_run(RESPONSE_RUN))
    _survives(lambda: responses.cancel_run(RESPONSE_RUN))
    assert refused(prism) == []
