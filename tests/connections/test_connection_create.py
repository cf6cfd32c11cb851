import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from connections.models import Connection, ConnectionErrorEvent, Health
from fakeprovider import KEY_INVALID, KEY_OK, KEY_QUOTA
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def url(team) -> str:
    return reverse("connections:create", kwargs={"team_id": team.pk})


def form_data(fake_upstream, **overrides) -> dict:
    return {
        "name": "Production",
        "provider": "openai",
        "base_url": fake_upstream.base_url,
        "organization_id": "org-acme123",
        "project_id": "proj_abc",
        "api_version": "",
        "api_key": KEY_OK,
        **overrides,
    }


def test_form_shows_fields_and_never_a_key(admin_client_, team):
    response = admin_client_.get(url(team))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'type="password"' in page
    assert "Organization ID" in page
    assert "Save even if the check fails" in page
    assert "https://api.openai.com/v1" in page


def test_a_working_key_is_checked_then_saved(admin_client_, admin_user, team, fake_upstream):
    response = admin_client_.post(url(team), form_data(fake_upstream), follow=True)

    connection = Connection.objects.get(team=team)
    assert response.redirect_chain[-1][0] == reverse(
        "connections:detail", kwargs={"team_id": team.pk, "connection_id": connection.pk}
    )
    assert "Connection added. The key works." in response.content.decode()
    assert connection.health == Health.OK
    assert connection.masked_key == "sk-…abcd"
    assert connection.api_key() == KEY_OK
    assert connection.created_by == admin_user
    assert {m["id"] for m in connection.models_cache} >= {"gpt-4o", "o3"}
    assert connection.rate_limit["limit_requests"] == 5000

    (sent,) = fake_upstream.requests_to("/v1/models", "GET")
    assert sent.headers["authorization"] == f"Bearer {KEY_OK}"
    assert sent.headers["openai-organization"] == "org-acme123"
    assert sent.headers["openai-project"] == "proj_abc"

    event = AuditEvent.objects.get(action="connection.create")
    assert event.actor == admin_user
    assert event.data["api_key_last4"] == "abcd"
    assert KEY_OK not in str(event.data)


def test_a_failed_check_saves_nothing_and_keeps_the_other_fields(
    admin_client_, team, fake_upstream
):
    response = admin_client_.post(url(team), form_data(fake_upstream, api_key=KEY_INVALID))

    assert response.status_code == 200
    page = response.content.decode()
    assert "The check failed, nothing was saved" in page
    assert "Invalid authentication (401)" in page
    assert "https://help.openai.com/en/articles/6891767" in page
    assert 'value="Production"' in page
    assert 'value="org-acme123"' in page
    assert KEY_INVALID not in page
    assert not Connection.objects.exists()
    assert len(fake_upstream.requests_to("/v1/models")) == 1


def test_quota_error_explains_billing(admin_client_, team, fake_upstream):
    response = admin_client_.post(url(team), form_data(fake_upstream, api_key=KEY_QUOTA))

    page = response.content.decode()
    assert "You exceeded your current quota (429)" in page
    assert "billing" in page
    # Admins see what the provider said, with its code and request id.
    assert "insufficient_quota" in page
    assert "req_" in page
    assert not Connection.objects.exists()


def test_save_anyway_keeps_the_connection_with_the_failure(admin_client_, team, fake_upstream):
    data = form_data(fake_upstream, api_key=KEY_QUOTA, save_anyway="on")
    response = admin_client_.post(url(team), data, follow=True)

    connection = Connection.objects.get(team=team)
    assert connection.health == Health.NO_QUOTA
    assert connection.last_error_kind == "quota_exhausted"
    assert "insufficient_quota" in connection.last_error
    assert "Connection saved, but the check failed" in response.content.decode()
    event = ConnectionErrorEvent.objects.get(connection=connection)
    assert (event.kind, event.status, event.operation) == (
        "quota_exhausted",
        429,
        "connection.create",
    )


