"""A run's page: who ran what, where, the live status, the output, and why it ended badly."""

import uuid

import pytest
from django.urls import reverse

from assistants import services
from assistants.models import RunStatus
from tests.assistants.helpers import (
    check_refusals,
    fake_connection,
    let_poll,
    make_assistant,
    make_run,
)

pytestmark = pytest.mark.django_db


def url(run) -> str:
    return reverse("assistants:run_detail", kwargs={"team_id": run.team_id, "run_id": run.pk})


def test_completed_run(team, assistant, member, viewer_client, fake):
    run = make_run(
        assistant,
        started_by=member,
        output_text="Four.",
        input_tokens=10,
        output_tokens=2,
        total_tokens=12,
    )

    response = viewer_client.get(url(run))

    content = response.content.decode()
    assert response.status_code == 200
    assert "What is 2 + 2?" in content
    assert "Four." in content
    assert "Completed" in content
    assert "Assistants API" in content
    assert "thread_abc123" in content and "run_abc123" in content
    assert "member@example.com" in content
    assert ">12<" in content
    assert "hx-post" not in content
    assert fake.requests == []  # ended runs are never polled


def test_running_run_shows_what_was_last_known_and_asks_for_news_by_post(
    team, connection, member, viewer_client, fake
):
    fake.run_step_seconds = 30
    assistant = make_assistant(team, connection, sync_state="pending")

    run = services.run_start(assistant=assistant, user=member, message="Hi").value
    let_poll(run)
    path = f"/v1/threads/{run.thread_id}/runs/{run.remote_run_id}"
    response = viewer_client.get(url(run))

    content = response.content.decode()
    assert "Queued" in content
    assert fake.requests_to(path) == []  # the page only reads
    refresh_url = reverse("assistants:run_refresh", kwargs={"team_id": team.pk, "run_id": run.pk})
    assert f'hx-post="{refresh_url}"' in content
    assert 'hx-trigger="every 2s"' in content
    # The "Check now" button for pages without JavaScript: it asks, then comes back here.
    assert f'action="{refresh_url}"' in content and "Check now" in content
    response = viewer_client.post(refresh_url)
    assert response.status_code == 302 and response["Location"] == url(run)
    assert len(fake.requests_to(path)) == 1


@pytest.mark.parametrize(
    ("status", "code", "text"),
    [
        ("failed", "server_error", "The provider had an error (5xx)"),
        ("failed", "rate_limit_exceeded", "Rate limit reached (429)"),
        ("failed", "invalid_prompt", "The provider refused the prompt"),
        ("failed", "vector_store_timeout", "The run failed"),
        ("expired", "", "The run expired"),
        ("incomplete", "max_output_tokens", "The answer hit the output token limit"),
        ("incomplete", "max_prompt_tokens", "The conversation is too long"),
        ("incomplete", "content_filter", "stopped by the content filter"),
        ("cancelled", "", "The run was cancelled"),
    ],
)
def test_bad_endings_are_explained(assistant, viewer_client, status, code, text):
    run = make_run(assistant, status=status, last_error_code=code, last_error_message="Sorry.")

    content = viewer_client.get(url(run)).content.decode()

    assert text in content
    if code:
        assert code in content


def test_provider_failure_at_start_uses_the_catalogue(assistant, viewer_client, admin_client_):
    run = make_run(
        assistant,
        status=RunStatus.FAILED,
        thread_id="",
        remote_run_id="",
        last_error_kind="quota_exhausted",
        last_error_code="insufficient_quota",
        last_error_message="You exceeded your current quota.",
    )

    viewer_page = viewer_client.get(url(run)).content.decode()
    admin_page = admin_client_.get(url(run)).content.decode()

    assert "You exceeded your current quota (429)" in viewer_page
    assert "insufficient_quota" not in viewer_page  # provider details: admins only
    assert "insufficient_quota" in admin_page


def test_run_of_a_deleted_assistant_still_reads(assistant, viewer_client):
    run = make_run(assistant)
    assistant.delete()

    content = viewer_client.get(url(run)).content.decode()

    assert "Math Tutor" in content
    assert "deleted" in content


def test_another_teams_run_is_404(team, other_team, fake, member_client):
    foreign = make_run(make_assistant(other_team, fake_connection(other_team, fake)))
    response = member_client.get(
        reverse("assistants:run_detail", kwargs={"team_id": team.pk, "run_id": foreign.pk})
    )
    assert response.status_code == 404


def test_refusals(users, finished_run):
    check_refusals(users, url(finished_run), min_role="viewer")


def test_unknown_run_is_404(team, owner_client):
    response = owner_client.get(
        reverse("assistants:run_detail", kwargs={"team_id": team.pk, "run_id": uuid.uuid4()})
    )
    assert response.status_code == 404


def test_the_title_names_the_assistant_and_when_the_run_started(
    assistant, member, viewer_client, pinned_clock
):
    from django.utils import timezone

    run = make_run(assistant, started_by=member, created_at=timezone.now())

    english = viewer_client.get(url(run)).content.decode()
    spanish = viewer_client.get(url(run), HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert "<h1>“Math Tutor” run, started Nov. 30, 2026, noon</h1>" in english
    assert "<title>“Math Tutor” run, Nov. 30, 2026, noon · Acme" in english
    assert (
        "<h1>Ejecución de «Math Tutor», iniciada el 30 de noviembre de 2026 a las 12:00</h1>"
        in spanish
    )
    assert "<title>Ejecución de «Math Tutor», 30 de noviembre de 2026 a las 12:00 · Acme" in spanish
    assert "Run of" not in english
