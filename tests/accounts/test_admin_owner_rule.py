"""The Django admin keeps the members page's rule: a team always keeps at least one owner."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Invitation, Membership, Role, Team, User
from tests.accounts.helpers import make_invitation
from tests.conftest import client_for, make_user

LAST_OWNER = "A team needs at least one owner. Make someone else owner first."
LEFT_WITHOUT_OWNER = "“Acme” would be left without an owner. Make someone else owner first."


@pytest.fixture
def root(db):
    return client_for(make_user("root@example.com", is_staff=True, is_superuser=True))


def _m(team, user) -> Membership:
    return Membership.objects.get(team=team, user=user)


def _role(team, user) -> str:
    return _m(team, user).role


def _membership_form(membership: Membership, **changes) -> dict:
    return {
        "team": membership.team_id,
        "user": membership.user_id,
        "role": membership.role,
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        **changes,
    }


def _team_form(team: Team, rows: list[dict]) -> dict:
    data = {
        "name": team.name,
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        "memberships-TOTAL_FORMS": str(len(rows)),
        "memberships-INITIAL_FORMS": str(sum("id" in row for row in rows)),
    }
    for number, row in enumerate(rows):
        for field, value in {"team": team.pk, **row}.items():
            data[f"memberships-{number}-{field}"] = value
    return data


def _row(membership: Membership, **changes) -> dict:
    return {"id": membership.pk, "user": membership.user_id, "role": membership.role, **changes}


def _page(client, response) -> str:
    if response.status_code == 302:
        response = client.get(response["Location"])
    return response.content.decode()


# --- The Membership admin ----------------------------------------------------------------------


def test_demoting_the_last_owner_is_refused(root, users, team):
    owner_m = _m(team, users["owner"])
    url = reverse("admin:accounts_membership_change", args=[owner_m.pk])
    response = root.post(url, _membership_form(owner_m, role="admin"))

    assert response.status_code == 200
    assert LAST_OWNER in response.content.decode()
    assert _role(team, users["owner"]) == Role.OWNER
    assert not AuditEvent.objects.filter(action="member.role_change").exists()


def test_moving_the_last_owner_to_another_team_is_refused(root, users, team, other_team):
    owner_m = _m(team, users["owner"])
    url = reverse("admin:accounts_membership_change", args=[owner_m.pk])
    response = root.post(url, _membership_form(owner_m, team=other_team.pk))

    assert LAST_OWNER in response.content.decode()
    owner_m.refresh_from_db()
    assert owner_m.team == team


def test_demoting_one_of_two_owners_is_fine(root, users, team):
    Membership.objects.filter(team=team, user=users["admin"]).update(role=Role.OWNER)
    owner_m = _m(team, users["owner"])
    url = reverse("admin:accounts_membership_change", args=[owner_m.pk])
    response = root.post(url, _membership_form(owner_m, role="admin"))

    assert response.status_code == 302
    assert _role(team, users["owner"]) == Role.ADMIN


def test_deleting_the_last_owner_is_refused(root, users, team):
    owner_m = _m(team, users["owner"])
    url = reverse("admin:accounts_membership_delete", args=[owner_m.pk])

    for send in (root.get, lambda url: root.post(url, {"post": "yes"})):
        response = send(url)
        assert response.status_code == 302
        assert LEFT_WITHOUT_OWNER in _page(root, response)
    assert Membership.objects.filter(pk=owner_m.pk).exists()
    assert not AuditEvent.objects.filter(action="member.remove").exists()


def test_deleting_one_of_two_owners_is_fine(root, users, team):
    Membership.objects.filter(team=team, user=users["admin"]).update(role=Role.OWNER)
    owner_m = _m(team, users["owner"])
    root.post(reverse("admin:accounts_membership_delete", args=[owner_m.pk]), {"post": "yes"})
    assert not Membership.objects.filter(pk=owner_m.pk).exists()


def test_bulk_deleting_every_owner_is_refused(root, users, team):
    Membership.objects.filter(team=team, user=users["admin"]).update(role=Role.OWNER)
    both = [_m(team, users["owner"]).pk, _m(team, users["admin"]).pk, _m(team, users["viewer"]).pk]
    url = reverse("admin:accounts_membership_changelist")

    for extra in ({}, {"post": "yes"}):  # the confirmation page, then the confirmation
        data = {"action": "delete_selected", "_selected_action": both, **extra}
        response = root.post(url, data)
        assert response.status_code == 302
        body = _page(root, response)
        assert LEFT_WITHOUT_OWNER in body
        assert "Successfully deleted" not in body
    assert Membership.objects.filter(pk__in=both).count() == 3


def test_bulk_deleting_some_members_is_fine(root, users, team):
    chosen = [_m(team, users["viewer"]).pk, _m(team, users["member"]).pk]
    url = reverse("admin:accounts_membership_changelist")
    data = {"action": "delete_selected", "_selected_action": chosen, "post": "yes"}
    response = root.post(url, data)
    assert "Successfully deleted 2 memberships." in _page(root, response)
    assert not Membership.objects.filter(pk__in=chosen).exists()
    assert AuditEvent.objects.filter(action="member.remove").count() == 2


# --- The memberships inline on the team page ---------------------------------------------------


def test_inline_demotion_of_the_last_owner_is_refused(root, users, team):
    owner_m = _m(team, users["owner"])
    url = reverse("admin:accounts_team_change", args=[team.pk])
    response = root.post(url, _team_form(team, [_row(owner_m, role="member")]))

    assert response.status_code == 200
    assert LAST_OWNER in response.content.decode()
    assert _role(team, users["owner"]) == Role.OWNER


def test_inline_deletion_of_the_last_owner_is_refused(root, users, team):
    owner_m = _m(team, users["owner"])
    url = reverse("admin:accounts_team_change", args=[team.pk])
    response = root.post(url, _team_form(team, [_row(owner_m, DELETE="on")]))

    assert response.status_code == 200
    assert LAST_OWNER in response.content.decode()
    assert Membership.objects.filter(pk=owner_m.pk).exists()
    assert not AuditEvent.objects.filter(action="member.remove").exists()


def test_inline_handover_in_one_save_is_fine(root, users, team):
    rows = [
        _row(_m(team, users["owner"]), role="admin"),
        _row(_m(team, users["admin"]), role="owner"),
    ]
    response = root.post(
        reverse("admin:accounts_team_change", args=[team.pk]), _team_form(team, rows)
    )

    assert response.status_code == 302, response.content.decode()
    assert _role(team, users["owner"]) == Role.ADMIN
    assert _role(team, users["admin"]) == Role.OWNER


def test_inline_new_owner_replacing_the_deleted_one_is_fine(root, users, team):
    newcomer = make_user("newcomer@example.com")
    rows = [_row(_m(team, users["owner"]), DELETE="on"), {"user": newcomer.pk, "role": "owner"}]
    response = root.post(
        reverse("admin:accounts_team_change", args=[team.pk]), _team_form(team, rows)
    )

    assert response.status_code == 302, response.content.decode()
    assert _role(team, newcomer) == Role.OWNER
    assert not Membership.objects.filter(team=team, user=users["owner"]).exists()


# --- Deleting the account of a team's last owner -----------------------------------------------


def test_deleting_the_last_owners_account_is_refused(root, users, team):
    url = reverse("admin:accounts_user_delete", args=[users["owner"].pk])
    for send in (root.get, lambda url: root.post(url, {"post": "yes"})):
        response = send(url)
        assert response.status_code == 302
        assert LEFT_WITHOUT_OWNER in _page(root, response)
    assert User.objects.filter(pk=users["owner"].pk).exists()

    bulk = {"action": "delete_selected", "_selected_action": [users["owner"].pk], "post": "yes"}
    response = root.post(reverse("admin:accounts_user_changelist"), bulk)
    assert LEFT_WITHOUT_OWNER in _page(root, response)
    assert User.objects.filter(pk=users["owner"].pk).exists()


def test_deleting_another_account_is_fine(root, users, team):
    root.post(reverse("admin:accounts_user_delete", args=[users["viewer"].pk]), {"post": "yes"})
    assert not User.objects.filter(pk=users["viewer"].pk).exists()


# --- Demotions and removals in the admin revoke what the person may no longer give -----------


def test_admin_demotion_and_removal_revoke_invitations(root, users, team):
    as_admin = make_invitation(
        team, email="a@example.com", role=Role.ADMIN, invited_by=users["admin"]
    )
    as_viewer = make_invitation(team, email="v@example.com", invited_by=users["admin"])
    admin_m = _m(team, users["admin"])

    root.post(
        reverse("admin:accounts_membership_change", args=[admin_m.pk]),
        _membership_form(admin_m, role="viewer"),
    )
    as_admin.refresh_from_db()
    as_viewer.refresh_from_db()
    assert as_admin.revoked_at is not None
    assert as_viewer.revoked_at is not None

    by_member = make_invitation(team, email="m@example.com", invited_by=users["member"])
    member_m = _m(team, users["member"])
    rows = [_row(member_m, DELETE="on")]
    root.post(reverse("admin:accounts_team_change", args=[team.pk]), _team_form(team, rows))
    by_member.refresh_from_db()
    assert by_member.revoked_at is not None

    events = AuditEvent.objects.filter(action="invitation.revoke")
    assert sorted((e.data["email"], e.data["reason"]) for e in events) == [
        ("a@example.com", "inviter_demoted"),
        ("m@example.com", "inviter_removed"),
        ("v@example.com", "inviter_demoted"),
    ]
    assert Invitation.objects.filter(revoked_at__isnull=True).count() == 0