def test_private_url_is_refused_before_any_call(admin_client_, team, fake_upstream, settings):
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = []
    response = admin_client_.post(url(team), form_data(fake_upstream))

    assert response.status_code == 200
    assert "The URL must start with https://." in response.content.decode()
    assert response.context["form"].errors["base_url"]
    assert fake_upstream.requests == []
    assert not Connection.objects.exists()


def test_a_refused_local_server_says_how_an_operator_allows_it(
    admin_client_, team, fake_upstream, settings
):
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = []
    port = fake_upstream.base_url.split(":")[2].split("/")[0]
    response = admin_client_.post(url(team), form_data(fake_upstream))

    page = response.content.decode()
    assert "TABLERO_ALLOWED_UPSTREAM_HOSTS" in page
    assert f"add 127.0.0.1:{port} to" in page
    assert fake_upstream.requests == []


@pytest.mark.parametrize(
    ("base_url", "entry"),
    [
        ("https://10.0.0.5/v1", "10.0.0.5"),
        ("https://localhost:8443/v1", "localhost:8443"),
        ("http://[::1]:8000/v1", "[::1]:8000"),
    ],
)
def test_the_operator_hint_names_the_host_as_the_setting_wants_it(
    admin_client_, team, fake_upstream, settings, base_url, entry
):
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = []
    response = admin_client_.post(url(team), form_data(fake_upstream, base_url=base_url))
    errors = response.context["form"].errors["base_url"]
    assert any(f"add {entry} to TABLERO_ALLOWED_UPSTREAM_HOSTS" in error for error in errors)


def test_the_key_comes_first_and_the_api_version_is_for_azure(admin_client_, team):
    page = admin_client_.get(url(team)).content.decode()
    assert page.index('name="api_key"') < page.index('name="name"')
    assert 'data-show-if="provider=azure"' in page  # hidden by tablero.js for the others
    assert "Azure OpenAI only" in page  # and said so without JavaScript


def test_an_api_version_is_dropped_for_a_provider_other_than_azure(
    admin_client_, team, fake_upstream
):
    admin_client_.post(url(team), form_data(fake_upstream, api_version="2024-10-21"))
    assert Connection.objects.get(team=team).api_version == ""


def test_duplicate_name_is_refused(admin_client_, team, fake_upstream):
    admin_client_.post(url(team), form_data(fake_upstream))
    response = admin_client_.post(url(team), form_data(fake_upstream, name="production"))

    assert "already has a connection with this name" in response.content.decode()
    assert Connection.objects.count() == 1


def test_masked_or_spaced_keys_are_refused(admin_client_, team, fake_upstream):
    response = admin_client_.post(url(team), form_data(fake_upstream, api_key="sk-…abcd"))
    assert "masked key" in response.content.decode()
    response = admin_client_.post(url(team), form_data(fake_upstream, api_key="sk-abc defghijk"))
    assert "no spaces" in response.content.decode()
    assert fake_upstream.requests == []


@pytest.mark.parametrize(
    "field, value", [("organization_id", "org-acmé"), ("project_id", "proj abc\u00a0")]
)
def test_an_id_no_header_can_carry_is_a_form_error(
    admin_client_, team, fake_upstream, field, value
):
    """An accent or a pasted space in an ID used to crash the check (headers are ASCII)."""
    response = admin_client_.post(url(team), form_data(fake_upstream, **{field: value}))

    assert response.status_code == 200
    assert "without spaces or accents" in response.content.decode()
    assert not Connection.objects.exists()
    assert fake_upstream.requests == []


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_lower_roles_are_refused(users, team, role, fake_upstream):
    client = client_for(users[role])
    assert client.get(url(team)).status_code == 403
    assert client.post(url(team), form_data(fake_upstream)).status_code == 403
    assert not Connection.objects.exists()
    assert fake_upstream.requests == []


def test_outsider_gets_404(outsider_client, team):
    assert outsider_client.get(url(team)).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, team):
    response = client.get(url(team))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_an_empty_post_shows_what_is_missing(admin_client_, team, fake_upstream):
    # Bound like every form page (lib.forms.posted): an empty body is a submission too.
    response = admin_client_.post(url(team), {})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Connection.objects.exists()
    assert fake_upstream.requests == []
