import json

import pytest
from django.contrib.auth import SESSION_KEY
from django.db import connection
from django.urls import reverse

from accounts import services
from accounts.models import AuditEvent, Membership, Role, Team, User
from tests.conftest import make_user
from tests.test_settings import production_env, run

SETUP = reverse("accounts:setup")
GOOD = {
    "email": "Founder@Example.com",
    "name": "Ada Founder",
    "password1": "plum-orbit-cascade-77",
    "password2": "plum-orbit-cascade-77",
    "team_name": "Research",
}


def test_first_visit_shows_the_form(client, db):
    response = client.get(SETUP)
    assert response.status_code == 200
    body = response.content.decode()
    for label in ("Email", "Name", "Password", "Password again", "Team name"):
        assert f">{label}</label>" in body


def test_creates_owner_and_team_and_signs_in(client, db):
    response = client.post(SETUP, GOOD)

    user = User.objects.get()
    team = Team.objects.get()
    assert user.email == "founder@example.com"
    assert user.name == "Ada Founder"
    assert user.is_staff and user.is_superuser
    assert user.check_password("plum-orbit-cascade-77")
    assert team.name == "Research"
    assert Membership.objects.get(team=team, user=user).role == Role.OWNER
    assert AuditEvent.objects.filter(team=team, action="team.create", actor=user).exists()

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:team_home", args=[team.pk])
    assert client.session[SESSION_KEY] == str(user.pk)
    page = client.get(response["Location"])
    assert "Welcome to Tablero. Your team is ready." in page.content.decode()
    assert client.get(reverse("admin:index")).status_code == 200


def test_passwords_must_match(client, db):
    response = client.post(SETUP, {**GOOD, "password2": "something-else-99"})
    assert response.status_code == 200
    assert "The two passwords differ." in response.content.decode()
    assert not User.objects.exists()


def test_password_validators_apply(client, db):
    response = client.post(SETUP, {**GOOD, "password1": "password", "password2": "password"})
    body = response.content.decode()
    assert "This password is too common." in body
    assert 'value="Research"' in body  # nothing typed is lost
    assert not User.objects.exists()


def test_missing_team_name(client, db):
    response = client.post(SETUP, {**GOOD, "team_name": ""})
    assert "This field is required." in response.content.decode()
    assert not User.objects.exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_gone_once_someone_exists(client, db, method):
    make_user("someone@example.com")
    response = getattr(client, method)(SETUP, GOOD)
    assert response.status_code == 404
    assert User.objects.count() == 1
    assert not Team.objects.exists()


def test_service_rechecks_inside_the_transaction(db):
    # A second request that passed the view's check before the first committed.
    make_user("first@example.com")
    with pytest.raises(services.SetupAlreadyDone):
        services.setup_first_owner(
            email="second@example.com", name="B", password="x" * 12, team_name="T"
        )
    assert User.objects.count() == 1
    assert not Team.objects.exists()


# Two first visits at once, each in its own thread and connection, on an SQLite file as
# `make run` uses; repeated, since a lost race is a matter of timing.
SETUP_RACE = """
import json, threading
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from accounts import services
from accounts.models import Team, User

settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
call_command("migrate", verbosity=0)
outcomes = []
for trial in range(5):
    Team.objects.all().delete()
    User.objects.all().delete()
    barrier = threading.Barrier(2)

    def visit(email):
        try:
            barrier.wait()
            services.setup_first_owner(
                email=email, name="", password="plum-orbit-cascade-77", team_name="T"
            )
            outcomes.append("ok")
        except Exception as error:
            outcomes.append(type(error).__name__)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=visit, args=(f"{n}{trial}@example.com",)) for n in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
print(json.dumps({"outcomes": sorted(outcomes), "users": User.objects.count()}))
"""


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite run covers SQLite")
def test_two_first_visits_at_once_on_sqlite(tmp_path):
    env = production_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = run(["-c", SETUP_RACE], env)
    assert result.returncode == 0, result.stderr
    race = json.loads(result.stdout.splitlines()[-1])
    # Each time one creates the owner and the other is told setup is done (a 404), never
    # "database is locked" (a 500).
    assert race == {"outcomes": ["SetupAlreadyDone"] * 5 + ["ok"] * 5, "users": 1}
