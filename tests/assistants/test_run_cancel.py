"""Cancelling a queued or running run."""

import uuid

import pytest
from django.urls import reverse

from assistants import services
from assistants.models import Run, RunStatus
from fakeprovider import Reply
from tests.assistants.helpers import check_refusals

pytestmark = pytest.mark.django_db


def url(run) -> str:
    return reverse("assistants:run_cancel", kwargs={"team_id": run.team_id, "run_id": run.pk})


@pytest.fixture
def slow_run(assistant, member, fake):
    return services.run_start(assistant=assistant, user=member, message="Think [slow]").value


def test_cancel_on_the_assistants_api(slow_run, fake, member_client):
    response = member_client.post(url(slow_run), follow=True)

    slow_run.refresh_from_db()
    assert slow_run.status in (RunStatus.CANCELLING, RunStatus.CANCELLED)
    assert fake.requests_to(
        f"/v1/threads/{slow_run.thread_id}/runs/{slow_run.remote_run_id}/cancel", "POST"
    )
    assert "Cancellation requested." in response.content.decode()


def test_cancel_on_the_responses_api(assistant, member, fake, member_client):
    fake.assistants_api_removed = True
    run = services.run_start(assistant=assistant, user=member, message="Think [slow]").value

    response = member_client.post(url(run), follow=True)

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    content = response.content.decode()
    assert "Cancelled" in content
    assert "The run was cancelled" in content


def test_ended_run_has_nothing_to_cancel(finished_run, fake, member_client):
    response = member_client.post(url(finished_run), follow=True)

    assert "nothing to cancel" in response.content.decode()
    assert fake.requests == []


def test_failure_is_explained(slow_run, fake, member_client):
    fake.queue(Reply.error(403, "No access.", "invalid_request_error", None))

    response = member_client.post(url(slow_run), follow=True)

    content = response.content.decode()
    assert "Cancellation requested." in content
    assert "The run could not be cancelled:" in content
    assert "Access denied (403)" in content
    assert Run.objects.get(pk=slow_run.pk).status == RunStatus.IN_PROGRESS


def test_refusals(users, slow_run, fake):
    check_refusals(users, url(slow_run), min_role="member", method="post")
    assert not [r for r in fake.requests if r.path.endswith("/cancel")]


def test_get_asks_first_and_changes_nothing(slow_run, fake, member_client):
    before = len(fake.requests)

    response = member_client.get(url(slow_run))

    content = response.content.decode()
    assert response.status_code == 200
    assert "This asks the provider to stop the run of “Math Tutor”." in content
    assert f'action="{url(slow_run)}"' in content
    assert "Keep it running" in content
    assert len(fake.requests) == before
    assert Run.objects.get(pk=slow_run.pk).status == slow_run.status


def test_get_of_an_ended_run_says_there_is_nothing_to_cancel(finished_run, member_client):
    content = member_client.get(url(finished_run)).content.decode()

    assert "nothing to cancel" in content
    assert "Keep it running" not in content


def test_get_refusals(users, slow_run, fake):
    check_refusals(users, url(slow_run), min_role="member")


def test_run_page_links_to_the_question_not_to_the_cancel_itself(slow_run, member_client):
    detail = reverse(
        "assistants:run_detail", kwargs={"team_id": slow_run.team_id, "run_id": slow_run.pk}
    )
    content = member_client.get(detail).content.decode()

    assert f'href="{url(slow_run)}"' in content
    assert f'action="{url(slow_run)}"' not in content


def test_unknown_run_is_404(team, owner_client):
    response = owner_client.post(
        reverse("assistants:run_cancel", kwargs={"team_id": team.pk, "run_id": uuid.uuid4()})
    )
    assert response.status_code == 404
