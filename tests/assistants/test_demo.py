"""The assistants part of the demo: assistants and runs on both run APIs, run again safely."""

import pytest

from accounts.models import Role
from assistants.demo import RESPONSES_NAME, seed_assistants
from assistants.models import Assistant, Run
from fakeprovider import KEY_QUOTA
from tests.assistants.helpers import fake_connection

pytestmark = pytest.mark.django_db


def test_seed_builds_both_run_apis_and_can_run_again(team, owner, admin_user, member, viewer, fake):
    users = {Role.OWNER: owner, Role.ADMIN: admin_user, Role.MEMBER: member, Role.VIEWER: viewer}
    connections = {
        "Production": fake_connection(team, fake, name="Production"),
        "Out of credit": fake_connection(team, fake, name="Out of credit", key=KEY_QUOTA),
    }

    seed_assistants(team, users, connections)
    seed_assistants(team, users, connections)

    states = dict(Assistant.objects.filter(team=team).values_list("name", "sync_state"))
    assert states == {
        "Math Tutor": "synced",
        "Weather helper": "synced",
        "Translator": "synced",
        "Billing example": "failed",
    }
    assert Assistant.objects.get(name="Translator").connection.name == RESPONSES_NAME
    backends = set(Run.objects.filter(team=team).values_list("backend", flat=True))
    assert backends == {"assistants", "responses"}
    assert Run.objects.filter(team=team).count() == 7 + 2 * 3  # and a conversation on each API
    conversations = Run.objects.filter(team=team, turn=3)
    assert sorted(conversations.values_list("backend", flat=True)) == ["assistants", "responses"]
    statuses = set(Run.objects.values_list("status", flat=True))
    assert {"completed", "failed", "expired", "incomplete", "in_progress"} <= statuses
