"""Looking up any run on a connection by its ids (the seed's "Corridas"); nothing is stored."""

import uuid

import pytest
from django.urls import reverse

from assistants import services
from assistants.models import Run
from tests.assistants.helpers import check_refusals, fake_connection

pytestmark = pytest.mark.django_db


def url(team) -> str:
    return reverse("assistants:run_lookup", kwargs={"team_id": team.pk})


def test_form(team, connection, viewer_client):
    response = viewer_client.get(url(team))
    content = response.content.decode()
    assert response.status_code == 200
    assert 'name="thread_id"' in content and 'name="response_id"' in content
    assert "Fake" in content


def test_lookup_a_thread_run(team, connection, assistant, member, viewer_client, fake):
    run = services.run_start(assistant=assistant, user=member, message="What is 2 + 2?").value
    count = Run.objects.count()

    response = viewer_client.get(
        url(team),
        {"connection": connection.pk, "thread_id": run.thread_id, "run_id": run.remote_run_id},
    )

    content = response.content.decode()
    assert "Completed" in content
    assert "You said: What is 2 + 2?" in content
    assert "This run was started from Tablero" in content
    assert Run.objects.count() == count
    request = fake.requests_to(f"/v1/threads/{run.thread_id}/runs/{run.remote_run_id}")[-1]
    assert request.headers["openai-beta"] == "assistants=v2"


def test_lookup_a_response(team, connection, assistant, member, viewer_client, fake):
    fake.assistants_api_removed = True
    run = services.run_start(assistant=assistant, user=member, message="Hi [incomplete]").value

    content = viewer_client.get(
        url(team), {"connection": connection.pk, "response_id": run.response_id}
    ).content.decode()

    assert "Incomplete" in content
    assert "The answer hit the output token limit" in content


def test_unknown_run_is_explained(team, connection, viewer_client, fake):
    response = viewer_client.get(
        url(team), {"connection": connection.pk, "thread_id": "thread_x", "run_id": "run_x"}
    )

    assert response.status_code == 200
    assert "Not found (404)" in response.content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"thread_id": "thread_x"}, "Give a thread ID and a run ID"),
        ({"response_id": "resp_x", "run_id": "run_x"}, "not both"),
        ({"thread_id": "../models", "run_id": "run_x"}, "An ID is up to 1024 letters, digits"),
    ],
)
def test_bad_ids_are_refused_without_asking(team, connection, viewer_client, fake, data, message):
    response = viewer_client.get(url(team), {"connection": connection.pk, **data})

    assert message in response.content.decode()
    assert fake.requests == []


def test_another_teams_connection_is_refused(team, other_team, connection, fake, viewer_client):
    foreign = fake_connection(other_team, fake, name="Foreign")

    response = viewer_client.get(url(team), {"connection": foreign.pk, "response_id": "resp_x"})

    assert "Select a valid choice" in response.content.decode()
    assert fake.requests == []


def test_refusals(team, users):
    check_refusals(users, url(team), min_role="viewer")


def test_unknown_team_is_404(owner_client):
    response = owner_client.get(reverse("assistants:run_lookup", kwargs={"team_id": uuid.uuid4()}))
    assert response.status_code == 404
