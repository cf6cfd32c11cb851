"""manage.py demo_seed: the demo team, against the fake provider on loopback."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Role, Team, User
from assistants import demo as assistants_demo
from connections.models import Connection, Health
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def run(name: str, *args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_demo_seed_builds_every_state_and_can_run_again(fake_upstream):
    out, _ = run("demo_seed", "--upstream", fake_upstream.base_url, "--password", PASSWORD)
    run("demo_seed", "--upstream", fake_upstream.base_url, "--password", PASSWORD)

    team = Team.objects.get(name="Demo")
    assert Team.objects.filter(name="Demo").count() == 1
    roles = dict(Membership.objects.filter(team=team).values_list("user__email", "role"))
    assert roles == {
        "owner@demo.test": Role.OWNER,
        "admin@demo.test": Role.ADMIN,
        "member@demo.test": Role.MEMBER,
        "viewer@demo.test": Role.VIEWER,
    }
    assert User.objects.get(email="viewer@demo.test").check_password(PASSWORD)
    connections = Connection.objects.filter(team=team).exclude(name=assistants_demo.RESPONSES_NAME)
    health = dict(connections.values_list("name", "health"))
    assert sorted(health.values()) == sorted(
        [
            Health.OK,
            Health.INVALID_KEY,
            Health.NO_QUOTA,
            Health.RATE_LIMITED,
            Health.OVERLOADED,
            Health.UNREACHABLE,
            Health.UNCHECKED,
            Health.KEY_UNREADABLE,
        ]
    )
    assert "owner@demo.test" in out
    assert PASSWORD in out


def test_demo_people_have_names_and_one_can_open_the_admin_site(fake_upstream):
    out, _ = run("demo_seed", "--upstream", fake_upstream.base_url, "--password", PASSWORD)
    run("demo_seed", "--upstream", fake_upstream.base_url, "--password", PASSWORD)

    people = {user.email: user for user in User.objects.filter(email__endswith="@demo.test")}
    names = {user.name for user in people.values()}
    assert len(names) == 4
    assert not names & {"Owner", "Admin", "Member", "Viewer", ""}
    staff = [email for email, user in people.items() if user.is_staff]
    assert staff == ["owner@demo.test"]
    assert "owner@demo.test" in out and "can open the admin site" in out

    client = Client()
    client.force_login(people["owner@demo.test"])
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "Connections" in response.content.decode()


def test_demo_seed_waits_for_the_fake_then_says_what_to_do():
    with pytest.raises(CommandError, match=r"python -m fakeprovider"):
        call_command("demo_seed", "--upstream", "http://127.0.0.1:9/v1", "--wait", "0.2")
