"""Payloads, helpers and fixtures for the hostile-input tests (tests/test_hostile_inputs.py
and tests/<app>/test_hostile_inputs.py).

A test file uses the fixtures by naming them at module level (`conn = hostile.conn`), so that
they win over an app's own fixtures of the same name (tests/assistants/conftest.py has an
`assistant` that is not synced)."""

import html
import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Team, User
from assistants.models import Assistant
from connections import services as connection_services
from connections.models import Connection
from tests.assistants.helpers import fake_connection, make_assistant

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'
RAW_XSS_MARKERS = ("<script>alert", "<img src=x")
ONE_MB = "x" * (1024 * 1024)
RTL = "\u202e\u200fevil\u200e"
EMOJI = "🦊🔑👩‍👩‍👧"
SQLISH = "'; DROP TABLE accounts_team; --"
DEEP_LIST = "[" * 100_000 + "]" * 100_000
TRACE_MARKERS = ("Traceback (most recent call last)", 'File "/', "Exception Value")


def raw(user: User | None) -> Client:
    """A client that answers a crash with the 500 page instead of raising it."""
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


def body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def shown(response) -> str:
    """The page as the user reads it (entities decoded)."""
    return html.unescape(body(response))


def assert_sane(response) -> str:
    """No server error, no stack trace, no unescaped payload; returns the body."""
    assert response.status_code < 500, response.status_code
    text = body(response)
    for marker in TRACE_MARKERS:
        assert marker not in text
    for marker in RAW_XSS_MARKERS:
        assert marker not in text
    return text


def form_errors(response) -> list[str]:
    found = re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', body(response), re.S)
    return [html.unescape(re.sub(r"<[^>]+>", " ", chunk)).strip() for chunk in found]


def team_url(name: str, team: Team, *args: Any) -> str:
    return reverse(name, args=[team.pk, *args])


@pytest.fixture
def conn(team, owner, fake_upstream) -> Connection:
    """The team's connection to the fake provider, running assistants through Responses."""
    fake_upstream.run_step_seconds = 0
    connection = fake_connection(team, fake_upstream, created_by=owner, run_api="responses")
    connection_services.models_refresh(connection=connection, user=None)  # as adding it does
    fake_upstream.requests.clear()
    return connection


@pytest.fixture
def other_conn(other_team, outsider, fake_upstream) -> Connection:
    return fake_connection(other_team, fake_upstream, name="Their secret connection")


@pytest.fixture
def assistant(team, conn, member) -> Assistant:
    return make_assistant(team, conn, created_by=member, sync_state="synced")


def has_nul(*values: Any) -> bool:
    return "\x00" in json.dumps(values, ensure_ascii=False) or "\\u0000" in json.dumps(values)
