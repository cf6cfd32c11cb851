"""A push that finds another push holding the assistant's sync claim is queued again a little
later, not dropped: the settings saved meanwhile still reach the provider, and the page says
"syncing…" until they have. Huey runs in immediate mode (a task scheduled for later waits until
`run_scheduled` moves the pinned clock to it)."""

import pytest
from django.urls import reverse

from assistants.models import SYNC_CLAIM_TTL, Assistant, SyncState
from assistants.services import sync
from assistants.tasks import PUSH_BUSY_DELAY, assistant_push_queue, push_key
from lib.progress import progress_active
from tests.assistants.helpers import make_assistant
from tests.taskqueue import empty_queue, run_scheduled, scheduled_etas  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_provider(pinned_clock, team, connection, member, fake):
    assistant = make_assistant(team, connection, created_by=member, remote_id="asst_x")
    fake.state["assistants"]["asst_x"] = {"id": "asst_x", "name": "Math Tutor", "metadata": {}}
    return assistant


def modifies(fake) -> list:
    return fake.requests_to("/v1/assistants/asst_x", "POST")


def save_locally(assistant: Assistant, name: str) -> None:
    """What the edit page saves before it queues the push."""
    Assistant.objects.filter(pk=assistant.pk).update(name=name, sync_state=SyncState.PENDING)
    assistant.refresh_from_db()


def test_a_busy_push_is_queued_again_and_sends_the_change(
    on_provider, member, fake, pinned_clock, member_client
):
    held = sync.take_claim(on_provider)  # another push is under way
    save_locally(on_provider, "Physics Tutor")

    assistant_push_queue(assistant=on_provider, user=member, operation="assistant.sync")

    assert modifies(fake) == []  # nothing sent while the claim is held
    assert len(scheduled_etas()) == 1  # but it comes back
    assert progress_active(push_key(on_provider.pk))
    page = member_client.get(
        reverse("assistants:detail", args=[on_provider.team_id, on_provider.pk])
    ).content.decode()
    assert "Syncing…" in page

    sync.release(on_provider, held)  # the other push ends (with the older settings)
    run_scheduled(pinned_clock)

    on_provider.refresh_from_db()
    assert on_provider.sync_state == SyncState.SYNCED
    assert [r.json["name"] for r in modifies(fake)] == ["Physics Tutor"]
    assert not progress_active(push_key(on_provider.pk))


def test_a_claim_left_by_a_push_that_died_is_taken_over(on_provider, member, fake, pinned_clock):
    sync.take_claim(on_provider)  # never released: its consumer was killed
    save_locally(on_provider, "Physics Tutor")

    assistant_push_queue(assistant=on_provider, user=member, operation="assistant.sync")
    run_scheduled(pinned_clock)

    on_provider.refresh_from_db()
    assert on_provider.sync_state == SyncState.SYNCED
    assert [r.json["name"] for r in modifies(fake)] == ["Physics Tutor"]
    assert PUSH_BUSY_DELAY * 30 > SYNC_CLAIM_TTL


def test_a_record_the_other_push_left_in_line_is_not_sent_again(
    on_provider, member, fake, pinned_clock
):
    held = sync.take_claim(on_provider)
    save_locally(on_provider, "Physics Tutor")
    assistant_push_queue(assistant=on_provider, user=member, operation="assistant.sync")

    # The other push read the record after the save, sent it and ends well.
    sync.mark(on_provider, state=SyncState.SYNCED, remote_id="asst_x", claim=held)
    run_scheduled(pinned_clock)

    assert modifies(fake) == []
    on_provider.refresh_from_db()
    assert on_provider.sync_state == SyncState.SYNCED
