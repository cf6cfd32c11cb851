from django.urls import reverse

from accounts.models import AuditEvent


def _url(team):
    return reverse("accounts:team_settings", args=[team.pk])


def test_admin_sees_rename_form_but_no_delete(admin_client_, team):
    body = admin_client_.get(_url(team)).content.decode()
    assert 'value="Acme"' in body
    assert reverse("accounts:team_delete", args=[team.pk]) not in body


def test_owner_sees_delete_link(owner_client, team):
    body = owner_client.get(_url(team)).content.decode()
    assert reverse("accounts:team_delete", args=[team.pk]) in body


def test_rename(admin_client_, admin_user, team):
    response = admin_client_.post(_url(team), {"name": "Acme Labs"})
    assert response["Location"] == _url(team)
    team.refresh_from_db()
    assert team.name == "Acme Labs"
    event = AuditEvent.objects.get(action="team.rename")
    assert event.actor == admin_user
    assert event.data == {"from": "Acme", "to": "Acme Labs"}
    assert "Team renamed." in admin_client_.get(_url(team)).content.decode()


def test_empty_name_is_refused(admin_client_, team):
    response = admin_client_.post(_url(team), {"name": "  "})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    team.refresh_from_db()
    assert team.name == "Acme"


def test_member_refused(member_client, team):
    assert member_client.post(_url(team), {"name": "Mine"}).status_code == 403
    team.refresh_from_db()
    assert team.name == "Acme"
