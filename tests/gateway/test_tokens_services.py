"""The token services: who may make which token, its bounds, revoking (idempotent), the
expiry sweep, and what a member's removal or demotion does to their tokens. Every write is
audited, and no audit event holds a token's value or digest."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts import services as account_services
from accounts.models import AuditEvent, Membership, Role
from gateway import grants, services, tokens
from gateway.models import ApiToken, TokenKind
from gateway.scopes import Scope, family_of
from tests.conftest import PINNED_NOW
from tests.connections.helpers import make_connection
from tests.gateway.tokenhelpers import make_token, token_connection

pytestmark = pytest.mark.django_db

FEW_SECONDS = timedelta(seconds=5)


@pytest.fixture
def forgotten(monkeypatch) -> list[str]:
    """The prefixes handed to grants.forget (the cache's invalidation), in order."""
    calls: list[str] = []
    monkeypatch.setattr(grants, "forget", calls.append)
    return calls


@pytest.fixture
def connection(team):
    return token_connection(team)


def _no_secret_in_audit(value: str, digest: str) -> None:
    for event in AuditEvent.objects.all():
        text = json.dumps(event.data) + event.target_repr
        assert value not in text
        assert tokens.split(value)[1] not in text
        assert digest not in text


# --- making a token ------------------------------------------------------------------------------


def test_a_member_makes_a_personal_token(team, member, connection, pinned_clock):
    token, value = make_token(team, member, connection=connection, name="  Notebook ")

    assert value.startswith(f"tbl_{token.prefix}_")
    assert token.kind == TokenKind.PERSONAL
    assert token.owner == member and token.created_by == member
    assert token.name == "Notebook"
    assert token.scopes == ["inference", "models"]
    assert token.expires_at == pytest.approx(timezone.now() + timedelta(days=90), abs=FEW_SECONDS)
    stored = ApiToken.objects.get(pk=token.pk)
    assert value not in json.dumps(
        {f.name: str(getattr(stored, f.attname)) for f in ApiToken._meta.concrete_fields}
    )
    event = AuditEvent.objects.get(action="token.create")
    assert event.actor == member and event.target_id == str(token.pk)
    assert event.data["prefix"] == f"tbl_{token.prefix}_…"
    assert event.data["scopes"] == ["inference", "models"]
    assert event.data["connection"] == "Production"
    _no_secret_in_audit(value, token.secret_digest)


@pytest.mark.parametrize("role", ["owner", "admin", "member"])
def test_members_and_above_may_hold_every_scope(team, users, connection, role):
    token, _value = make_token(team, users[role], connection=connection, scopes=list(Scope))
    assert set(token.scopes) == set(Scope.values)


def test_a_viewer_holds_the_models_scope_only(team, viewer, connection):
    token, _value = make_token(team, viewer, connection=connection, scopes=[Scope.MODELS])
    assert token.scopes == ["models"]
    for scope in (Scope.INFERENCE, Scope.FILES, Scope.ASSISTANTS, Scope.BATCHES):
        with pytest.raises(ValidationError):
            make_token(team, viewer, connection=connection, scopes=[Scope.MODELS, scope])
    assert ApiToken.objects.count() == 1


def test_no_scope_reaches_the_organization_endpoints():
    for path in ("organization/costs", "organization/usage/completions", "organization/users"):
        assert family_of("GET", path) is None
    assert not any(scope.value.startswith("organization") for scope in Scope)


@pytest.mark.parametrize("scopes", [[], ["organization"], ["admin"], ["models", "everything"]])
def test_scopes_are_checked(team, member, connection, scopes):
    with pytest.raises(ValidationError):
        make_token(team, member, connection=connection, scopes=scopes)
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("name", ["", "   "])
def test_a_name_is_needed(team, member, connection, name):
    with pytest.raises(ValidationError):
        make_token(team, member, connection=connection, name=name)


def test_the_connection_must_be_the_teams(team, other_team, member):
    elsewhere = make_connection(other_team)
    with pytest.raises(ValidationError):
        make_token(team, member, connection=elsewhere)
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("days", [1, 7, 90, 365])
def test_lifetimes_up_to_a_year(team, member, connection, days, pinned_clock):
    token, _value = make_token(team, member, connection=connection, lifetime=timedelta(days=days))
    assert token.expires_at - token.created_at == pytest.approx(
        timedelta(days=days), abs=FEW_SECONDS
    )


@pytest.mark.parametrize(
    "lifetime", [timedelta(0), timedelta(seconds=-1), timedelta(days=365, seconds=1)]
)
def test_no_token_beyond_a_year_nor_already_expired(team, member, connection, lifetime):
    with pytest.raises(ValidationError):
        make_token(team, member, connection=connection, lifetime=lifetime)
    assert not ApiToken.objects.exists()


def test_allowed_models_are_kept_sorted_and_unique(team, member, connection):
    token, _value = make_token(
        team, member, connection=connection, allowed_models=["gpt-4o-mini", "gpt-4o", "gpt-4o"]
    )
    assert token.allowed_models == ["gpt-4o", "gpt-4o-mini"]


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_make_service_tokens(team, users, connection, role):
    token, _value = make_token(team, None, connection=connection, created_by=users[role])
    assert token.kind == TokenKind.SERVICE and token.owner is None
    assert token.created_by == users[role]
    assert AuditEvent.objects.get(action="token.create").data["kind"] == "service"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_lower_roles_make_no_service_token(team, users, connection, role):
    with pytest.raises(PermissionDenied):
        make_token(team, None, connection=connection, created_by=users[role], scopes=["models"])
    assert not ApiToken.objects.exists()


def test_nobody_makes_a_personal_token_for_someone_else(team, owner, member, connection):
    with pytest.raises(PermissionDenied):
        make_token(team, member, connection=connection, created_by=owner)


def test_an_outsider_makes_no_token(team, outsider, connection):
    with pytest.raises(PermissionDenied):
        make_token(team, None, connection=connection, created_by=outsider)
    with pytest.raises(PermissionDenied):
        make_token(team, outsider, connection=connection)
    with pytest.raises(ValidationError):  # not even Tablero itself makes them one
        services.token_create(
            team=team,
            connection=connection,
            name="x",
            created_by=None,
            owner=outsider,
            scopes=["models"],
        )


# --- revoking ----------------------------------------------------------------------------------


def test_revoke_own_token_audited_once_and_forgotten_after_commit(
    team, member, connection, forgotten, django_capture_on_commit_callbacks
):
    token, value = make_token(team, member, connection=connection)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.token_revoke(token=token, actor=member)
    assert forgotten == []  # not before the commit
    for callback in callbacks:
        callback()
    assert forgotten == [token.prefix]

    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == member
    assert not token.is_usable
    assert grants.resolve(value) is None

    again = services.token_revoke(token=token, actor=member)
    assert again.revoked_at == token.revoked_at
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1
    _no_secret_in_audit(value, token.secret_digest)


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_admins_revoke_anyones_token(team, users, connection, role):
    token, _value = make_token(team, users["member"], connection=connection)
    services.token_revoke(token=token, actor=users[role])
    event = AuditEvent.objects.get(action="token.revoke")
    assert event.actor == users[role] and event.data["owner"] == "member@example.com"


@pytest.mark.parametrize("role", ["member", "viewer", "outsider"])
def test_others_may_not_revoke_a_token(team, users, connection, role):
    token, _value = make_token(team, users["admin"], connection=connection)
    with pytest.raises(PermissionDenied):
        services.token_revoke(token=token, actor=users[role])
    token.refresh_from_db()
    assert token.revoked_at is None
    assert not AuditEvent.objects.filter(action="token.revoke").exists()


def test_members_may_not_revoke_a_service_token(team, users, connection):
    token, _value = make_token(team, None, connection=connection, created_by=users["admin"])
    with pytest.raises(PermissionDenied):
        services.token_revoke(token=token, actor=users["member"])


# --- expiry -------------------------------------------------------------------------------------


def test_expired_tokens_are_audited_once_and_forgotten(
    team, member, connection, forgotten, pinned_clock, django_capture_on_commit_callbacks
):
    soon, _v1 = make_token(team, member, connection=connection, lifetime=timedelta(days=7))
    _later, _v2 = make_token(team, member, connection=connection, lifetime=timedelta(days=30))
    revoked, _v3 = make_token(team, member, connection=connection, lifetime=timedelta(days=7))
    services.token_revoke(token=revoked, actor=member)
    forgotten.clear()

    assert services.tokens_expire() == 0
    pinned_clock.shift(timedelta(days=8))
    with django_capture_on_commit_callbacks(execute=True):
        assert services.tokens_expire() == 1
    assert services.tokens_expire() == 0  # once

    events = AuditEvent.objects.filter(action="token.expire")
    assert [e.target_id for e in events] == [str(soon.pk)]
    assert events[0].actor is None
    assert forgotten == [soon.prefix]
    soon.refresh_from_db()
    assert soon.expiry_noted_at is not None and soon.revoked_at is None


def test_the_periodic_task_notes_expiries(team, member, connection, pinned_clock):
    from gateway.tasks import tokens_expire_sweep

    token, value = make_token(team, member, connection=connection, lifetime=timedelta(days=7))
    pinned_clock.shift(timedelta(days=7, seconds=1))
    assert grants.resolve(value) is None  # refused at once, sweep or not
    tokens_expire_sweep.call_local()
    assert AuditEvent.objects.filter(action="token.expire", target_id=str(token.pk)).exists()


def test_the_sweep_takes_many_in_batches(team, member, connection, pinned_clock, monkeypatch):
    monkeypatch.setattr(services, "EXPIRE_BATCH", 2)
    for n in range(5):
        make_token(team, member, connection=connection, name=f"t{n}", lifetime=timedelta(days=1))
    pinned_clock.shift(timedelta(days=2))
    assert services.tokens_expire() == 5
    assert AuditEvent.objects.filter(action="token.expire").count() == 5


# --- a member removed or demoted ------------------------------------------------------------


def test_a_removed_member_loses_every_token_in_the_team(
    team, owner, member, connection, forgotten, django_capture_on_commit_callbacks
):
    first, v1 = make_token(team, member, connection=connection, name="a")
    second, v2 = make_token(team, member, connection=connection, name="b", scopes=["models"])
    _others, v3 = make_token(team, owner, connection=connection, name="c")
    membership = Membership.objects.get(team=team, user=member)

    with django_capture_on_commit_callbacks(execute=True):
        account_services.member_remove(membership=membership, actor=owner, actor_role=Role.OWNER)

    assert grants.resolve(v1) is None and grants.resolve(v2) is None
    assert grants.resolve(v3) is not None
    events = AuditEvent.objects.filter(action="token.revoke")
    assert sorted(e.target_id for e in events) == sorted([str(first.pk), str(second.pk)])
    assert all(e.actor == owner and e.data["reason"] == "member_removed" for e in events)
    assert sorted(forgotten) == sorted([first.prefix, second.prefix])
    # Invited back later, the old tokens stay revoked.
    Membership.objects.create(team=team, user=member, role=Role.MEMBER)
    assert grants.resolve(v1) is None


def test_a_member_who_leaves_loses_their_tokens(team, member, connection):
    token, _value = make_token(team, member, connection=connection)
    membership = Membership.objects.get(team=team, user=member)
    account_services.member_remove(membership=membership, actor=member, actor_role=Role.MEMBER)
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == member


def test_a_member_lowered_to_viewer_keeps_only_read_only_tokens(team, owner, member, connection):
    full, v_full = make_token(team, member, connection=connection, name="full")
    read, v_read = make_token(team, member, connection=connection, name="read", scopes=["models"])
    membership = Membership.objects.get(team=team, user=member)

    account_services.member_role_change(
        membership=membership, role=Role.VIEWER, actor=owner, actor_role=Role.OWNER
    )

    full.refresh_from_db()
    read.refresh_from_db()
    assert full.revoked_at is not None and read.revoked_at is None
    assert grants.resolve(v_full) is None
    assert grants.resolve(v_read).scopes == {Scope.MODELS}
    event = AuditEvent.objects.get(action="token.revoke")
    assert event.target_id == str(full.pk) and event.data["reason"] == "member_demoted"


def test_a_promotion_changes_no_token(team, owner, member, connection):
    token, _value = make_token(team, member, connection=connection)
    membership = Membership.objects.get(team=team, user=member)
    account_services.member_role_change(
        membership=membership, role=Role.ADMIN, actor=owner, actor_role=Role.OWNER
    )
    token.refresh_from_db()
    assert token.revoked_at is None
    assert not AuditEvent.objects.filter(action="token.revoke").exists()


def test_service_tokens_outlive_the_admin_who_made_them(team, owner, admin_user, connection):
    _token, value = make_token(team, None, connection=connection, created_by=admin_user)
    membership = Membership.objects.get(team=team, user=admin_user)
    account_services.member_remove(membership=membership, actor=owner, actor_role=Role.OWNER)
    assert grants.resolve(value) is not None


def test_replacing_the_connections_key_does_not_disturb_tokens(team, member, connection):
    from connections.models import Connection

    _token, value = make_token(team, member, connection=connection)
    connection = Connection.objects.get(pk=connection.pk)
    connection.set_api_key("sk-test-ok-replaced00000000wxyz")
    connection.save()
    grant = grants.resolve(value)
    assert grant is not None
    assert grant.endpoint.api_key == "sk-test-ok-replaced00000000wxyz"


def test_tokens_made_at_the_pinned_moment(team, member, connection, pinned_clock):
    token, _value = make_token(team, member, connection=connection)
    assert token.created_at.date() == PINNED_NOW.date()
