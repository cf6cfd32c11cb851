"""Which connection "New assistant" and "Look up a run" open on, and how pickers mark the
connections that do not work (assistants.selectors.connection_default)."""

import pytest
from django.urls import reverse
from django.utils.timezone import now

from connections.models import Health
from tests.assistants.helpers import make_assistant, make_run
from tests.connections import helpers

pytestmark = pytest.mark.django_db


def make_connection(team, **fields):
    """A connection with a model list: the forms then queue no fetch, whose failure (run at
    once in tests) would change the health these tests set."""
    models = [{"id": "gpt-4o", "object": "model"}]
    return helpers.make_connection(team, models_cache=models, models_cached_at=now(), **fields)


def _create_page(client, team) -> str:
    return client.get(reverse("assistants:create", args=[team.pk])).content.decode()


def _lookup_page(client, team) -> str:
    return client.get(reverse("assistants:run_lookup", args=[team.pk])).content.decode()


def _selected(page: str) -> str:
    """The label of the selected option of the page's connection picker."""
    picker = page.split('name="connection"')[1].split("</select>")[0]
    return picker.split(" selected>")[1].split("</option>")[0]


@pytest.fixture
def broken_first(team):
    # "A…" sorts first by name and is broken: the old default.
    broken = make_connection(team, name="Account gone", health=Health.INVALID_KEY)
    busy = make_connection(team, name="Busy", health=Health.RATE_LIMITED)
    working = make_connection(team, name="Working", health=Health.OK)
    return broken, busy, working


def test_new_assistant_opens_on_a_working_connection(team, member_client, broken_first):
    page = _create_page(member_client, team)
    assert "Assistant on “Working”" in page
    assert _selected(page) == "Working"


def test_broken_connections_are_marked_in_the_picker(team, member_client, broken_first):
    page = _create_page(member_client, team)
    assert ">Account gone (Invalid key)</option>" in page
    assert ">Busy (Rate limited)</option>" in page
    assert ">Working</option>" in page
    lookup = _lookup_page(member_client, team)
    assert ">Account gone (Invalid key)</option>" in lookup


def test_the_last_connection_used_wins_while_it_works(team, member, member_client):
    make_connection(team, name="Alpha", health=Health.OK)
    beta = make_connection(team, name="Beta", health=Health.OK)
    make_run(make_assistant(team, beta), started_by=member)

    assert _selected(_create_page(member_client, team)) == "Beta"
    assert _selected(_lookup_page(member_client, team)) == "Beta"

    beta.health = Health.NO_QUOTA
    beta.save(update_fields=["health"])
    assert _selected(_create_page(member_client, team)) == "Alpha"


def test_someone_elses_last_run_does_not_count(team, owner, member_client):
    make_connection(team, name="Alpha", health=Health.OK)
    beta = make_connection(team, name="Beta", health=Health.OK)
    make_run(make_assistant(team, beta), started_by=owner)
    assert _selected(_create_page(member_client, team)) == "Alpha"


def test_an_unchecked_connection_comes_before_a_troubled_one(team, viewer_client):
    make_connection(team, name="Alpha", health=Health.OVERLOADED)
    make_connection(team, name="Beta", health=Health.UNCHECKED)
    assert _selected(_lookup_page(viewer_client, team)) == "Beta"


def test_a_chosen_connection_is_kept(team, member_client, broken_first):
    broken, _, _ = broken_first
    page = member_client.get(
        reverse("assistants:create", args=[team.pk]), {"connection": broken.pk}
    ).content.decode()
    assert "Assistant on “Account gone”" in page
