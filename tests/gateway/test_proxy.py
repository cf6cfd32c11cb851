"""The pass-through's guards: what never leaves, what is refused, and what stops at once."""

import socket
import threading
import time
from datetime import timedelta

import httpx
import openai
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Membership
from fakeprovider import KEY_OK, Reply
from gateway import grants
from gateway import tokens as token_format
from gateway.models import ApiToken
from gateway.scopes import Scope
from tests.connections.helpers import CANARY_KEY, make_connection

HELLO = [{"role": "user", "content": "Hi"}]


def raw_request(port: int, request: bytes) -> bytes:
    """Send bytes as they are (no client normalises them) and read the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer else 0


def test_canary_key_and_token_never_leave(gateway, make_token, fake_upstream, all_logs):
    token = make_token()
    headers = {"Authorization": f"Bearer {token}"}
    echo = Reply.error(
        401,
        f"Incorrect API key provided: {CANARY_KEY}.",
        "invalid_request_error",
        "invalid_api_key",
        headers={"openai-echo": CANARY_KEY, "x-request-id": f"req_{CANARY_KEY}"},
    )
    fake_upstream.queue(echo)
    answers = [
        httpx.post(
            f"{gateway.url}/chat/completions",
            headers=headers,
            json={"model": "gpt-4o", "messages": HELLO},
        ),
        httpx.get(f"{gateway.url}/models", headers=headers),
        httpx.get(f"{gateway.url}/models/nope", headers=headers),
        httpx.get(f"{gateway.url}/organization/costs", headers=headers),
        httpx.get(f"{gateway.url}/models", headers={"Authorization": f"Bearer {token}x"}),
    ]
    fake_upstream.queue(Reply.error(500, f"boom {CANARY_KEY}", "server_error", None))
    answers.append(
        httpx.post(
            f"{gateway.url}/embeddings",
            headers=headers,
            json={"model": "text-embedding-3-small", "input": "x"},
        )
    )

    assert [a.status_code for a in answers] == [401, 200, 404, 404, 401, 500]
    for answer in answers:
        assert CANARY_KEY not in answer.text
        assert CANARY_KEY[-16:] not in answer.text
        assert all(CANARY_KEY not in value for value in answer.headers.values())
        assert token not in answer.text
    # The provider's own 401 (its key was refused) is not Tablero's.
    assert "Tablero" not in answers[0].json()["error"]["message"]
    assert "Tablero refused" in answers[4].json()["error"]["message"]
    # The key did reach the provider, and only there.
    assert fake_upstream.requests[0].headers["authorization"] == f"Bearer {CANARY_KEY}"
    for record in all_logs.records:
        assert CANARY_KEY not in record.getMessage()
        assert token not in record.getMessage()
        assert token[:20] not in record.getMessage()


def test_nothing_of_the_caller_goes_upstream(gateway, make_token, fake_upstream):
    token = make_token()
    httpx.post(
        f"{gateway.url}/chat/completions?trace=1",
        headers={
            "Authorization": f"Bearer {token}",
            "Cookie": "sessionid=secret-session",
            "X-Forwarded-For": "10.1.2.3",
            "Forwarded": "for=10.1.2.3",
            "X-Real-IP": "10.1.2.3",
            "OpenAI-Organization": "org-caller",
            "OpenAI-Project": "proj-caller",
            "Proxy-Authorization": "Basic eDp5",
            "OpenAI-Beta": "assistants=v2",
            "Idempotency-Key": "abc",
        },
        json={"model": "gpt-4o", "messages": HELLO},
    )

    (sent,) = fake_upstream.requests
    assert sent.query == {"trace": ["1"]}
    assert sent.headers["authorization"] == f"Bearer {CANARY_KEY}"
    assert sent.headers["openai-beta"] == "assistants=v2"
    assert sent.headers["idempotency-key"] == "abc"
    for name in ("cookie", "x-forwarded-for", "forwarded", "x-real-ip", "proxy-authorization"):
        assert name not in sent.headers
    assert "openai-organization" not in sent.headers  # the connection has none
    assert token not in repr(sent.headers) and "10.1.2.3" not in repr(sent.headers)


def test_connection_organization_and_project_are_sent(
    gateway, make_token, team, owner, fake_upstream
):
    connection = make_connection(
        team,
        name="Org",
        key=KEY_OK,
        base_url=fake_upstream.base_url,
        organization_id="org-team",
        project_id="proj_team",
        created_by=owner,
    )
    httpx.get(
        f"{gateway.url}/models",
        headers={
            "Authorization": f"Bearer {make_token(connection=connection)}",
            "OpenAI-Organization": "org-caller",
        },
    )
    (sent,) = fake_upstream.requests
    assert sent.headers["openai-organization"] == "org-team"
    assert sent.headers["openai-project"] == "proj_team"


@pytest.mark.parametrize(
    "path",
    [
        b"/v1/../admin/",
        b"/v1/models/../../admin/",
        b"/v1/%2e%2e/admin/",
        b"/v1/models/%2E%2E",
        b"/v1//evil.example/v1/models",
        b"/v1/models\\..\\..\\admin",
        b"/v1/models/%2fetc",
        b"/v1/files/a/./b",
        b"/v1/models/",
    ],
)
def test_path_tricks_are_refused(gateway, make_token, fake_upstream, path):
    token = make_token().encode()
    answer = raw_request(
        gateway.port,
        b"GET "
        + path
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        + token
        + b"\r\nConnection: close\r\n\r\n",
    )
    assert status_of(answer) in (400, 404)
    assert fake_upstream.requests == []


@pytest.mark.parametrize(
    "path",
    ["organization/costs", "organization/admin_api_keys", "fine_tuning/jobs", "realtime/sessions"],
)
def test_organization_and_unknown_families_are_never_forwarded(
    gateway, make_token, fake_upstream, path
):
    answer = httpx.get(f"{gateway.url}/{path}", headers={"Authorization": f"Bearer {make_token()}"})
    assert answer.status_code == 404
    assert answer.json()["error"]["message"].startswith("Tablero refused")
    assert fake_upstream.requests == []


def test_request_smuggling_fails(gateway, make_token, fake_upstream):
    token = make_token().encode()
    smuggled = b"GET /v1/organization/costs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    answer = raw_request(
        gateway.port,
        b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        + token
        + b"\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
    )
    assert status_of(answer) == 400
    assert fake_upstream.requests_to("/v1/organization/costs") == []


def test_header_injection_fails(gateway, make_token, fake_upstream):
    token = make_token().encode()
    answer = raw_request(
        gateway.port,
        b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
        + token
        + b"\r\nOpenAI-Beta: x\rX-Injected: 1\r\nConnection: close\r\n\r\n",
    )
    assert status_of(answer) == 400
    assert all("x-injected" not in sent.headers for sent in fake_upstream.requests)


def test_unknown_host_is_refused(gateway, make_token, fake_upstream):
    answer = httpx.get(
        f"{gateway.url}/models",
        headers={"Authorization": f"Bearer {make_token()}", "Host": "evil.example"},
    )
    assert answer.status_code == 400
    assert fake_upstream.requests == []


def test_token_guessing_is_throttled_per_address(gateway, make_token, fake_upstream):
    from gateway.proxy import GUESS_LIMIT

    good = make_token()
    wrong = good[:-6] + "AAAAAA"
    statuses = [
        httpx.get(f"{gateway.url}/models", headers={"Authorization": f"Bearer {wrong}"}).status_code
        for _ in range(GUESS_LIMIT)
    ]
    assert statuses == [401] * GUESS_LIMIT

    blocked = httpx.get(f"{gateway.url}/models", headers={"Authorization": f"Bearer {good}"})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert fake_upstream.requests == []


def test_body_above_the_limit_is_refused(gateway, make_token, fake_upstream, settings, sdk):
    settings.TABLERO_GATEWAY_MAX_BODY_MB = 1
    client = sdk(make_token())

    with pytest.raises(openai.APIStatusError) as refused:
        client.files.create(file=("big.jsonl", b"x" * (1024 * 1024 + 1)), purpose="batch")
    assert refused.value.status_code == 413
    assert fake_upstream.requests == []


def test_cross_team_use_is_impossible(
    gateway, team, other_team, outsider, member, fake_upstream, gateway_connection, make_token
):
    from gateway.services import token_create

    other_connection = make_connection(
        other_team, name="Theirs", key=KEY_OK, base_url=fake_upstream.base_url
    )
    with pytest.raises(ValidationError):
        token_create(
            team=team,
            connection=other_connection,
            name="x",
            created_by=member,
            owner=member,
            scopes=list(Scope),
        )
    # A personal token whose owner is not a member of its team (the services refuse to make
    # one; a row written some other way) grants nothing.
    made = token_format.generate()
    ApiToken.objects.create(
        team=team,
        connection=gateway_connection,
        name="x",
        owner=outsider,
        prefix=made.prefix,
        secret_digest=made.secret_digest,
        scopes=list(Scope),
        expires_at=timezone.now() + timedelta(days=1),
    )
    stray = made.value
    answer = httpx.get(f"{gateway.url}/models", headers={"Authorization": f"Bearer {stray}"})
    assert answer.status_code == 401
    # The outsider's own token reaches their team's connection only.
    _token, theirs = token_create(
        team=other_team,
        connection=other_connection,
        name="y",
        created_by=outsider,
        owner=outsider,
        scopes=list(Scope),
    )
    httpx.get(f"{gateway.url}/models", headers={"Authorization": f"Bearer {theirs}"})
    assert [r.headers["authorization"] for r in fake_upstream.requests] == [f"Bearer {KEY_OK}"]


def test_member_who_leaves_is_refused_at_once(gateway, make_token, member, team):
    token = make_token()
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{gateway.url}/models", headers=headers).status_code == 200

    Membership.objects.filter(team=team, user=member).delete()

    assert httpx.get(f"{gateway.url}/models", headers=headers).status_code == 401


def test_viewer_holds_models_only(gateway, make_token, viewer):
    token = make_token(owner=viewer, created_by=viewer, scopes=[Scope.MODELS])
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{gateway.url}/models", headers=headers).status_code == 200
    answer = httpx.post(
        f"{gateway.url}/embeddings",
        headers=headers,
        json={"model": "text-embedding-3-small", "input": "x"},
    )
    assert answer.status_code == 403


def test_expired_token_is_refused(gateway, make_token):
    token = make_token()
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{gateway.url}/models", headers=headers).status_code == 200
    ApiToken.objects.update(expires_at="2000-01-01T00:00:00Z")
    grants.clear_local()
    assert httpx.get(f"{gateway.url}/models", headers=headers).status_code == 401


def test_client_that_leaves_cancels_the_upstream_call(gateway, make_token, fake_upstream, written):
    from config.asgi import gateway as app

    gate = threading.Event()
    fake_upstream.stream_gate = gate
    token = make_token()
    with httpx.stream(
        "POST",
        f"{gateway.url}/chat/completions",
        headers={"Authorization": f"Bearer {token}"},
        json={"model": "gpt-4o", "messages": HELLO, "stream": True},
    ) as answer:
        first = next(answer.iter_raw())
        assert first.startswith(b"data: ")
    # The client is gone while the provider still holds the rest: the gateway let go.
    deadline = time.monotonic() + 10
    while app.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.in_flight == 0
    assert not gate.is_set()
    gate.set()
    (call,) = written()
    assert call.streamed
