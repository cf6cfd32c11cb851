"""Services and selectors called directly (the views' tests cover them through the pages)."""

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import AuditEvent
from connections import selectors, services
from connections.models import Connection, Health, health_for
from fakeprovider import KEY_INVALID, KEY_OK
from provider.client import ProviderClient
from provider.errors import ErrorKind, ProviderError
from tests.connections.helpers import make_connection, make_unreadable

pytestmark = pytest.mark.django_db


def create(team, user, base_url, **overrides):
    arguments = {
        "team": team,
        "user": user,
        "name": "Production",
        "provider": "openai",
        "base_url": base_url,
        "organization_id": "",
        "project_id": "",
        "api_version": "",
        "api_key": KEY_OK,
        "save_anyway": False,
        **overrides,
    }
    return services.connection_create(**arguments)


@pytest.mark.django_db(transaction=True)
def test_no_transaction_is_open_during_a_provider_call(
    team, admin_user, fake_upstream, monkeypatch
):
    seen = []
    original = ProviderClient.list_models

    def spy(self):
        seen.append(transaction.get_connection().in_atomic_block)
        return original(self)

    monkeypatch.setattr(ProviderClient, "list_models", spy)
    connection = create(team, admin_user, fake_upstream.base_url).value
    services.connection_test(connection=connection, user=admin_user)
    services.connection_replace_key(connection=connection, user=admin_user, api_key=KEY_OK)
    services.models_refresh(connection=connection, user=admin_user)
    assert seen == [False, False, False, False]


def test_create_refuses_a_private_url_even_with_save_anyway(team, admin_user, settings):
    outcome = create(team, admin_user, "http://10.0.0.5/v1", save_anyway=True)
    assert outcome.value is None and not outcome.ok
    assert outcome.error.kind == ErrorKind.URL_REFUSED
    assert not Connection.objects.exists()


def test_create_with_a_taken_name_raises_before_calling(team, admin_user, fake_upstream):
    create(team, admin_user, fake_upstream.base_url)
    fake_upstream.reset()
    with pytest.raises(ValidationError):
        create(team, admin_user, fake_upstream.base_url)
    assert fake_upstream.requests == []


def test_create_normalises_the_base_url(team, admin_user, fake_upstream):
    connection = create(team, admin_user, fake_upstream.base_url + "/").value
    assert connection.base_url == fake_upstream.base_url


def test_test_of_an_unreadable_key(team, admin_user, fake_upstream):
    good = make_connection(team, name="Good", base_url=fake_upstream.base_url)
    broken = make_unreadable(make_connection(team, name="Broken"), other=good)
    error = services.connection_test(connection=broken, user=admin_user).error
    assert error.kind == ErrorKind.KEY_UNREADABLE
    broken.refresh_from_db()
    assert broken.health == Health.KEY_UNREADABLE
    assert broken.error_events.get().kind == "key_unreadable"
    assert fake_upstream.requests == []


def test_health_does_not_touch_updated_at(team, admin_user, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url)
    before = Connection.objects.get().updated_at
    services.connection_test(connection=connection, user=admin_user)
    assert Connection.objects.get().updated_at == before


def test_the_model_list_is_read_from_the_connection_and_stored_by_a_refresh(
    team, admin_user, fake_upstream
):
    connection = make_connection(team, base_url=fake_upstream.base_url)
    assert selectors.model_list(connection=connection).never_fetched
    outcome = services.models_refresh(connection=connection, user=admin_user)
    assert outcome.ok and len(outcome.value) == 12
    listing = selectors.model_list(connection=Connection.objects.get(pk=connection.pk))
    assert listing.total == 12 and not listing.never_fetched
    assert listing.fetched_at == connection.models_cached_at
    assert len(fake_upstream.requests) == 1


def test_update_cannot_change_the_base_url(team, admin_user):
    connection = make_connection(team)
    with pytest.raises(TypeError):
        services.connection_update(
            connection=connection,
            user=admin_user,
            name="x",
            organization_id="",
            project_id="",
            api_version="",
            run_api="auto",
            base_url="https://example.com/v1",
        )


def test_replace_key_requires_a_key(team, admin_user):
    with pytest.raises(ValueError):
        services.connection_replace_key(
            connection=make_connection(team), user=admin_user, api_key=""
        )


def test_admin_key_set_and_removed(team, admin_user):
    connection = make_connection(team)
    services.connection_set_admin_key(
        connection=connection, user=admin_user, admin_key="sk-admin-test-ok-00000adm1"
    )
    assert Connection.objects.get().admin_key() == "sk-admin-test-ok-00000adm1"
    services.connection_set_admin_key(connection=connection, user=admin_user, admin_key="")
    connection = Connection.objects.get()
    assert connection.admin_key() == "" and connection.masked_admin_key == ""
    actions = list(AuditEvent.objects.values_list("action", flat=True).order_by("created_at"))
    assert actions == ["connection.set_admin_key", "connection.remove_admin_key"]


def test_error_messages_never_carry_the_key(team, admin_user, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_INVALID)
    services.connection_test(connection=connection, user=admin_user)
    event = connection.error_events.get()
    assert "Incorrect API key provided" in event.message
    assert KEY_INVALID not in event.message


def test_model_get_of_an_unreadable_key(team, fake_upstream):
    good = make_connection(team, name="Good", base_url=fake_upstream.base_url)
    broken = make_unreadable(make_connection(team, name="Broken"), other=good)
    with pytest.raises(ProviderError) as raised:
        selectors.model_get(connection=broken, model_id="gpt-4o")
    assert raised.value.kind == ErrorKind.KEY_UNREADABLE
    assert fake_upstream.requests == [] and not broken.error_events.exists()


def test_connection_get_is_scoped_to_the_team(team, other_team):
    from django.http import Http404

    connection = make_connection(other_team)
    with pytest.raises(Http404):
        selectors.connection_get(team=team, pk=connection.pk)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_kind_maps_to_a_health(kind):
    assert health_for(kind) in Health.values


def test_a_new_organization_fetches_the_model_list_again_and_a_new_name_does_not(
    team, admin_user, fake_upstream
):
    connection = make_connection(team, base_url=fake_upstream.base_url)
    settings = {"organization_id": "", "project_id": "", "api_version": "", "run_api": "auto"}

    services.connection_update(connection=connection, user=admin_user, name="Renamed", **settings)
    assert fake_upstream.requests == []

    settings["organization_id"] = "org-other"
    outcome = services.connection_update(
        connection=connection, user=admin_user, name="Renamed", **settings
    )

    assert outcome.ok
    (sent,) = fake_upstream.requests_to("/v1/models")
    assert sent.headers["openai-organization"] == "org-other"
    assert not selectors.model_list(connection=Connection.objects.get()).never_fetched
