"""The team's runs, filtered by assistant and status."""

import uuid

import pytest
from django.urls import reverse

from tests.assistants.helpers import check_refusals, fake_connection, make_assistant, make_run

pytestmark = pytest.mark.django_db


def url(team) -> str:
    return reverse("assistants:runs", kwargs={"team_id": team.pk})


def test_lists_the_teams_runs(team, other_team, connection, fake, member, viewer_client):
    tutor = make_assistant(team, connection, name="Math Tutor")
    make_run(tutor, started_by=member, input="What is 2 + 2?")
    make_run(make_assistant(other_team, fake_connection(other_team, fake)), input="Secret")

    content = viewer_client.get(url(team)).content.decode()

    assert "What is 2 + 2?" in content
    assert "Math Tutor" in content
    assert "Secret" not in content


def test_filters(team, connection, viewer_client):
    tutor = make_assistant(team, connection, name="Math Tutor")
    poet = make_assistant(team, connection, name="Poet")
    make_run(tutor, input="Sum please")
    make_run(poet, input="Verse please", status="failed", last_error_code="server_error")

    by_assistant = viewer_client.get(url(team), {"assistant": poet.pk}).content.decode()
    by_status = viewer_client.get(url(team), {"status": "completed"}).content.decode()
    nothing = viewer_client.get(url(team), {"status": "expired"}).content.decode()

    assert "Verse please" in by_assistant and "Sum please" not in by_assistant
    assert "Sum please" in by_status and "Verse please" not in by_status
    assert "No run matches this filter." in nothing


def test_runs_of_deleted_assistants_keep_their_name(team, connection, viewer_client):
    tutor = make_assistant(team, connection, name="Old Tutor")
    make_run(tutor)
    tutor.delete()

    content = viewer_client.get(url(team)).content.decode()

    assert "Old Tutor" in content and "deleted" in content


def test_empty(team, viewer_client):
    assert "No runs yet." in viewer_client.get(url(team)).content.decode()


def test_refusals(team, users):
    check_refusals(users, url(team), min_role="viewer")


def test_unknown_team_is_404(owner_client):
    response = owner_client.get(reverse("assistants:runs", kwargs={"team_id": uuid.uuid4()}))
    assert response.status_code == 404
