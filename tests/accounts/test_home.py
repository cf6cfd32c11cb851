from django.urls import reverse

from accounts.models import Membership
from tests.conftest import client_for, make_user


def test_no_account_yet_goes_to_setup(client, db):
    assert client.get("/")["Location"] == reverse("accounts:setup")


def test_anonymous_goes_to_sign_in(client, owner):
    assert client.get("/")["Location"] == reverse("accounts:login")


def test_member_goes_to_their_team(owner_client, team):
    assert owner_client.get("/")["Location"] == reverse("dashboard:team_home", args=[team.pk])


def test_last_visited_team_wins(owner, team, other_team):
    Membership.objects.create(team=other_team, user=owner, role="viewer")
    client = client_for(owner)
    client.get(reverse("dashboard:team_home", args=[other_team.pk]))
    assert client.get("/")["Location"] == reverse("dashboard:team_home", args=[other_team.pk])


def test_user_without_team_creates_one(db):
    client = client_for(make_user("lonely@example.com"))
    assert client.get("/")["Location"] == reverse("accounts:team_create")
