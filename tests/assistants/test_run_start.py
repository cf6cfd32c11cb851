"""Starting a run from an assistant's page, on both run APIs."""

import uuid

import pytest
from django.urls import reverse

from assistants.models import Run, RunStatus
from fakeprovider import KEY_QUOTA
from tests.assistants.helpers import check_refusals, fake_connection, make_assistant

pytestmark = pytest.mark.django_db


def url(assistant) -> str:
    return reverse(
        "assistants:run_start", kwargs={"team_id": assistant.team_id, "assistant_id": assistant.pk}
    )


@pytest.mark.parametrize("api_removed", [False, True])
def test_run_starts_and_opens_its_page(team, assistant, fake, member, member_client, api_removed):
    fake.assistants_api_removed = api_removed
    fake.run_step_seconds = 30

    response = member_client.post(url(assistant), {"message": "What is 2 + 2?"})

    run = Run.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "assistants:run_detail", kwargs={"team_id": team.pk, "run_id": run.pk}
    )
    assert run.started_by == member
    assert run.input == "What is 2 + 2?"
    assert run.status == RunStatus.QUEUED
    if api_removed:
        assert run.backend == "responses" and run.response_id
        assert fake.requests_to("/v1/responses", "POST")[0].json["input"] == "What is 2 + 2?"
    else:
        assert run.backend == "assistants" and run.thread_id and run.remote_run_id
        sent = fake.requests_to("/v1/threads/runs", "POST")[0].json
        assert sent["thread"]["messages"] == [{"role": "user", "content": "What is 2 + 2?"}]


def test_empty_message_is_refused_on_the_page(assistant, fake, member_client):
    response = member_client.post(url(assistant), {"message": "   "})

    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not Run.objects.exists()
    assert fake.requests == []


def test_provider_failure_is_explained_on_the_runs_page(team, fake, member_client):
    connection = fake_connection(team, fake, key=KEY_QUOTA, run_api="responses")
    assistant = make_assistant(team, connection)

    response = member_client.post(url(assistant), {"message": "Hi"}, follow=True)

    assert response.status_code == 200
    run = Run.objects.get()
    assert run.status == RunStatus.FAILED
    content = response.content.decode()
    assert "Failed" in content
    assert "You exceeded your current quota" in content


def test_refusals(users, assistant, fake):
    check_refusals(users, url(assistant), min_role="member", method="post", data={"message": "Hi"})
    assert not Run.objects.exists()
    assert fake.requests == []


def test_get_is_not_allowed(assistant, member_client):
    assert member_client.get(url(assistant)).status_code == 405


def test_unknown_assistant_is_404(team, owner_client):
    response = owner_client.post(
        reverse("assistants:run_start", kwargs={"team_id": team.pk, "assistant_id": uuid.uuid4()}),
        {"message": "Hi"},
    )
    assert response.status_code == 404
