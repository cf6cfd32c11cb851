"""One push to the provider at a time per assistant: "Retry sync" clicked twice, an edit or a
delete while a sync is under way, and a claim left behind by a request that died."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from assistants import services
from assistants.models import Assistant, SyncState
from connections.models import ConnectionErrorEvent
from fakeprovider import Reply
from tests.assistants.concurrency import meanwhile
from tests.assistants.helpers import make_assistant
from tests.taskqueue import empty_queue, run_scheduled  # noqa: F401

pytestmark = pytest.mark.django_db

IN_PROGRESS = "A sync with the provider is already in progress"


def url(name: str, assistant) -> str:
    return reverse(
        f"assistants:{name}", kwargs={"team_id": assistant.team_id, "assistant_id": assistant.pk}
    )


def claimed(assistant, ago: timedelta) -> None:
    Assistant.objects.filter(pk=assistant.pk).update(sync_claimed_at=timezone.now() - ago)


def remote_creates(fake) -> list:
    return fake.requests_to("/v1/assistants", "POST")


# --- retry sync ------------------------------------------------------------------------------


def test_retry_sync_clicked_twice_creates_one_remote_copy(assistant, fake, member_client):
    with meanwhile(
        "POST", "/v1/assistants", lambda: member_client.post(url("sync", assistant), follow=True)
    ) as seen:
        first = member_client.post(url("sync", assistant), follow=True)

    assistant.refresh_from_db()
    assert IN_PROGRESS in seen[0].content.decode()
    assert "Assistant synced with the provider." in first.content.decode()
    assert len(remote_creates(fake)) == 1
    assert list(fake.state["assistants"]) == [assistant.remote_id]
    assert assistant.sync_state == SyncState.SYNCED
    assert assistant.sync_claimed_at is None


def test_retry_sync_while_another_request_syncs_sends_nothing(assistant, fake, member_client):
    claimed(assistant, timedelta(seconds=10))

    response = member_client.post(url("sync", assistant), follow=True)

    content = response.content.decode()
    assert IN_PROGRESS in content
    assert "A sync with the provider is in progress." in content
    assert fake.requests == []
    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.PENDING


def test_a_claim_left_by_a_request_that_died_is_taken_over(assistant, fake, member_client):
    claimed(assistant, timedelta(minutes=3))

    response = member_client.post(url("sync", assistant), follow=True)

    assistant.refresh_from_db()
    assert "Assistant synced with the provider." in response.content.decode()
    assert assistant.sync_state == SyncState.SYNCED
    assert assistant.sync_claimed_at is None
    assert len(remote_creates(fake)) == 1


def test_a_failed_sync_releases_its_claim(assistant, fake, member_client):
    fake.queue(Reply.error(429, "Quota", "insufficient_quota", "insufficient_quota"))
    member_client.post(url("sync", assistant))
    assistant.refresh_from_db()
    assert (assistant.sync_state, assistant.sync_claimed_at) == (SyncState.FAILED, None)

    response = member_client.post(url("sync", assistant), follow=True)

    assistant.refresh_from_db()
    assert "Assistant synced with the provider." in response.content.decode()
    assert assistant.sync_state == SyncState.SYNCED
    assert list(fake.state["assistants"]) == [assistant.remote_id]


def test_a_sync_that_finds_it_done_meanwhile_creates_no_second_copy(team, member, assistant, fake):
    """The page said "pending", but a sync finished before this one got its turn: the remote
    copy that one made is brought in line, not created again."""
    stale = Assistant.objects.get(pk=assistant.pk)
    services.assistant_sync(assistant=assistant, user=member)

    services.assistant_sync(assistant=stale, user=member)

    assistant.refresh_from_db()
    assert len(remote_creates(fake)) == 1
    assert len(fake.requests_to(f"/v1/assistants/{assistant.remote_id}", "POST")) == 1
    assert list(fake.state["assistants"]) == [assistant.remote_id]


# --- edits and runs during a sync ----------------------------------------------------------------


def test_an_edit_during_a_sync_waits_and_is_pushed_after_it(
    assistant, fake, member_client, pinned_clock
):
    edit = {"name": "Renamed", "model": "gpt-4o", "instructions": "Be brief."}

    with meanwhile(
        "POST",
        "/v1/assistants",
        lambda: member_client.post(url("edit", assistant), edit, follow=True),
    ) as seen:
        member_client.post(url("sync", assistant))

    assistant.refresh_from_db()
    # The edit's push found the sync's claim: it was queued again, and the page says syncing.
    assert "Syncing with the provider" in seen[0].content.decode()
    assert len(remote_creates(fake)) == 1
    # The provider has the settings from before the edit: the record says so.
    assert assistant.name == "Renamed"
    assert fake.state["assistants"][assistant.remote_id]["name"] == "Math Tutor"
    assert assistant.sync_state == SyncState.PENDING

    run_scheduled(pinned_clock)  # the edit's push, a few seconds later

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.SYNCED
    assert fake.state["assistants"][assistant.remote_id]["name"] == "Renamed"
    assert len(fake.state["assistants"]) == 1


def test_a_run_while_its_assistant_is_being_synced_is_refused_and_kept_on_the_page(
    assistant, fake, member_client
):
    claimed(assistant, timedelta(seconds=10))

    response = member_client.post(url("run_start", assistant), {"message": "What is 2 + 2?"})

    content = response.content.decode()
    assert response.status_code == 200
    assert "being synced with the provider right now" in content
    assert "What is 2 + 2?" in content
    assert not assistant.runs.exists()
    assert fake.requests == []


# --- delete during a sync ----------------------------------------------------------------------


def test_delete_while_the_first_remote_copy_is_made_leaves_no_orphan(
    assistant, fake, member_client, owner_client
):
    with meanwhile(
        "POST", "/v1/assistants", lambda: owner_client.post(url("delete", assistant))
    ) as seen:
        response = member_client.post(url("sync", assistant), follow=True)

    list_url = reverse("assistants:list", kwargs={"team_id": assistant.team_id})
    assert seen[0].status_code == 302 and seen[0]["Location"] == list_url
    assert response.redirect_chain == [(list_url, 302)]
    assert "The assistant was deleted while it was being synced." in response.content.decode()
    assert not Assistant.objects.exists()
    assert len(remote_creates(fake)) == 1
    # The delete finds the copy by its tag (the create was sent, its outcome not recorded yet)
    # and deletes it; the push, finding its record gone, deletes it again (already gone).
    deletes = [r for r in fake.requests if r.path.startswith("/v1/assistants/")]
    assert {r.method for r in deletes} == {"DELETE"} and len({r.path for r in deletes}) == 1
    assert fake.state["assistants"] == {}


def test_a_failed_cleanup_is_recorded_on_the_connection(
    assistant, fake, member_client, owner_client
):
    def delete_then_fail_the_cleanup():
        response = owner_client.post(url("delete", assistant))
        fake.queue(Reply.error(403, "No access.", "invalid_request_error", None))
        return response

    with meanwhile("POST", "/v1/assistants", delete_then_fail_the_cleanup):
        response = member_client.post(url("sync", assistant), follow=True)

    assert response.status_code == 200
    assert not Assistant.objects.exists()
    event = ConnectionErrorEvent.objects.get(connection=assistant.connection)
    assert (event.operation, event.kind) == ("assistant.discard", "permission_denied")


def test_delete_with_a_stale_page_deletes_the_copy_a_sync_made_meanwhile(
    team, member, assistant, fake
):
    """The delete started from a page that showed no remote copy; a sync recorded one just
    before the local record went: that copy is deleted too."""
    stale = Assistant.objects.get(pk=assistant.pk)
    services.assistant_sync(assistant=assistant, user=member)
    assistant.refresh_from_db()

    assert services.assistant_delete(assistant=stale, user=member).value is None

    assert not Assistant.objects.exists()
    assert fake.requests_to(f"/v1/assistants/{assistant.remote_id}", "DELETE")
    assert fake.state["assistants"] == {}


def test_delete_of_a_record_someone_else_deleted_meanwhile(team, member, connection, fake):
    assistant = make_assistant(team, connection, remote_id="asst_abc123")
    fake.queue(Reply.error(403, "No access.", "invalid_request_error", None))

    with meanwhile(
        "DELETE",
        "/v1/assistants/asst_abc123",
        lambda: Assistant.objects.filter(pk=assistant.pk).delete(),
    ):
        deleted = services.assistant_delete(assistant=assistant, user=member).value is None

    assert deleted is True
    assert not Assistant.objects.exists()


def test_delete_page_of_a_record_deleted_meanwhile_does_not_fail(
    team, connection, fake, owner_client
):
    assistant = make_assistant(team, connection, remote_id="asst_abc123")
    fake.queue(Reply.error(403, "No access.", "invalid_request_error", None))

    with meanwhile(
        "DELETE",
        "/v1/assistants/asst_abc123",
        lambda: Assistant.objects.filter(pk=assistant.pk).delete(),
    ):
        response = owner_client.post(url("delete", assistant), follow=True)

    assert response.status_code == 200
    assert "Assistant “Math Tutor” deleted." in response.content.decode()


def test_a_sync_started_during_a_delete_sends_nothing(
    team, member, connection, fake, member_client
):
    assistant = make_assistant(team, connection, remote_id="asst_abc123")

    with meanwhile(
        "DELETE",
        "/v1/assistants/asst_abc123",
        lambda: member_client.post(url("sync", assistant), follow=True),
    ) as seen:
        services.assistant_delete(assistant=assistant, user=member)

    assert IN_PROGRESS in seen[0].content.decode()
    assert remote_creates(fake) == []
    assert fake.requests_to("/v1/assistants/asst_abc123", "POST") == []
    assert not Assistant.objects.exists()


# --- import while a push is under way -------------------------------------------------------


def test_an_import_during_a_sync_leaves_one_record_for_the_new_remote_copy(
    assistant, fake, member_client
):
    import_url = reverse(
        "assistants:import",
        kwargs={"team_id": assistant.team_id, "connection_id": assistant.connection_id},
    )
    # The import lists the remote copy the sync has just made, before the sync records it.
    with meanwhile(
        "POST", "/v1/assistants", lambda: member_client.post(import_url, follow=True)
    ) as seen:
        response = member_client.post(url("sync", assistant), follow=True)

    assert seen[0].status_code == 200
    assert response.status_code == 200
    assert "Assistant synced with the provider." in response.content.decode()
    (remote_id,) = fake.state["assistants"]
    (kept,) = Assistant.objects.filter(connection=assistant.connection)
    assert kept.pk == assistant.pk and kept.remote_id == remote_id
    assert kept.sync_state == SyncState.SYNCED
