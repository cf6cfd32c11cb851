"""The team home tells admins when background checks have stopped (no heartbeat from the task
consumer for a few minutes), so an operator notices; others are not troubled with it."""

from datetime import timedelta

import pytest
from django.urls import reverse

from lib.taskqueue import heartbeat_record
from tests.taskqueue import empty_queue  # noqa: F401

pytestmark = pytest.mark.django_db

NEVER = "Background checks are not running: no task consumer has reported yet."
STOPPED = "Background checks have stopped: the task consumer last reported"


def home(client, team) -> str:
    return client.get(reverse("dashboard:team_home", args=[team.pk])).content.decode()


def test_admins_are_told_when_no_consumer_ever_ran(admin_client_, owner_client, team):
    for client in (admin_client_, owner_client):
        page = home(client, team)
        assert NEVER in page
        assert "manage.py run_huey" in page


def test_admins_are_told_when_the_consumer_stopped(pinned_clock, admin_client_, team):
    heartbeat_record()
    pinned_clock.shift(timedelta(minutes=10))

    page = home(admin_client_, team)

    assert f"{STOPPED} 10\xa0minutes ago." in page
    assert NEVER not in page


def test_nothing_is_said_while_the_consumer_reports(pinned_clock, admin_client_, team):
    heartbeat_record()
    pinned_clock.shift(timedelta(minutes=2))

    page = home(admin_client_, team)

    assert 'id="background-stopped"' not in page


def test_members_and_viewers_are_not_told(member_client, viewer_client, team):
    for client in (member_client, viewer_client):
        assert 'id="background-stopped"' not in home(client, team)


def test_said_in_spanish_too(admin_client_, team, settings):
    admin_client_.cookies[settings.LANGUAGE_COOKIE_NAME] = "es"
    page = home(admin_client_, team)
    assert 'id="background-stopped"' in page
    assert NEVER not in page
