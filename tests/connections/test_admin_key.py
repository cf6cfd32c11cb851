"""The admin key form of a connection (connections:admin_key) and its removal
(connections:admin_key_remove): write-only, masked, audited, admins only."""

import uuid

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from fakeprovider import ADMIN_KEY_OK
from tests.assistants.helpers import check_refusals
from tests.connections.helpers import make_connection

NEW_ADMIN_KEY = "sk-admin-NEWKEY0123456789zyxw"


@pytest.fixture
def connection(team, owner):
    return make_connection(team, created_by=owner)


def _url(connection) -> str:
    return reverse("connections:admin_key", args=[connection.team_id, connection.pk])


def _remove_url(connection) -> str:
    return reverse("connections:admin_key_remove", args=[connection.team_id, connection.pk])


def test_form_explains_what_an_admin_key_is(admin_client_, connection):
    body = admin_client_.get(_url(connection)).content.decode()
    assert "Organization settings → Admin keys" in body
    assert "It starts with “sk-admin-”." in body
    assert "never shows it again" in body
    assert 'type="password"' in body
    assert "Save admin key" in body
    assert "Remove admin key" not in body


def test_saving_stores_it_encrypted_and_audits(admin_client_, connection, admin_user):
    response = admin_client_.post(_url(connection), {"admin_key": ADMIN_KEY_OK})
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "connections:costs", args=[connection.team_id, connection.pk]
    )
    connection.refresh_from_db()
    assert connection.admin_key() == ADMIN_KEY_OK
    assert ADMIN_KEY_OK not in connection.admin_key_encrypted
    assert connection.masked_admin_key == "sk-admin-…adm1"
    event = AuditEvent.objects.get(action="connection.set_admin_key")
    assert event.actor == admin_user
    assert event.target_id == str(connection.pk)
    assert ADMIN_KEY_OK not in str(event.data)


def test_the_page_shows_only_the_masked_key(admin_client_, connection):
    connection.set_admin_key(ADMIN_KEY_OK)
    connection.save()
    body = admin_client_.get(_url(connection)).content.decode()
    assert "sk-admin-…adm1" in body
    assert ADMIN_KEY_OK not in body
    assert "Replace admin key" in body and "Remove admin key" in body


def test_replacing_overwrites(admin_client_, connection):
    connection.set_admin_key(ADMIN_KEY_OK)
    connection.save()
    response = admin_client_.post(_url(connection), {"admin_key": NEW_ADMIN_KEY}, follow=True)
    assert "Admin key replaced." in response.content.decode()
    connection.refresh_from_db()
    assert connection.admin_key() == NEW_ADMIN_KEY


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "This field is required."),
        ("sk-proj-abcdefghijklmnop", "An admin key starts with “sk-admin-”."),
        ("sk-admin-…adm1", "This looks like a masked key."),
        ("sk-admin-with space", "A key has no spaces or line breaks."),
    ],
)
def test_bad_input_is_explained_and_nothing_changes(admin_client_, connection, value, message):
    response = admin_client_.post(_url(connection), {"admin_key": value})
    assert response.status_code == 200
    body = response.content.decode()
    assert message in body
    assert value == "" or value not in body  # the key field never renders a value back
    connection.refresh_from_db()
    assert not connection.has_admin_key
    assert not AuditEvent.objects.filter(action="connection.set_admin_key").exists()


def test_removing(admin_client_, connection):
    connection.set_admin_key(ADMIN_KEY_OK)
    connection.save()
    response = admin_client_.post(_remove_url(connection), follow=True)
    assert "Admin key removed" in response.content.decode()
    connection.refresh_from_db()
    assert not connection.has_admin_key and connection.masked_admin_key == ""
    assert AuditEvent.objects.filter(action="connection.remove_admin_key").count() == 1
    # Removing again changes nothing and logs nothing.
    admin_client_.post(_remove_url(connection))
    assert AuditEvent.objects.filter(action="connection.remove_admin_key").count() == 1


def test_remove_needs_post(admin_client_, connection):
    assert admin_client_.get(_remove_url(connection)).status_code == 405


def test_roles_outsider_and_anonymous(users, connection):
    check_refusals(users, _url(connection), min_role="admin")
    check_refusals(
        users, _url(connection), min_role="admin", method="post", data={"admin_key": ADMIN_KEY_OK}
    )
    check_refusals(users, _remove_url(connection), min_role="admin", method="post")
    connection.refresh_from_db()
    assert not connection.has_admin_key


def test_unknown_connection_is_404(admin_client_, team):
    url = reverse("connections:admin_key", args=[team.pk, uuid.uuid4()])
    assert admin_client_.get(url).status_code == 404


def test_detail_page_links_costs_and_admin_key_for_admins(admin_client_, viewer_client, connection):
    detail = reverse("connections:detail", args=[connection.team_id, connection.pk])
    body = admin_client_.get(detail).content.decode()
    assert _url(connection) in body and "Add admin key" in body
    assert reverse("connections:costs", args=[connection.team_id, connection.pk]) in body
    assert _url(connection) not in viewer_client.get(detail).content.decode()
