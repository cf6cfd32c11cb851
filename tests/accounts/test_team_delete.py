from django.urls import reverse

from accounts.models import AuditEvent, Team


def _url(team):
    return reverse("accounts:team_delete", args=[team.pk])


def test_asks_to_type_the_name(owner_client, team):
    body = owner_client.get(_url(team)).content.decode()
    assert "Type the team&#x27;s name to confirm" in body
    assert "It cannot be undone." in body


def test_wrong_name_keeps_the_team(owner_client, team):
    response = owner_client.post(_url(team), {"confirm": "acme"})
    assert response.status_code == 200
    assert "That is not the team&#x27;s name." in response.content.decode()
    assert Team.objects.filter(pk=team.pk).exists()


def test_deletes_and_keeps_an_audit_record(owner_client, owner, team):
    response = owner_client.post(_url(team), {"confirm": "Acme"})
    assert response["Location"] == reverse("home")
    assert not Team.objects.filter(pk=team.pk).exists()
    event = AuditEvent.objects.get(action="team.delete")
    assert event.team is None
    assert event.actor == owner
    assert event.target_id == str(team.pk)
    assert event.data == {"name": "Acme"}


def test_admin_refused(admin_client_, team):
    assert admin_client_.get(_url(team)).status_code == 403
    assert admin_client_.post(_url(team), {"confirm": "Acme"}).status_code == 403
    assert Team.objects.filter(pk=team.pk).exists()
