"""Filters stay small whatever the size of the team: no select lists every assistant, member
or connection; a row's own link filters by it, and a plain text field searches by name."""

from django.urls import reverse

from accounts.services import audit_log
from tests.assistants.helpers import make_assistant, make_run
from tests.connections.helpers import make_connection


def _body(client, url, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def _filters(body: str) -> str:
    return body.split('class="filters"')[1].split("</form>")[0]


def test_runs_filter_by_a_rows_assistant_or_by_name(admin_client_, admin_user, team):
    connection = make_connection(team)
    tutor = make_assistant(team, connection, name="Math Tutor")
    writer = make_assistant(team, connection, name="Writer")
    make_run(tutor, input="Tutor question")
    make_run(writer, input="Writer question")
    url = reverse("assistants:runs", args=[team.pk])

    body = _body(admin_client_, url)
    assert "<option" not in _filters(body).split('name="status"')[0]  # no assistant select
    assert f'href="?assistant={tutor.pk}"' in body

    only_tutor = _body(admin_client_, url, assistant=tutor.pk)
    assert "Tutor question" in only_tutor and "Writer question" not in only_tutor
    assert "Assistant: Math Tutor" in only_tutor
    assert f'type="hidden" name="assistant" value="{tutor.pk}"' in only_tutor

    by_name = _body(admin_client_, url, q="writ")
    assert "Writer question" in by_name and "Tutor question" not in by_name


def test_assistants_filter_by_a_rows_connection(admin_client_, team):
    production = make_connection(team, name="Production")
    lab = make_connection(team, name="Lab", key="sk-test-ok-000000000000lab1")
    make_assistant(team, production, name="Prod helper")
    make_assistant(team, lab, name="Lab helper")
    url = reverse("assistants:list", args=[team.pk])

    body = _body(admin_client_, url)
    assert "<select" not in _filters(body)
    assert f'href="?connection={lab.pk}"' in body
    only_lab = _body(admin_client_, url, connection=lab.pk)
    assert "Lab helper" in only_lab and "Prod helper" not in only_lab
    assert "Connection: Lab" in only_lab


def test_another_teams_assistant_is_not_a_filter(admin_client_, team, other_team):
    theirs = make_assistant(other_team, make_connection(other_team), name="Theirs")
    body = _body(admin_client_, reverse("assistants:runs", args=[team.pk]), assistant=theirs.pk)
    assert "Select a valid choice." in body
    assert "Theirs" not in body


def test_audit_offers_no_member_or_connection_select(admin_client_, users, team):
    connection = make_connection(team)
    audit_log(team=team, actor=users["member"], action="connection.test", target=connection)
    body = _body(admin_client_, reverse("accounts:audit", args=[team.pk]))
    form = body.split('aria-label="Filters"')[1].split("</form>")[0]
    assert "member@example.com" not in form
    assert 'type="hidden" name="actor"' in form and 'type="hidden" name="connection"' in form


def test_usage_filters_connections_by_name(admin_client_, admin_user, team):
    production = make_connection(team, name="Production")
    lab = make_connection(team, name="Lab", key="sk-test-ok-000000000000lab1")
    make_run(make_assistant(team, production, name="Prod helper"), started_by=admin_user)
    make_run(make_assistant(team, lab, name="Lab helper"), started_by=admin_user)
    url = reverse("assistants:usage", args=[team.pk])

    body = _body(admin_client_, url)
    assert "<select" not in _filters(body)
    by_name = _body(admin_client_, url, connection_name="lab")
    assert "Lab helper" in by_name and "Prod helper" not in by_name
    by_id = _body(admin_client_, url, connection=production.pk)
    assert "Prod helper" in by_id and "Connection: Production" in by_id
