"""Retry sync: push a failed or pending assistant to the provider again."""

import uuid

import pytest
from django.urls import reverse

from assistants.models import SyncState
from fakeprovider import Reply
from tests.assistants.helpers import check_refusals

pytestmark = pytest.mark.django_db


def url(assistant) -> str:
    return reverse(
        "assistants:sync", kwargs={"team_id": assistant.team_id, "assistant_id": assistant.pk}
    )


def test_retry_creates_the_remote_copy(assistant, fake, member_client):
    response = member_client.post(url(assistant), follow=True)

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.SYNCED
    assert assistant.remote_id in fake.state["assistants"]
    assert "Assistant synced with the provider." in response.content.decode()


def test_retry_that_fails_again_is_explained(assistant, fake, member_client):
    fake.queue(Reply.error(429, "Quota", "insufficient_quota", "insufficient_quota"))

    response = member_client.post(url(assistant), follow=True)

    assistant.refresh_from_db()
    assert assistant.sync_state == SyncState.FAILED
    assert "You exceeded your current quota" in response.content.decode()


def test_get_is_not_allowed(assistant, member_client):
    assert member_client.get(url(assistant)).status_code == 405


def test_refusals(users, assistant, fake):
    check_refusals(users, url(assistant), min_role="member", method="post")
    assert fake.requests == []


def test_unknown_assistant_is_404(team, owner_client):
    response = owner_client.post(
        reverse("assistants:sync", kwargs={"team_id": team.pk, "assistant_id": uuid.uuid4()})
    )
    assert response.status_code == 404
