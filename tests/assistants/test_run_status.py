"""The live status fragment (htmx): polls itself while the run goes on, stops when it ends, and
asks the provider at most about once a second however many pages watch."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse

from assistants import services
from assistants.models import RunStatus
from assistants.services import runs
from fakeprovider import Reply
from tests.assistants.helpers import check_refusals, fake_connection, let_poll, make_run, poll
from tests.connections.helpers import make_unreadable

pytestmark = pytest.mark.django_db


def url(run) -> str:
    return reverse("assistants:run_status", kwargs={"team_id": run.team_id, "run_id": run.pk})


def refresh_url(run) -> str:
    return reverse("assistants:run_refresh", kwargs={"team_id": run.team_id, "run_id": run.pk})


@pytest.fixture
def running(assistant, member, fake):
    fake.run_step_seconds = 30
    return let_poll(services.run_start(assistant=assistant, user=member, message="Hi").value)


def test_running_fragment_polls_itself(running, member_client):
    response = poll(member_client, running)

    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in content
    assert 'id="run-status"' in content
    assert f'hx-post="{refresh_url(running)}"' in content
    assert '"X-CSRFToken": "' in content
    assert 'hx-trigger="every 2s"' in content
    assert 'hx-swap="outerHTML"' in content
    assert "Queued" in content
    assert "Cancel run" in content


def test_fragment_stops_polling_and_shows_the_output_once_done(running, fake, member_client):
    fake.run_step_seconds = 0

    content = poll(member_client, running).content.decode()

    assert "Completed" in content
    assert "You said: Hi" in content
    assert "hx-post" not in content
    assert "Cancel run" not in content


def test_many_watchers_cause_one_provider_call_a_second(
    running, fake, viewer_client, member_client, monkeypatch
):
    path = f"/v1/threads/{running.thread_id}/runs/{running.remote_run_id}"
    # However slow this machine is, the watchers below come within one interval.
    monkeypatch.setattr(runs, "POLL_INTERVAL", timedelta(seconds=60))

    for client in (viewer_client, member_client, viewer_client, member_client):
        assert poll(client, running).status_code == 200

    assert len(fake.requests_to(path, "GET")) == 1
    let_poll(running)  # the interval has passed
    poll(member_client, running)
    assert len(fake.requests_to(path, "GET")) == 2


def test_viewer_sees_no_cancel_button(running, viewer_client):
    assert "Cancel run" not in viewer_client.get(url(running)).content.decode()


def test_a_lasting_failure_to_ask_stops_polling_and_is_explained(running, fake, member_client):
    fake.queue(Reply.error(401, "Bad key", "invalid_request_error", "invalid_api_key"))

    content = poll(member_client, running).content.decode()

    assert "Tablero could not ask the provider about this run" in content
    assert "Invalid authentication (401)" in content
    assert "hx-post" not in content
    assert "Check now" in content


def test_a_passing_failure_keeps_polling(running, fake, member_client):
    fake.queue(Reply.error(429, "Slow down", "requests", "rate_limit_exceeded"), times=3)

    content = poll(member_client, running).content.decode()

    assert "Rate limit reached (429)" in content
    assert "hx-post" in content


def test_ended_run_is_not_asked_about(finished_run, fake, viewer_client):
    content = viewer_client.get(url(finished_run)).content.decode()
    assert "Completed" in content and "hx-post" not in content
    assert fake.requests == []


def test_refusals(users, finished_run):
    check_refusals(users, url(finished_run), min_role="viewer")


def test_unknown_run_is_404(team, owner_client):
    response = owner_client.get(
        reverse("assistants:run_status", kwargs={"team_id": team.pk, "run_id": uuid.uuid4()})
    )
    assert response.status_code == 404


def test_status_values_render(assistant, viewer_client):
    for status in RunStatus.values:
        run = make_run(assistant, status=status)
        assert viewer_client.get(url(run)).status_code == 200


def test_a_key_that_no_longer_decrypts_is_explained(team, running, fake, member_client):
    other = fake_connection(team, fake, name="Other")
    make_unreadable(running.connection, other=other)
    count = len(fake.requests)

    content = poll(member_client, running).content.decode()

    assert "The stored key can&#x27;t be read" in content
    assert "hx-post" not in content
    assert len(fake.requests) == count
