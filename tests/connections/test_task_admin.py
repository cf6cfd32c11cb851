"""The admin site's page of background tasks: the tasks waiting in the queue (read from
Huey's storage) and the tasks that failed (noted by lib.taskqueue's signal handler), with ids
only and keys masked; failures are forgotten with the provider errors."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from huey.contrib.djhuey import HUEY, db_task

from connections import tasks
from connections.models import TaskFailure
from tests.conftest import client_for, make_user
from tests.connections.helpers import CANARY_KEY
from tests.taskqueue import empty_queue, queued  # noqa: F401

pytestmark = pytest.mark.django_db

URL = "/admin/connections/taskfailure/"


@db_task()
def _breaks(connection_id: str, note: str) -> None:
    raise ValueError(f"the provider refused {note} for {connection_id}")


@pytest.fixture
def su_client(db):
    return client_for(make_user("root@example.com", is_staff=True, is_superuser=True))


def test_the_url_is_the_admins():
    assert reverse("admin:connections_taskfailure_changelist") == URL


def test_a_failed_task_is_noted_without_the_key_and_shown(su_client):
    _breaks("7f1c2a4e-0000-4000-8000-000000000001", CANARY_KEY)

    failure = TaskFailure.objects.get()
    assert failure.task_name.endswith("_breaks")
    assert failure.signal == "error"
    assert failure.error_class == "ValueError"
    assert "'7f1c2a4e-0000-4000-8000-000000000001'" in failure.arguments
    assert CANARY_KEY not in failure.arguments and CANARY_KEY not in failure.message
    assert "the provider refused" in failure.message

    body = su_client.get(URL).content.decode()
    assert "ValueError" in body and "_breaks" in body
    assert CANARY_KEY not in body
    detail = su_client.get(reverse("admin:connections_taskfailure_change", args=[failure.pk]))
    assert detail.status_code == 200
    assert CANARY_KEY not in detail.content.decode()


@pytest.mark.usefixtures("queued")
def test_waiting_and_scheduled_tasks_are_listed_with_ids_only(su_client):
    tasks.connection_costs_refresh("7f1c2a4e-0000-4000-8000-000000000002")
    _breaks.schedule(("7f1c2a4e-0000-4000-8000-000000000003", CANARY_KEY), delay=3600)

    response = su_client.get(URL)
    assert response.status_code == 200
    body = response.content.decode()
    waiting = body.split('id="queued-tasks"')[1].split('id="scheduled-tasks"')[0]
    assert "connection_costs_refresh" in waiting
    assert "7f1c2a4e-0000-4000-8000-000000000002" in waiting
    later = body.split('id="scheduled-tasks"')[1].split("</table>")[0]
    assert "_breaks" in later and "7f1c2a4e-0000-4000-8000-000000000003" in later
    assert CANARY_KEY not in body
    assert "…" in later  # the argument that is not an id is elided
    # Reading the queue took nothing off it.
    assert len(HUEY.pending()) == 2


def test_the_page_is_read_only_and_for_superusers(su_client, team, member):
    _breaks("x", "y")
    failure = TaskFailure.objects.get()
    assert su_client.post(reverse("admin:connections_taskfailure_add")).status_code == 403
    response = su_client.post(
        reverse("admin:connections_taskfailure_change", args=[failure.pk]), {"message": "z"}
    )
    assert response.status_code == 403
    failure.refresh_from_db()
    assert failure.message != "z"
    assert client_for(member).get(URL).status_code == 302  # not staff: to the login page


def test_failures_are_forgotten_after_the_retention(settings):
    _breaks("x", "y")
    old = TaskFailure.objects.get()
    TaskFailure.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - settings.TABLERO_ERROR_RETENTION - timedelta(minutes=1)
    )
    _breaks("x", "z")
    tasks.error_events_prune_old.call_local()
    assert list(TaskFailure.objects.all()) != [] and not TaskFailure.objects.filter(pk=old.pk)
