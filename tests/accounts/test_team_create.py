from django.urls import reverse

from accounts.models import AuditEvent, Membership, Role, Team

URL = reverse("accounts:team_create")


def test_shows_form(viewer_client):
    response = viewer_client.get(URL)
    assert response.status_code == 200
    assert ">Team name</label>" in response.content.decode()


def test_creates_team_owned_by_creator(viewer_client, viewer):
    response = viewer_client.post(URL, {"name": "  Skunkworks "})
    team = Team.objects.get(name="Skunkworks")
    assert response["Location"] == reverse("dashboard:team_home", args=[team.pk])
    assert Membership.objects.get(team=team, user=viewer).role == Role.OWNER
    event = AuditEvent.objects.get(team=team, action="team.create")
    assert event.actor == viewer
    page = viewer_client.get(response["Location"]).content.decode()
    assert "Team “Skunkworks” created." in page


def test_name_required(viewer_client, team):
    response = viewer_client.post(URL, {"name": ""})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert Team.objects.count() == 1


def test_anonymous_redirected(client, db):
    response = client.get(URL)
    assert response["Location"].startswith(reverse("accounts:login"))
