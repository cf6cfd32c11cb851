"""The admin site's gateway pages: tokens by their prefix (never a digest or a value), a
revoke action through the services (audited), nothing added or edited; call records read-only."""

import logging

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from gateway import tokens
from gateway.models import ApiToken, GatewayCall
from tests.conftest import client_for, make_user
from tests.gateway.tokenhelpers import make_token, token_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return make_user("root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def su_client(superuser):
    return client_for(superuser)


@pytest.fixture
def made(team, member, owner):
    connection = token_connection(team)
    personal = make_token(team, member, connection=connection, name="Notebook")
    service = make_token(team, None, connection=connection, created_by=owner, name="Nightly")
    return {"personal": personal, "service": service}


def test_the_list_shows_prefixes_never_a_secret(su_client, made):
    page = su_client.get(reverse("admin:gateway_apitoken_changelist")).content.decode()
    for token, value in made.values():
        assert token.display_prefix in page
        assert value not in page and tokens.split(value)[1] not in page
        assert token.secret_digest not in page
    assert "Notebook" in page and "Nightly" in page
    assert "member@example.com" in page and "Acme" in page
    assert "Revoke selected tokens" in page
    assert "Delete selected" not in page


def test_a_token_page_is_read_only_without_the_digest(su_client, made):
    token, value = made["personal"]
    response = su_client.get(reverse("admin:gateway_apitoken_change", args=[token.pk]))
    page = response.content.decode()
    assert response.status_code == 200
    assert token.display_prefix in page
    assert token.secret_digest not in page and value not in page
    assert 'name="name"' not in page  # nothing to edit
    assert su_client.post(
        reverse("admin:gateway_apitoken_change", args=[token.pk]), {"name": "Renamed"}
    ).status_code in (302, 403)
    token.refresh_from_db()
    assert token.name == "Notebook"


def test_no_token_is_added_nor_deleted_here(su_client, made):
    assert su_client.get(reverse("admin:gateway_apitoken_add")).status_code == 403
    token, _value = made["personal"]
    delete = reverse("admin:gateway_apitoken_delete", args=[token.pk])
    assert su_client.get(delete).status_code == 403


def test_revoke_selected_tokens(su_client, superuser, made, caplog):
    caplog.set_level(logging.DEBUG)
    (personal, v1), (service, v2) = made["personal"], made["service"]
    response = su_client.post(
        reverse("admin:gateway_apitoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [personal.pk, service.pk]},
        follow=True,
    )
    assert "2 tokens revoked." in response.content.decode()
    for token in (personal, service):
        token.refresh_from_db()
        assert token.revoked_at is not None and token.revoked_by == superuser
    events = AuditEvent.objects.filter(action="token.revoke")
    assert events.count() == 2
    assert all(e.actor == superuser and e.data["via"] == "admin" for e in events)

    # Again: nothing more to revoke, nothing more audited.
    response = su_client.post(
        reverse("admin:gateway_apitoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [personal.pk]},
        follow=True,
    )
    assert "0 tokens revoked." in response.content.decode()
    assert AuditEvent.objects.filter(action="token.revoke").count() == 2
    assert v1 not in caplog.text and v2 not in caplog.text


def test_staff_without_the_permission_cannot_revoke(made):
    staff = make_user("staff@example.com", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_apitoken"))
    client = client_for(staff)
    page = client.get(reverse("admin:gateway_apitoken_changelist")).content.decode()
    assert "Revoke selected tokens" not in page
    token, _value = made["personal"]
    client.post(
        reverse("admin:gateway_apitoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked_at is None


def test_gateway_calls_are_read_only(su_client, team, made):
    token, _value = made["personal"]
    call = GatewayCall.objects.create(
        team=team,
        token=token,
        family="inference",
        method="POST",
        path="chat/completions",
        model="gpt-4o",
        status=200,
    )
    page = su_client.get(reverse("admin:gateway_gatewaycall_changelist")).content.decode()
    assert "chat/completions" in page and "gpt-4o" in page
    assert su_client.get(reverse("admin:gateway_gatewaycall_add")).status_code == 403
    detail = su_client.get(reverse("admin:gateway_gatewaycall_change", args=[call.pk]))
    assert detail.status_code == 200 and 'name="path"' not in detail.content.decode()
    assert ApiToken.objects.count() == 2


def test_removing_a_member_in_the_admin_revokes_their_tokens(su_client, superuser, team, made):
    from accounts.models import Membership

    token, _value = made["personal"]
    membership = Membership.objects.get(team=team, user=token.owner)
    su_client.post(
        reverse("admin:accounts_membership_delete", args=[membership.pk]), {"post": "yes"}
    )
    assert not Membership.objects.filter(pk=membership.pk).exists()
    token.refresh_from_db()
    assert token.revoked_at is not None
    event = AuditEvent.objects.get(action="token.revoke")
    assert event.actor == superuser
    assert event.data["reason"] == "member_removed" and event.data["via"] == "admin"
    service, _value = made["service"]
    service.refresh_from_db()
    assert service.revoked_at is None
