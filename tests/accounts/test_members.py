import re

from django.urls import reverse

from accounts.models import Membership, Role, User
from tests.accounts.helpers import make_invitation


def _url(team):
    return reverse("accounts:members", args=[team.pk])


def test_everyone_sees_members_and_roles(viewer_client, users, team):
    response = viewer_client.get(_url(team))
    assert response.status_code == 200
    body = response.content.decode()
    for email in ("owner@example.com", "admin@example.com", "member@example.com"):
        assert email in body
    assert "outsider@example.com" not in body
    for role in ("Owner", "Admin", "Member", "Viewer"):
        assert f">{role}</span>" in body


def test_viewer_sees_no_admin_actions_but_can_leave(viewer_client, viewer, users, team):
    make_invitation(team, email="pending@example.com")
    body = viewer_client.get(_url(team)).content.decode()
    assert "Invite someone" not in body
    assert "pending@example.com" not in body
    assert 'name="role"' not in body
    assert "Leave team" in body
    own = viewer.memberships.get()
    assert reverse("accounts:member_remove", args=[team.pk, own.pk]) in body


def test_admin_sees_invite_form_and_pending_invitations(admin_client_, users, team):
    make_invitation(team, email="pending@example.com")
    body = admin_client_.get(_url(team)).content.decode()
    assert "Invite someone" in body
    assert "pending@example.com" in body
    assert "Revoke" in body


def test_admin_may_manage_everyone_but_owners(admin_client_, users, team):
    body = admin_client_.get(_url(team)).content.decode()
    owner_membership = users["owner"].memberships.get()
    member_membership = users["member"].memberships.get()
    assert reverse("accounts:member_role", args=[team.pk, member_membership.pk]) in body
    assert reverse("accounts:member_role", args=[team.pk, owner_membership.pk]) not in body
    # An admin is not offered the owner role.
    assert '<option value="owner"' not in body


def test_only_owner_is_marked(owner_client, users, team):
    body = owner_client.get(_url(team)).content.decode()
    assert "Only owner" in body
    assert '<option value="owner"' in body


def test_the_invite_form_says_what_each_role_may_do(admin_client_, owner_client, users, team):
    page = admin_client_.get(reverse("accounts:members", args=[team.pk])).content.decode()
    section = page.split('id="role-descriptions"')[1].split("</dl>")[0]
    assert "changes nothing and starts no run" in section  # viewer
    assert "creates, edits and runs assistants" in section  # member
    assert "adds, replaces and removes connections and keys" in section  # admin
    # An admin cannot make owners, so the owner's line is not offered to them...
    assert "hands ownership" not in section
    # ...but is to an owner.
    page = owner_client.get(reverse("accounts:members", args=[team.pk])).content.decode()
    assert "hands ownership" in page.split('id="role-descriptions"')[1]


def test_owners_first_then_each_role_by_email_across_pages(admin_client_, users, team):
    # Sixteen more of each of three roles: pages of ten cross from one role to the next.
    for role in (Role.ADMIN, Role.MEMBER, Role.VIEWER):
        for number in range(16):
            user = User.objects.create(email=f"{role.value}-{15 - number:02d}@zeta.example")
            Membership.objects.create(team=team, user=user, role=role)
    rank = {Role.OWNER: 0, Role.ADMIN: 1, Role.MEMBER: 2, Role.VIEWER: 3}
    expected = [
        m.user.email
        for m in sorted(
            Membership.objects.filter(team=team).select_related("user"),
            key=lambda m: (rank[m.role], m.user.email),
        )
    ]
    shown = []
    for page in range(1, 7):
        body = admin_client_.get(_url(team), {"size": 10, "page": page}).content.decode()
        shown += re.findall(r"<td>([^<>@]+@[^<>]+)</td>", body)
    assert shown == expected
