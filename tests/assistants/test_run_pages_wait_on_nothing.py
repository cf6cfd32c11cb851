"""The run pages never wait on the provider: starting, watching and cancelling a run answer at
once with what Tablero knows and queue the provider work, which a consumer does later.

Huey runs as a deployment has it here (`queued`): a task waits in the queue until the test
runs it, so "the page answered without asking the provider" is seen in the fake's requests."""

import uuid

import pytest
from django.urls import reverse
from huey.contrib.djhuey import HUEY

from assistants import services
from assistants.models import Run, RunStatus
from fakeprovider.keys import KEY_INVALID, KEY_SLOW
from tests.assistants.helpers import fake_connection, let_poll, make_assistant, poll
from tests.conftest import client_for
from tests.taskqueue import empty_queue, queued, queued_names, run_queued  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("queued")]


def start_url(assistant) -> str:
    return reverse(
        "assistants:run_start", kwargs={"team_id": assistant.team_id, "assistant_id": assistant.pk}
    )


def detail_url(run) -> str:
    return reverse("assistants:run_detail", kwargs={"team_id": run.team_id, "run_id": run.pk})


def cancel_url(run) -> str:
    return reverse("assistants:run_cancel", kwargs={"team_id": run.team_id, "run_id": run.pk})


def test_starting_a_run_answers_queued_and_a_task_starts_it(assistant, fake, member_client):
    response = member_client.post(
        start_url(assistant),
        {"message": "What is 2 + 2?", "submission_token": str(uuid.uuid4())},
        follow=True,
    )

    assert response.status_code == 200
    run = Run.objects.get()
    assert run.status == RunStatus.QUEUED
    content = response.content.decode()
    assert "Queued" in content
    assert "Tablero is starting the run at the provider." in content
    assert fake.requests == []  # the page asked nothing
    assert queued_names() == ["run_begin_task"]

    run_queued()  # the consumer: brings the assistant there, starts the run, follows it

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert fake.requests_to("/v1/assistants", "POST")
    assert fake.requests_to("/v1/threads/runs", "POST")
    assert "You said: What is 2 + 2?" in member_client.get(detail_url(run)).content.decode()


def test_the_same_form_sent_twice_starts_one_run(assistant, fake, member_client):
    form = {"message": "Hi", "submission_token": str(uuid.uuid4())}
    member_client.post(start_url(assistant), form)
    response = member_client.post(start_url(assistant), form, follow=True)

    assert "This was already submitted" in response.content.decode()
    run_queued()
    assert Run.objects.count() == 1
    assert len(fake.requests_to("/v1/threads/runs", "POST")) == 1


def test_a_start_the_provider_refuses_lands_on_the_run(team, owner, member, member_client, fake):
    fake.assistants_api_removed = True
    connection = fake_connection(team, fake, created_by=owner, key=KEY_INVALID)
    assistant = make_assistant(team, connection, created_by=member)

    member_client.post(start_url(assistant), {"message": "Hi"})
    run = Run.objects.get()
    assert run.status == RunStatus.QUEUED
    run_queued()

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.last_error_kind
    content = member_client.get(detail_url(run)).content.decode()
    assert "Failed" in content


def test_watching_a_run_asks_nothing_and_queues_its_follower(assistant, member, fake):
    fake.run_step_seconds = 30
    run = services.run_start(assistant=assistant, user=member, message="Hi").value
    let_poll(run)
    fake.requests.clear()
    client = client_for(member)
    first = poll(client, run)
    second = poll(client, run)

    assert first.status_code == second.status_code == 200
    assert 'id="run-status"' in first.content.decode()
    assert fake.requests == []
    assert queued_names() == ["run_poll"]  # one follower, however many ask

    HUEY.execute(HUEY.dequeue())  # the consumer takes the follower's first step
    assert fake.requests_to(f"/v1/threads/{run.thread_id}/runs/{run.remote_run_id}", "GET")


def test_check_now_without_javascript_comes_back_at_once(assistant, member, fake):
    fake.run_step_seconds = 30
    run = let_poll(services.run_start(assistant=assistant, user=member, message="Hi").value)
    fake.requests.clear()
    response = client_for(member).post(
        reverse("assistants:run_refresh", kwargs={"team_id": run.team_id, "run_id": run.pk})
    )

    assert response.status_code == 302
    assert response["Location"] == detail_url(run)
    assert fake.requests == []
    assert queued_names() == ["run_poll"]


def test_watching_a_run_on_a_slow_provider_does_not_wait(team, owner, member, fake, member_client):
    """The provider sleeps on every call with this key; the page's POST reaches it not."""
    fake.slow_seconds = 30
    connection = fake_connection(team, fake, created_by=owner, key=KEY_SLOW)
    assistant = make_assistant(team, connection, created_by=member)
    run = Run.objects.create(
        team=team,
        assistant=assistant,
        assistant_name=assistant.name,
        connection=connection,
        backend="responses",
        input="Hi",
        status=RunStatus.IN_PROGRESS,
        response_id="resp_slow",
    )

    response = poll(member_client, run)

    assert response.status_code == 200
    assert "In progress" in response.content.decode()
    assert fake.requests == []
    assert queued_names() == ["run_poll"]


def test_cancelling_answers_cancelling_and_a_task_cancels(assistant, member, fake):
    fake.run_step_seconds = 30
    run = services.run_start(assistant=assistant, user=member, message="Think [slow]").value
    fake.requests.clear()
    client = client_for(member)
    response = client.post(cancel_url(run), follow=True)

    content = response.content.decode()
    assert "Cancellation requested." in content
    assert "Cancelling…" in content
    assert "Cancel run" not in content  # asked once
    assert fake.requests == []
    assert "run_cancel_task" in queued_names()

    run_queued()

    run.refresh_from_db()
    assert run.status in (RunStatus.CANCELLING, RunStatus.CANCELLED)
    assert fake.requests_to(f"/v1/threads/{run.thread_id}/runs/{run.remote_run_id}/cancel", "POST")
    assert "Cancelling…" not in client.get(detail_url(run)).content.decode()


def test_a_run_cancelled_before_its_start_is_never_started(assistant, fake, member_client):
    member_client.post(start_url(assistant), {"message": "Hi"})
    run = Run.objects.get()
    member_client.post(cancel_url(run))

    begin, cancel = HUEY.dequeue(), HUEY.dequeue()
    HUEY.execute(cancel)  # a second consumer took the cancel first
    HUEY.execute(begin)
    run_queued()

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert not fake.requests_to("/v1/threads/runs", "POST")
    assert not fake.requests_to("/v1/responses", "POST")
    assistant.refresh_from_db()
    assert not assistant.sync_in_progress  # its claim was given back
