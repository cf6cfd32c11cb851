"""Shared builders for the assistants tests."""

from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ROLE_RANK, Role, Team, User
from assistants.models import TERMINAL_STATUSES, Assistant, Run, RunStatus, SyncState
from assistants.services import poll_lock_key
from connections.models import Connection
from fakeprovider import KEY_OK
from tests.conftest import client_for
from tests.connections.helpers import make_connection

MODEL_LIST = [
    {"id": "gpt-4o", "object": "model", "created": 1715367049, "owned_by": "system"},
    {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
]


def fake_connection(
    team: Team, fake, *, name: str = "Fake", key: str = KEY_OK, **fields: Any
) -> Connection:
    """A connection to the fake provider (run API detected by the first call)."""
    return make_connection(team, name=name, key=key, base_url=fake.base_url, **fields)


def make_assistant(
    team: Team,
    connection: Connection,
    *,
    name: str = "Math Tutor",
    created_by: User | None = None,
    **fields: Any,
) -> Assistant:
    values: dict[str, Any] = {
        "model": "gpt-4o",
        "instructions": "You are a personal math tutor.",
        "tools": [{"type": "code_interpreter"}],
        "sync_state": SyncState.SYNCED,
        **fields,
    }
    assistant = Assistant(
        team=team, connection=connection, name=name, created_by=created_by, **values
    )
    assistant.full_clean()
    assistant.save()
    return assistant


def make_run(
    assistant: Assistant,
    *,
    status: str = RunStatus.COMPLETED,
    started_by: User | None = None,
    **fields: Any,
) -> Run:
    backend = fields.pop("backend", "assistants")
    ids: dict[str, Any] = (
        {"thread_id": "thread_abc123", "remote_run_id": "run_abc123"}
        if backend == "assistants"
        else {"response_id": "resp_abc123"}
    )
    values: dict[str, Any] = {
        "input": "What is 2 + 2?",
        "output_text": "4" if status == RunStatus.COMPLETED else "",
        "completed_at": timezone.now() if status in TERMINAL_STATUSES else None,
        **ids,
        **fields,
    }
    run = Run(
        team=assistant.team,
        assistant=assistant,
        assistant_name=assistant.name,
        connection=assistant.connection,
        backend=backend,
        status=status,
        started_by=started_by,
        **values,
    )
    run.full_clean()
    run.save()
    return run


def let_poll(run: Run) -> Run:
    """Make the next refresh ask the provider (as if the polling interval had passed and the
    run's next background step were due: the refresh starts a new chain, which asks at once
    in immediate mode)."""
    Run.objects.filter(pk=run.pk).update(last_polled_at=timezone.now() - timedelta(hours=1))
    cache.delete(poll_lock_key(run))
    cache.delete(f"assistants:run-poll-chain:{run.pk}")
    run.refresh_from_db()
    return run


def check_refusals(
    users: dict[str, User],
    url: str,
    *,
    min_role: str,
    method: str = "get",
    data: dict[str, Any] | None = None,
) -> None:
    """Anonymous to sign-in, outsider 404, every role below `min_role` 403."""
    response = getattr(client_for(None), method)(url, data=data or {})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert getattr(client_for(users["outsider"]), method)(url, data=data or {}).status_code == 404
    for role in ("viewer", "member", "admin"):
        if ROLE_RANK[Role(role)] < ROLE_RANK[Role(min_role)]:
            response = getattr(client_for(users[role]), method)(url, data=data or {})
            assert response.status_code == 403, role


def poll(client: Client, run: Run, **extra: Any) -> HttpResponse:
    """What the run page's status part does while the run goes on: htmx POSTs to the refresh
    URL (Tablero asks the provider) and swaps in the fragment it gets back."""
    url = reverse("assistants:run_refresh", kwargs={"team_id": run.team_id, "run_id": run.pk})
    return client.post(url, HTTP_HX_REQUEST="true", **extra)


def watch(client: Client, run: Run, **extra: Any) -> HttpResponse:
    """A browser watching the run: its status part polls once, then the page is shown."""
    poll(client, run)
    url = reverse("assistants:run_detail", kwargs={"team_id": run.team_id, "run_id": run.pk})
    return client.get(url, **extra)
