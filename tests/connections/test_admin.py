import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from accounts.models import AuditEvent
from connections.admin import ConnectionAdminForm
from connections.models import Connection, ConnectionErrorEvent, Health
from fakeprovider import KEY_INVALID, KEY_OK
from tests.conftest import client_for, make_user
from tests.connections.helpers import make_connection

pytestmark = pytest.mark.django_db

NEW_KEY = "sk-test-ok-adminform0000wxyz"


@pytest.fixture
def superuser(db):
    return make_user("root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def su_client(superuser):
    return client_for(superuser)


def change_url(connection) -> str:
    return reverse("admin:connections_connection_change", args=[connection.pk])


def form_data(connection, **overrides) -> dict:
    return {
        "team": connection.team_id,
        "name": connection.name,
        "provider": connection.provider,
        "base_url": connection.base_url,
        "organization_id": "",
        "project_id": "",
        "api_version": "",
        "run_api": "auto",
        "new_api_key": "",
        "new_admin_key": "",
        **overrides,
    }


def test_changelist_shows_masked_keys_only(su_client, team):
    connection = make_connection(team, key=KEY_OK)
    page = su_client.get(reverse("admin:connections_connection_changelist")).content.decode()
    assert "Production" in page
    assert "sk-…abcd" in page
    assert KEY_OK not in page
    assert connection.api_key_encrypted not in page


def test_change_page_has_no_encrypted_field(su_client, team):
    connection = make_connection(team, key=KEY_OK)
    page = su_client.get(change_url(connection)).content.decode()
    assert "sk-…abcd" in page
    assert "New API key" in page and "New admin key" in page
    assert "api_key_encrypted" not in page
    assert connection.api_key_encrypted not in page
    assert KEY_OK not in page


def test_a_new_key_is_encrypted_and_audited(su_client, superuser, team):
    connection = make_connection(team, key=KEY_OK)
    response = su_client.post(change_url(connection), form_data(connection, new_api_key=NEW_KEY))
    assert response.status_code == 302, response.context["adminform"].form.errors
    connection.refresh_from_db()
    assert connection.api_key() == NEW_KEY
    assert connection.masked_key == "sk-…wxyz"
    event = AuditEvent.objects.get(action="connection.update")
    assert event.actor == superuser
    assert event.data["api_key_last4"] == "wxyz"
    assert NEW_KEY not in str(event.data)


def test_an_admin_key_can_be_set(su_client, team):
    connection = make_connection(team)
    su_client.post(
        change_url(connection), form_data(connection, new_admin_key="sk-admin-test-ok-00000adm1")
    )
    connection.refresh_from_db()
    assert connection.admin_key() == "sk-admin-test-ok-00000adm1"
    assert connection.masked_admin_key == "sk-admin-…adm1"


def test_empty_key_field_keeps_the_key(su_client, team):
    connection = make_connection(team, key=KEY_OK)
    su_client.post(change_url(connection), form_data(connection, organization_id="org-x"))
    connection.refresh_from_db()
    assert connection.api_key() == KEY_OK
    assert connection.organization_id == "org-x"


def test_an_id_no_header_can_carry_is_refused(su_client, team):
    connection = make_connection(team)
    response = su_client.post(change_url(connection), form_data(connection, project_id="proj é"))
    assert response.status_code == 200
    assert "without spaces or accents" in response.content.decode()
    connection.refresh_from_db()
    assert connection.project_id == ""


def test_error_report_of_a_crash_hides_the_new_keys(superuser, team, monkeypatch):
    """Django's admin does not mark its POST data sensitive; ours must, for the new keys."""
    connection = make_connection(team)

    def crash(self, *args, **kwargs):
        raise RuntimeError("unexpected bug while saving")

    monkeypatch.setattr(ConnectionAdminForm, "save", crash)
    request = RequestFactory().post(
        change_url(connection),
        form_data(connection, new_api_key=NEW_KEY, new_admin_key="sk-admin-test-crash-0000zz"),
    )
    request.user = superuser
    request._dont_enforce_csrf_checks = True
    model_admin = admin.site._registry[Connection]
    with pytest.raises(RuntimeError) as caught:
        model_admin.change_view(request, str(connection.pk))

    error = caught.value
    reporter = ExceptionReporter(request, type(error), error, error.__traceback__, is_email=True)
    post = SafeExceptionReporterFilter().get_post_parameters(request)
    assert post["new_api_key"] == post["new_admin_key"] == "********************"
    assert post["name"] == connection.name
    text = reporter.get_traceback_text()
    assert "unexpected bug while saving" in text
    assert "new_api_key = '********************'" in text
    assert NEW_KEY not in text and "sk-admin-test-crash" not in text


def test_base_url_changes_only_with_a_key(su_client, team, settings):
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = ["127.0.0.1"]
    connection = make_connection(team)
    response = su_client.post(
        change_url(connection), form_data(connection, base_url="http://127.0.0.1:8/v1")
    )
    assert response.status_code == 200
    assert "Enter the key again to change the base URL" in response.content.decode()
    connection.refresh_from_db()
    assert connection.base_url == "http://127.0.0.1:9/v1"


def test_a_new_base_url_removes_the_admin_key(su_client, team, settings):
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = ["127.0.0.1"]
    connection = make_connection(team)
    connection.set_admin_key("sk-admin-test-ok-00000adm1")
    connection.save()
    response = su_client.post(
        change_url(connection),
        form_data(connection, base_url="http://127.0.0.1:8/v1", new_api_key=NEW_KEY),
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.base_url == "http://127.0.0.1:8/v1"
    assert connection.api_key() == NEW_KEY
    assert not connection.has_admin_key


def test_add_needs_a_key(su_client, team, superuser):
    url = reverse("admin:connections_connection_add")
    data = {
        "team": team.pk,
        "name": "From admin",
        "provider": "openai",
        "base_url": "https://api.openai.com/v1",
        "run_api": "auto",
    }
    response = su_client.post(url, data)
    assert "A new connection needs an API key." in response.content.decode()
    response = su_client.post(url, {**data, "new_api_key": NEW_KEY})
    assert response.status_code == 302
    connection = Connection.objects.get(name="From admin")
    assert connection.api_key() == NEW_KEY
    assert connection.created_by == superuser
    assert AuditEvent.objects.filter(action="connection.create", target_id=str(connection.pk))


def test_delete_is_audited(su_client, superuser, team):
    connection = make_connection(team)
    response = su_client.post(
        reverse("admin:connections_connection_delete", args=[connection.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Connection.objects.exists()
    assert AuditEvent.objects.get(action="connection.delete").actor == superuser


def test_action_tests_selected_connections(su_client, team, fake_upstream):
    good = make_connection(team, name="Good", key=KEY_OK, base_url=fake_upstream.base_url)
    bad = make_connection(team, name="Bad", key=KEY_INVALID, base_url=fake_upstream.base_url)
    response = su_client.post(
        reverse("admin:connections_connection_changelist"),
        {"action": "test_connections", "_selected_action": [good.pk, bad.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "1 connection works." in page
    assert "Bad: Invalid authentication (401)" in page
    good.refresh_from_db()
    bad.refresh_from_db()
    assert (good.health, bad.health) == (Health.OK, Health.INVALID_KEY)
    assert len(fake_upstream.requests_to("/v1/models")) == 2


def test_error_events_are_read_only(su_client, team):
    connection = make_connection(team)
    event = ConnectionErrorEvent.objects.create(
        connection=connection, kind="invalid_key", status=401, operation="connection.test"
    )
    assert su_client.get(reverse("admin:connections_connectionerrorevent_add")).status_code == 403
    page = su_client.get(
        reverse("admin:connections_connectionerrorevent_change", args=[event.pk])
    ).content.decode()
    assert "invalid_key" in page
    assert 'name="_save"' not in page


def test_the_error_history_groups_repeated_errors(su_client, team):
    connection = make_connection(team, name="Production")
    for _n in range(4):
        ConnectionErrorEvent.objects.create(
            connection=connection, kind="quota_exhausted", status=429, operation="models.list"
        )
    ConnectionErrorEvent.objects.create(
        connection=connection, kind="invalid_key", status=401, operation="connection.test"
    )
    page = su_client.get(
        reverse("admin:connections_connectionerrorevent_changelist")
    ).content.decode()
    groups = page.split('id="error-groups"')[1].split("</table>")[0]
    assert groups.count("<tr>") == 3  # the header and two groups
    assert "Listing models" in groups or "listing models" in groups
    assert "<td>4</td>" in groups and "<td>1</td>" in groups
    assert "models.list" not in groups


def test_a_new_key_forgets_what_was_known_about_the_old_one(su_client, team):
    """The admin replaces a key through the same rule as the app's "Replace key": the old
    key's health and model list do not stay on the new one (the models page then says the
    list was not fetched yet)."""
    connection = make_connection(
        team, key=KEY_OK, models_cache=[{"id": "gpt-old"}], health=Health.OK
    )
    Connection.objects.filter(pk=connection.pk).update(models_cached_at=timezone.now())

    response = su_client.post(change_url(connection), form_data(connection, new_api_key=NEW_KEY))

    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.models_cache == [] and connection.models_cached_at is None
    assert connection.health == Health.UNCHECKED
