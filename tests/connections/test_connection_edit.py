import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from connections.models import RunApi
from tests.conftest import client_for
from tests.connections.helpers import make_connection

pytestmark = pytest.mark.django_db


def url(connection) -> str:
    return reverse(
        "connections:edit",
        kwargs={"team_id": connection.team_id, "connection_id": connection.pk},
    )


def data(**overrides) -> dict:
    return {
        "name": "Research",
        "organization_id": "org-new",
        "project_id": "proj_new",
        "api_version": "",
        "run_api": "responses",
        **overrides,
    }


def test_form_is_filled_in(admin_client_, team):
    connection = make_connection(team, organization_id="org-old")
    page = admin_client_.get(url(connection)).content.decode()
    assert 'value="Production"' in page
    assert 'value="org-old"' in page
    # The settings form has no base URL: it changes on its own form, with the key.
    settings_form = page.split('id="base-url"')[0]
    assert 'name="base_url"' not in settings_form


def test_the_base_url_changes_from_here_with_the_key_asked_again(admin_client_, team):
    connection = make_connection(team)
    page = admin_client_.get(url(connection)).content.decode()
    section = page.split('id="base-url"')[1].split("</section>")[0]
    replace = reverse("connections:replace_key", args=[team.pk, connection.pk])
    assert f'action="{replace}"' in section
    assert 'name="base_url"' in section
    assert 'value="http://127.0.0.1:9/v1"' in section
    assert 'name="api_key"' in section
    assert "only ever sent to the server it was entered for" in section
    assert section.index('name="base_url"') < section.index('name="api_key"')


def test_api_version_is_offered_only_for_azure(admin_client_, team):
    plain = make_connection(team)
    azure = make_connection(team, name="Azure", provider="azure", api_version="2024-10-21")
    assert 'name="api_version"' not in admin_client_.get(url(plain)).content.decode()
    assert 'value="2024-10-21"' in admin_client_.get(url(azure)).content.decode()
    # Saving the plain one keeps its (empty) version without the field.
    response = admin_client_.post(url(plain), {**data(), "api_version": "ignored"})
    assert response.status_code == 302
    plain.refresh_from_db()
    assert plain.api_version == ""


def test_saves_settings_and_audits(admin_client_, admin_user, team):
    connection = make_connection(team)
    key_before = connection.api_key_encrypted

    response = admin_client_.post(url(connection), data(), follow=True)

    assert "Connection updated." in response.content.decode()
    connection.refresh_from_db()
    assert (connection.name, connection.organization_id, connection.project_id) == (
        "Research",
        "org-new",
        "proj_new",
    )
    assert connection.run_api == RunApi.RESPONSES
    assert connection.api_key_encrypted == key_before
    event = AuditEvent.objects.get(action="connection.update")
    assert event.actor == admin_user
    assert event.data["changed"] == ["name", "organization_id", "project_id", "run_api"]


def test_base_url_cannot_change_here(admin_client_, team):
    connection = make_connection(team)
    admin_client_.post(url(connection), data(base_url="https://evil.example/v1"))
    connection.refresh_from_db()
    assert connection.base_url == "http://127.0.0.1:9/v1"


def test_name_clash_is_an_error_and_nothing_is_lost(admin_client_, team):
    make_connection(team, name="Taken")
    connection = make_connection(team)
    response = admin_client_.post(url(connection), data(name="taken"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "already has a connection with this name" in page
    assert 'value="org-new"' in page
    connection.refresh_from_db()
    assert connection.name == "Production"


def test_an_id_no_header_can_carry_is_a_form_error(admin_client_, team):
    connection = make_connection(team, organization_id="org-old")
    response = admin_client_.post(url(connection), data(organization_id="org–new"))
    assert response.status_code == 200
    assert "without spaces or accents" in response.content.decode()
    connection.refresh_from_db()
    assert connection.organization_id == "org-old"


def test_keeping_its_own_name_is_fine(admin_client_, team):
    connection = make_connection(team)
    response = admin_client_.post(url(connection), data(name="Production"))
    assert response.status_code == 302


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_lower_roles_are_refused(users, team, role):
    connection = make_connection(team)
    client = client_for(users[role])
    assert client.get(url(connection)).status_code == 403
    assert client.post(url(connection), data()).status_code == 403
    connection.refresh_from_db()
    assert connection.name == "Production"


def test_outsider_gets_404(outsider_client, team):
    assert outsider_client.get(url(make_connection(team))).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, team):
    assert client.get(url(make_connection(team))).status_code == 302
