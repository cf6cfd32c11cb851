"""A follow-up on a conversation whose newest turn Tablero gave up on (it stopped checking it
while the provider still said it was going on): on the Assistants API the provider takes no new
run on a thread while one is active, and would answer the follow-up with a 400. Tablero asks the
provider to cancel the run it gave up on first; when the provider has not finished cancelling
it yet, the follow-up fails with a plain explanation (English and Spanish), never the raw 400,
and can be retried once the provider is done.

Against the fake provider on loopback, whose "[slow]" runs stay in progress however far the
clock goes, and whose cancelled runs go through "cancelling" for one step."""

from datetime import timedelta

import pytest
from django.urls import reverse

from assistants import services
from assistants.models import Run, RunStatus
from tests.assistants.helpers import fake_connection, make_assistant, watch

pytestmark = pytest.mark.django_db

BUSY = "The provider is still busy with the previous turn"
BUSY_ES = "El proveedor sigue ocupado con el turno anterior"


def follow_up_url(run) -> str:
    return reverse("assistants:run_follow_up", kwargs={"team_id": run.team_id, "run_id": run.pk})


def retry_url(run) -> str:
    return reverse("assistants:run_retry", kwargs={"team_id": run.team_id, "run_id": run.pk})


def page_url(run) -> str:
    return reverse("assistants:run_detail", kwargs={"team_id": run.team_id, "run_id": run.pk})


@pytest.fixture
def given_up(team, fake, member, member_client, pinned_clock) -> Run:
    """A run the fake keeps in progress, which Tablero stopped checking 11 minutes on."""
    connection = fake_connection(team, fake, run_api="assistants")
    assistant = make_assistant(team, connection, name="Slow", sync_state="pending")
    run = services.run_start(assistant=assistant, user=member, message="[slow] Think it over").value
    assert run.status == RunStatus.IN_PROGRESS and run.thread_id
    pinned_clock.shift(timedelta(minutes=11))
    watch(member_client, run)
    run.refresh_from_db()
    assert run.stopped_checking
    fake.requests.clear()
    return run


def test_the_run_given_up_on_is_cancelled_first_then_the_follow_up_goes_on(
    given_up, fake, member_client
):
    response = member_client.post(follow_up_url(given_up), {"message": "Are you there?"})

    assert response.status_code == 302
    turn = Run.objects.get(is_latest=True)
    assert turn.turn == 2 and turn.status == RunStatus.COMPLETED, turn.last_error_message
    thread, old = given_up.thread_id, given_up.remote_run_id
    sent = [(r.method, r.path) for r in fake.requests if "/threads/" in r.path]
    cancel = ("POST", f"/v1/threads/{thread}/runs/{old}/cancel")
    start = ("POST", f"/v1/threads/{thread}/runs")
    assert cancel in sent and start in sent
    assert sent.index(cancel) < sent.index(start)
    page = member_client.get(page_url(turn)).content.decode()
    assert "Hello from the fake provider. You said: Are you there?" in page


def test_a_provider_still_cancelling_is_explained_then_the_retry_goes_on(
    given_up, fake, member_client, pinned_clock
):
    fake.run_step_seconds = 30  # the provider takes a while to cancel

    member_client.post(follow_up_url(given_up), {"message": "Are you there?"})

    turn = Run.objects.get(is_latest=True)
    assert turn.turn == 2 and turn.status == RunStatus.FAILED
    for language, words in (("en", BUSY), ("es", BUSY_ES)):
        page = member_client.get(page_url(turn), HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert words in page
        assert "Bad request" not in page and "Solicitud incorrecta" not in page
    page = member_client.get(page_url(turn)).content.decode()
    assert "Retry" in page

    pinned_clock.shift(timedelta(seconds=31))  # the provider has cancelled it now
    response = member_client.post(retry_url(turn), {})

    assert response.status_code == 302
    retried = Run.objects.get(is_latest=True)
    assert retried.turn == 3 and retried.is_retry
    assert retried.status not in (RunStatus.FAILED,), retried.last_error_message
    assert retried.remote_run_id
