"""An assistant and a run belong to their connection's team: the model's `clean()` says so,
so the services (which call `full_clean()`) and the admin site's forms refuse a mix."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation

from assistants import services
from assistants.models import Assistant, Run
from tests.assistants.helpers import fake_connection
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def su_client(db):
    return client_for(make_user("root@example.com", is_staff=True, is_superuser=True))


@pytest.fixture
def foreign_connection(other_team, fake):
    return fake_connection(other_team, fake, name="Theirs")


def assistant_form(assistant, **overrides) -> dict:
    return {
        "team": assistant.team_id,
        "connection": assistant.connection_id,
        "name": assistant.name,
        "description": "",
        "instructions": assistant.instructions,
        "model": assistant.model,
        "tools": json.dumps(assistant.tools),
        "temperature": "",
        "top_p": "",
        "metadata": "{}",
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        **overrides,
    }


def run_form(run, **overrides) -> dict:
    return {
        "team": run.team_id,
        "assistant": run.assistant_id,
        "assistant_name": run.assistant_name,
        "connection": run.connection_id,
        "backend": run.backend,
        "input": run.input,
        "started_by": "",
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        "input_tokens": "",
        "output_tokens": "",
        "total_tokens": "",
        "output_text": run.output_text,
        "last_error_code": "",
        "last_error_message": "",
        "last_error_kind": "",
        **overrides,
    }


# --- full_clean() ------------------------------------------------------------------------------


def test_an_assistant_of_one_team_on_anothers_connection_is_invalid(
    team, other_team, connection, foreign_connection
):
    for assistant in (
        Assistant(team=team, connection=foreign_connection, name="A", model="gpt-4o"),
        Assistant(team=other_team, connection=connection, name="A", model="gpt-4o"),
    ):
        with pytest.raises(ValidationError) as raised:
            assistant.full_clean()
        assert raised.value.message_dict == {
            "connection": ["This connection belongs to another team than the assistant."]
        }
    Assistant(team=team, connection=connection, name="A", model="gpt-4o").full_clean()


def test_a_run_must_share_the_team_of_its_connection_and_assistant(
    team, other_team, assistant, finished_run, foreign_connection
):
    finished_run.full_clean()

    finished_run.team = other_team
    with pytest.raises(ValidationError) as raised:
        finished_run.full_clean()
    assert raised.value.message_dict == {
        "connection": ["This connection belongs to another team than the run."],
        "assistant": ["This assistant belongs to another team than the run."],
    }

    finished_run.team = team
    finished_run.connection = foreign_connection
    with pytest.raises(ValidationError) as raised:
        finished_run.full_clean()
    assert list(raised.value.message_dict) == ["connection"]

    # A run whose assistant was deleted is still checked against its connection.
    finished_run.connection = assistant.connection
    finished_run.assistant = None
    finished_run.full_clean()


def test_the_message_is_translated(team, foreign_connection):
    assistant = Assistant(team=team, connection=foreign_connection, name="A", model="gpt-4o")
    with translation.override("es"):
        with pytest.raises(ValidationError) as raised:
            assistant.full_clean()
        assert raised.value.message_dict["connection"] == [
            "Esta conexión es de un equipo distinto al del asistente."
        ]


# --- the services --------------------------------------------------------------------------


def test_the_services_refuse_an_assistant_whose_team_and_connection_disagree(
    team, other_team, assistant, member, fake
):
    """A row saved before this check (or by hand) is refused before anything is written or
    sent: neither an edit nor a run goes through."""
    Assistant.objects.filter(pk=assistant.pk).update(team=other_team)
    assistant.refresh_from_db()

    with pytest.raises(ValidationError):
        services.assistant_update(
            assistant=assistant,
            user=member,
            data={"name": "Renamed", "instructions": "", "model": "gpt-4o", "tools": []},
        )
    with pytest.raises(ValidationError):
        services.run_start(assistant=assistant, user=member, message="What is 2 + 2?")

    assert Run.objects.count() == 0
    assert Assistant.objects.get().name == "Math Tutor"
    assert not [request for request in fake.requests if request.method == "POST"]


# --- the admin site ----------------------------------------------------------------------------


def test_the_admin_cannot_move_an_assistant_to_another_teams_connection(
    su_client, team, assistant, foreign_connection
):
    """Team and connection are read-only once the assistant exists: a form that names others
    changes neither (the services cannot move an assistant either)."""
    url = reverse("admin:assistants_assistant_change", args=[assistant.pk])

    response = su_client.post(url, assistant_form(assistant, connection=foreign_connection.pk))

    assert response.status_code == 302
    assistant.refresh_from_db()
    assert assistant.connection.team == team


def test_the_admin_cannot_move_an_assistant_to_another_team(su_client, team, other_team, assistant):
    url = reverse("admin:assistants_assistant_change", args=[assistant.pk])
    page = su_client.get(url).content.decode()
    assert 'name="team"' not in page and 'name="connection"' not in page

    response = su_client.post(url, assistant_form(assistant, team=other_team.pk))

    assert response.status_code == 302
    assistant.refresh_from_db()
    assert assistant.team == team


def test_the_admin_still_saves_a_consistent_assistant(su_client, assistant):
    url = reverse("admin:assistants_assistant_change", args=[assistant.pk])

    response = su_client.post(url, assistant_form(assistant, name="Renamed"))

    assert response.status_code == 302
    assistant.refresh_from_db()
    assert assistant.name == "Renamed"


def test_the_admin_refuses_adding_an_assistant_across_teams(
    su_client, team, assistant, foreign_connection
):
    url = reverse("admin:assistants_assistant_add")

    response = su_client.post(url, assistant_form(assistant, connection=foreign_connection.pk))

    assert response.status_code == 200
    assert "This connection belongs to another team than the assistant." in (
        response.content.decode()
    )
    assert Assistant.objects.count() == 1


def test_the_admin_shows_runs_and_changes_none(
    su_client, team, other_team, finished_run, foreign_connection
):
    """A run is a record of what the provider did: the admin shows it, and a form sent to it
    (another team, another connection) changes nothing."""
    url = reverse("admin:assistants_run_change", args=[finished_run.pk])
    assert su_client.get(url).status_code == 200

    response = su_client.post(url, run_form(finished_run, team=other_team.pk))
    assert response.status_code == 403
    response = su_client.post(url, run_form(finished_run, connection=foreign_connection.pk))
    assert response.status_code == 403
    assert su_client.get(reverse("admin:assistants_run_add")).status_code == 403

    finished_run.refresh_from_db()
    assert finished_run.team == team and finished_run.connection.team == team
