"""A connection's "Test now" and its model list's "Refresh" answer at once and leave the
provider call to a task: the page says "checking…" / "refreshing…" and fetches itself (htmx)
until the task is done; a reload without JavaScript shows the result.

Huey runs as a deployment has it here (`queued`): a task waits in the queue until the test
runs it, so "the page answered without asking the provider" is seen in the fake's requests."""

import pytest
from django.urls import reverse

from connections.models import Health
from fakeprovider import KEY_INVALID, KEY_OK
from fakeprovider.keys import KEY_SLOW
from tests.connections.helpers import make_connection
from tests.taskqueue import empty_queue, queued, queued_names, run_queued  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("queued")]


def page_url(name: str, connection) -> str:
    return reverse(name, kwargs={"team_id": connection.team_id, "connection_id": connection.pk})


def test_test_now_answers_checking_and_a_task_checks(admin_client_, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_INVALID)

    response = admin_client_.post(page_url("connections:test", connection), follow=True)

    page = response.content.decode()
    assert response.status_code == 200
    assert "<strong>Checking…</strong>" in page
    detail = page_url("connections:detail", connection)
    assert f'hx-get="{detail}"' in page
    assert 'hx-select="#connection-health"' in page
    assert fake_upstream.requests == []
    assert queued_names() == ["connection_check_now"]

    run_queued()  # the consumer

    connection.refresh_from_db()
    assert connection.health == Health.INVALID_KEY
    page = admin_client_.get(detail).content.decode()  # what htmx (or a reload) fetches
    assert "<strong>Checking…</strong>" not in page
    assert "hx-get" not in page
    assert "Invalid authentication (401)" in page
    (sent,) = fake_upstream.requests_to("/v1/models")
    assert sent.headers["authorization"] == f"Bearer {KEY_INVALID}"


def test_test_now_on_a_slow_provider_does_not_wait(admin_client_, team, fake_upstream):
    fake_upstream.slow_seconds = 30
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_SLOW)

    response = admin_client_.post(page_url("connections:test", connection))

    assert response.status_code == 302
    assert fake_upstream.requests == []  # the request never reached the provider
    assert queued_names() == ["connection_check_now"]


def test_a_check_asked_for_twice_while_queued_shows_checking_once(
    admin_client_, team, fake_upstream
):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    admin_client_.post(page_url("connections:test", connection))
    admin_client_.post(page_url("connections:test", connection))

    run_queued()

    connection.refresh_from_db()
    assert connection.health == Health.OK
    page = admin_client_.get(page_url("connections:detail", connection)).content.decode()
    assert "<strong>Checking…</strong>" not in page
    assert "The key worked at the last check." in page


def test_refresh_models_answers_refreshing_and_a_task_fetches(member_client, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)

    response = member_client.post(page_url("connections:models_refresh", connection), follow=True)

    page = response.content.decode()
    assert "Refreshing…" in page
    assert 'hx-select="#connection-models"' in page
    assert fake_upstream.requests == []
    assert queued_names() == ["connection_models_refresh"]

    run_queued()

    page = member_client.get(page_url("connections:models", connection)).content.decode()
    assert "Refreshing…" not in page
    assert "gpt-4o" in page
    assert len(fake_upstream.requests_to("/v1/models")) == 1


def test_a_viewer_sees_the_check_under_way(admin_client_, viewer_client, team, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    admin_client_.post(page_url("connections:test", connection))

    page = viewer_client.get(page_url("connections:detail", connection)).content.decode()

    assert "<strong>Checking…</strong>" in page
