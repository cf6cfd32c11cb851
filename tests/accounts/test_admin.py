import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Membership, Role, Team, User
from accounts.services import audit_log
from tests.accounts.helpers import make_invitation
from tests.conftest import client_for, make_user


@pytest.fixture
def superuser(db) -> User:
    return make_user("root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def root(superuser):
    return client_for(superuser)


@pytest.mark.parametrize("model", ["user", "team", "membership", "invitation", "auditevent"])
def test_changelists_open(root, users, team, model):
    make_invitation(team)
    audit_log(team=team, actor=users["owner"], action="team.rename", target=team)
    response = root.get(reverse(f"admin:accounts_{model}_changelist"))
    assert response.status_code == 200


def test_user_list_and_search(root, users):
    response = root.get(reverse("admin:accounts_user_changelist"), {"q": "viewer@"})
    body = response.content.decode()
    assert "viewer@example.com" in body
    assert "member@example.com" not in body
    assert "column-last_login" in body


def test_add_user_by_email(root, db):
    response = root.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "Added@Example.com",
            "name": "Added",
            "usable_password": "true",
            "password1": "plum-orbit-cascade-77",
            "password2": "plum-orbit-cascade-77",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(email="added@example.com")
    assert user.check_password("plum-orbit-cascade-77")


def test_add_user_refuses_duplicate_address(root, owner):
    response = root.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "OWNER@example.com",
            "usable_password": "true",
            "password1": "plum-orbit-cascade-77",
            "password2": "plum-orbit-cascade-77",
        },
    )
    assert response.status_code == 200
    assert "An account with this email address already exists." in response.content.decode()


def test_user_change_page(root, owner):
    response = root.get(reverse("admin:accounts_user_change", args=[owner.pk]))
    assert response.status_code == 200
    assert "owner@example.com" in response.content.decode()


def test_audit_events_are_read_only(root, users, team):
    event = audit_log(team=team, actor=users["owner"], action="team.rename", target=team)
    assert root.get(reverse("admin:accounts_auditevent_add")).status_code == 403
    assert root.get(reverse("admin:accounts_auditevent_delete", args=[event.pk])).status_code == 403
    change = root.get(reverse("admin:accounts_auditevent_change", args=[event.pk]))
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    root.post(reverse("admin:accounts_auditevent_change", args=[event.pk]), {"action": "x"})
    event.refresh_from_db()
    assert event.action == "team.rename"
    search = root.get(reverse("admin:accounts_auditevent_changelist"), {"q": "owner@"})
    assert "team.rename" in search.content.decode()


def test_team_rename_in_admin_is_audited(root, superuser, team):
    response = root.post(
        reverse("admin:accounts_team_change", args=[team.pk]),
        {
            "name": "Acme Admin",
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()
    event = AuditEvent.objects.get(action="team.rename")
    assert event.actor == superuser
    assert event.data == {"from": "Acme", "to": "Acme Admin", "via": "admin"}


def test_team_delete_in_admin_is_audited(root, superuser, team):
    root.post(reverse("admin:accounts_team_delete", args=[team.pk]), {"post": "yes"})
    assert not Team.objects.filter(pk=team.pk).exists()
    event = AuditEvent.objects.get(action="team.delete")
    assert event.team is None
    assert event.data == {"name": "Acme", "via": "admin"}


def test_inline_membership_changes_are_audited(root, users, team):
    owner_m = Membership.objects.get(team=team, user=users["owner"])
    viewer_m = Membership.objects.get(team=team, user=users["viewer"])
    newcomer = make_user("newcomer@example.com")
    data = {
        "name": "Acme",
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        "memberships-TOTAL_FORMS": "3",
        "memberships-INITIAL_FORMS": "2",
        "memberships-0-id": owner_m.pk,
        "memberships-0-team": team.pk,
        "memberships-0-user": users["owner"].pk,
        "memberships-0-role": "owner",
        "memberships-1-id": viewer_m.pk,
        "memberships-1-team": team.pk,
        "memberships-1-user": users["viewer"].pk,
        "memberships-1-role": "member",
        "memberships-2-team": team.pk,
        "memberships-2-user": newcomer.pk,
        "memberships-2-role": "viewer",
    }
    # Only two of the four memberships are in the form; the others stay untouched.
    response = root.post(reverse("admin:accounts_team_change", args=[team.pk]), data)
    assert response.status_code == 302, response.content.decode()
    change = AuditEvent.objects.get(action="member.role_change")
    assert change.data == {
        "email": "viewer@example.com",
        "from": "viewer",
        "to": "member",
        "via": "admin",
    }
    added = AuditEvent.objects.get(action="member.add")
    assert added.data == {"email": "newcomer@example.com", "role": "viewer", "via": "admin"}

    data.update({"memberships-1-role": "member", "memberships-1-DELETE": "on"})
    data.update({"memberships-TOTAL_FORMS": "2"})
    root.post(reverse("admin:accounts_team_change", args=[team.pk]), data)
    removed = AuditEvent.objects.get(action="member.remove")
    assert removed.data == {"email": "viewer@example.com", "role": "member", "via": "admin"}
    assert removed.target_id == str(viewer_m.pk)


def test_membership_admin_is_audited(root, users, team):
    newcomer = make_user("newcomer@example.com")
    root.post(
        reverse("admin:accounts_membership_add"),
        {
            "team": team.pk,
            "user": newcomer.pk,
            "role": "viewer",
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
        },
    )
    membership = Membership.objects.get(team=team, user=newcomer)
    assert AuditEvent.objects.filter(action="member.add", target_id=str(membership.pk)).exists()

    root.post(
        reverse("admin:accounts_membership_change", args=[membership.pk]),
        {
            "team": team.pk,
            "user": newcomer.pk,
            "role": "admin",
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
        },
    )
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    assert AuditEvent.objects.get(action="member.role_change").data["to"] == "admin"

    root.post(reverse("admin:accounts_membership_delete", args=[membership.pk]), {"post": "yes"})
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.get(action="member.remove").data["email"] == "newcomer@example.com"


def test_membership_list_filters(root, users, team):
    response = root.get(reverse("admin:accounts_membership_changelist"), {"role__exact": "owner"})
    body = response.content.decode()
    assert "owner@example.com" in body
    assert "viewer@example.com" not in body


def test_staff_only(owner_client):
    response = owner_client.get(reverse("admin:index"))
    assert response.status_code == 302
