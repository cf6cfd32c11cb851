"""An assistant's page: its settings, where it lives, its recent runs, and the run form."""

import uuid

import pytest
from django.urls import reverse

from tests.assistants.helpers import check_refusals, fake_connection, make_assistant, make_run

pytestmark = pytest.mark.django_db


def url(assistant) -> str:
    return reverse(
        "assistants:detail", kwargs={"team_id": assistant.team_id, "assistant_id": assistant.pk}
    )


def test_shows_settings_sync_state_and_runs(team, connection, member, member_client):
    assistant = make_assistant(
        team,
        connection,
        remote_id="asst_abc123",
        tools=[
            {"type": "code_interpreter"},
            {"type": "function", "function": {"name": "get_weather"}},
        ],
        metadata={"team": "maths"},
        temperature=0.4,
    )
    make_run(assistant, started_by=member, input="What is 2 + 2?")

    response = member_client.get(url(assistant))

    content = response.content.decode()
    assert response.status_code == 200
    assert "asst_abc123" in content
    assert "Synced" in content
    assert "You are a personal math tutor." in content
    assert "get_weather" in content
    assert "team=maths" in content
    assert "What is 2 + 2?" in content
    assert 'name="message"' in content
    assert (
        reverse("assistants:edit", kwargs={"team_id": team.pk, "assistant_id": assistant.pk})
        in content
    )


def test_viewer_has_no_run_form_or_edit_buttons(team, connection, viewer_client, users):
    assistant = make_assistant(team, connection)

    content = viewer_client.get(url(assistant)).content.decode()

    assert 'name="message"' not in content
    assert "Retry sync" not in content
    # Said why, and whom to ask (admins first, then owners).
    assert "You are a viewer in this team" in content
    assert "Ask an admin: admin@example.com, owner@example.com." in content
    assert (
        reverse("assistants:delete", kwargs={"team_id": team.pk, "assistant_id": assistant.pk})
        not in content
    )


def test_a_member_is_not_told_about_the_viewer_role(team, connection, member_client):
    content = member_client.get(url(make_assistant(team, connection))).content.decode()
    assert "You are a viewer in this team" not in content


def test_failed_sync_is_explained_with_a_retry(team, connection, member_client):
    assistant = make_assistant(
        team,
        connection,
        sync_state="failed",
        last_error_kind="quota_exhausted",
        last_error="You exceeded your current quota (429) (insufficient_quota)",
    )

    content = member_client.get(url(assistant)).content.decode()

    assert "Sync failed" in content
    assert "You exceeded your current quota" in content
    assert "Retry sync" in content


def test_gone_remotely_is_said(team, connection, member_client):
    assistant = make_assistant(team, connection, sync_state="gone", remote_id="asst_old")

    content = member_client.get(url(assistant)).content.decode()

    assert "Gone remotely" in content
    assert "Create on the provider again" in content


def test_file_search_left_out_on_the_responses_api(team, fake, member_client):
    connection = fake_connection(team, fake, run_api="responses")
    assistant = make_assistant(team, connection, tools=[{"type": "file_search"}])

    content = member_client.get(url(assistant)).content.decode()

    assert "File search is left out of runs on this connection" in content


def test_another_teams_assistant_is_404(team, other_team, fake, member_client):
    foreign = make_assistant(other_team, fake_connection(other_team, fake))
    response = member_client.get(
        reverse("assistants:detail", kwargs={"team_id": team.pk, "assistant_id": foreign.pk})
    )
    assert response.status_code == 404


def test_refusals(users, assistant):
    check_refusals(users, url(assistant), min_role="viewer")


def test_unknown_assistant_is_404(team, owner_client):
    response = owner_client.get(
        reverse("assistants:detail", kwargs={"team_id": team.pk, "assistant_id": uuid.uuid4()})
    )
    assert response.status_code == 404
