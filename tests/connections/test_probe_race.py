"""A check that races a key replacement: the old key's outcome must not land on the new key.

Another admin replaces the key while "Test now" (or a model-list refresh) is waiting for the
provider's answer to the old key. The replacement is simulated at the provider boundary, the
only place a test may step in: right after the provider answered the old key, the key is
replaced through the same service the "Replace key" page uses (its own check reaches the fake).
"""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from connections import services
from connections.models import Connection, ConnectionErrorEvent, Health
from fakeprovider import KEY_INVALID, Reply
from provider.client import ProviderClient
from tests.connections.helpers import make_connection

pytestmark = pytest.mark.django_db

WORKING_KEY = "sk-test-ok-race0000000000wxyz"  # the fake accepts it
NEW_ONLY_MODEL = "only-the-new-key-sees-this"


@pytest.fixture
def replace_during_check(monkeypatch, owner, fake_upstream):
    """`replace_during_check(connection, old=..., new=...)`: when the provider has answered a
    request made with `old`, replace the key with `new` before the answer is used."""

    def arrange(connection: Connection, *, old: str, new: str, new_models=None) -> None:
        real = ProviderClient.list_models

        def list_models(client: ProviderClient):
            try:
                return real(client)
            finally:
                if client.endpoint.api_key == old:
                    if new_models is not None:
                        fake_upstream.queue(Reply.json({"object": "list", "data": new_models}))
                    services.connection_replace_key(
                        connection=Connection.objects.get(pk=connection.pk),
                        user=owner,
                        api_key=new,
                        save_anyway=True,
                    )

        monkeypatch.setattr(ProviderClient, "list_models", list_models)

    return arrange


def check_url(connection) -> str:
    return reverse(
        "connections:test", kwargs={"team_id": connection.team_id, "connection_id": connection.pk}
    )


def test_a_failed_check_of_the_old_key_is_not_stored_on_the_new_key(
    admin_client_, team, fake_upstream, replace_during_check
):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_INVALID)
    replace_during_check(connection, old=KEY_INVALID, new=WORKING_KEY)

    response = admin_client_.post(check_url(connection), follow=True)

    page = response.content.decode()
    assert response.status_code == 200
    assert "The check failed" not in page
    assert "sk-…wxyz" in page  # the new key
    assert "Working" in page and "The key worked at the last check." in page
    assert "Invalid authentication" not in page
    connection.refresh_from_db()
    assert connection.health == Health.OK
    assert connection.last_error == ""
    # The old key's 401 happened, but it is no error of this key.
    assert not ConnectionErrorEvent.objects.filter(connection=connection).exists()
    assert not AuditEvent.objects.filter(action="connection.test").exists()


def test_a_working_old_key_leaves_the_new_keys_state_alone(
    admin_client_, team, fake_upstream, replace_during_check
):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=WORKING_KEY)
    replace_during_check(connection, old=WORKING_KEY, new=KEY_INVALID)

    response = admin_client_.post(check_url(connection), follow=True)

    page = response.content.decode()
    assert "The connection works." not in page
    assert "Invalid key" in page
    connection.refresh_from_db()
    assert connection.health == Health.INVALID_KEY
    assert connection.models_cache == []
    assert connection.models_cached_at is None
    assert connection.detected_run_api == ""
    # The run API is detected only after a check whose outcome was stored.
    assert fake_upstream.requests_to("/v1/assistants") == []
    (event,) = ConnectionErrorEvent.objects.filter(connection=connection)
    assert event.operation == "connection.replace_key"


def test_the_check_is_stored_when_nothing_changed(admin_client_, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=WORKING_KEY)

    response = admin_client_.post(check_url(connection), follow=True)

    assert "The connection works." in response.content.decode()
    connection.refresh_from_db()
    assert connection.health == Health.OK
    assert len(connection.models_cache) == 12
    assert len(fake_upstream.requests_to("/v1/assistants")) == 1


def test_a_connection_removed_during_the_check(admin_client_, team, fake_upstream, monkeypatch):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_INVALID)
    real = ProviderClient.list_models

    def list_models(client: ProviderClient):
        try:
            return real(client)
        finally:
            Connection.objects.filter(pk=connection.pk).delete()

    monkeypatch.setattr(ProviderClient, "list_models", list_models)

    response = admin_client_.post(check_url(connection), follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("connections:list", args=[team.pk])
    assert "was removed while it was being checked" in response.content.decode()
    assert not ConnectionErrorEvent.objects.exists()


def test_a_model_list_of_the_old_key_is_not_stored_on_the_new_key(
    member_client, team, fake_upstream, replace_during_check
):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=WORKING_KEY)
    replace_during_check(
        connection,
        old=WORKING_KEY,
        new="sk-test-ok-newkey00000000new1",
        new_models=[{"id": NEW_ONLY_MODEL, "object": "model", "owned_by": "system"}],
    )

    response = member_client.post(
        reverse(
            "connections:models_refresh",
            kwargs={"team_id": team.pk, "connection_id": connection.pk},
        ),
        follow=True,
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert NEW_ONLY_MODEL in page
    assert "gpt-4o" not in page
    connection.refresh_from_db()
    assert [model["id"] for model in connection.models_cache] == [NEW_ONLY_MODEL]
    assert not ConnectionErrorEvent.objects.exists()


# --- a settings change saved from a page loaded before the key was replaced ------------------


def test_editing_settings_from_an_old_page_keeps_the_replaced_key(team, owner, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_INVALID)
    loaded_before = Connection.objects.get(pk=connection.pk)
    services.connection_replace_key(
        connection=Connection.objects.get(pk=connection.pk), user=owner, api_key=WORKING_KEY
    )

    services.connection_update(
        connection=loaded_before,
        user=owner,
        name="Renamed",
        organization_id="org-1",
        project_id="",
        api_version="",
        run_api=loaded_before.run_api,
    )

    stored = Connection.objects.get(pk=connection.pk)
    assert stored.name == "Renamed" and stored.organization_id == "org-1"
    assert stored.api_key() == WORKING_KEY and stored.health == Health.OK


def test_adding_an_admin_key_from_an_old_page_keeps_the_replaced_key(team, owner, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_INVALID)
    loaded_before = Connection.objects.get(pk=connection.pk)
    services.connection_replace_key(
        connection=Connection.objects.get(pk=connection.pk), user=owner, api_key=WORKING_KEY
    )

    services.connection_set_admin_key(
        connection=loaded_before, user=owner, admin_key="sk-admin-test-000000000000race"
    )

    stored = Connection.objects.get(pk=connection.pk)
    assert stored.api_key() == WORKING_KEY and stored.health == Health.OK
    assert stored.admin_key_last4 == "race"
