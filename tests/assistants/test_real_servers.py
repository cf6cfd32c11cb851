"""Servers we did not write, as the fake provider's LiteLLM mode plays them: an Assistants API
that answers 500 "not supported" while the Responses API works, and background response ids of
about 470 characters. A new assistant runs through Responses; its long ids are polled,
cancelled and looked up whole."""

from urllib.parse import quote

import pytest
from django.urls import reverse
from django.utils import translation

from assistants import services
from assistants.models import Assistant, Run, RunStatus, SyncState
from connections.models import Connection, RunApiReason
from connections.services import connection_create, connection_detect_run_api, connection_test
from fakeprovider import KEY_OK, Reply
from fakeprovider.common import LITELLM_RESPONSE_ID_LENGTH
from tests.assistants.helpers import fake_connection, let_poll, make_assistant
from tests.conftest import client_for, make_user

pytestmark = pytest.mark.django_db

DATA = {
    "name": "Math Tutor",
    "description": "",
    "instructions": "You are a personal math tutor.",
    "model": "gpt-4o",
    "tools": [],
    "temperature": None,
    "top_p": None,
    "metadata": {},
}
NOT_OFFERED = "The Responses API answered; the Assistants API is not offered (HTTP 500)."


@pytest.fixture
def litellm(fake):
    fake.litellm_mode = True
    return fake


def segment(value: str) -> str:
    """An id as it travels in a path: one percent-encoded segment."""
    return quote(value, safe=":@")


def detail_url(connection: Connection) -> str:
    return reverse(
        "connections:detail",
        kwargs={"team_id": connection.team_id, "connection_id": connection.pk},
    )


def run_url(name: str, run: Run) -> str:
    return reverse(f"assistants:{name}", kwargs={"team_id": run.team_id, "run_id": run.pk})


def test_the_connection_test_detects_responses_and_the_page_says_why(
    team, owner, admin_client_, viewer_client, litellm
):
    connection = fake_connection(team, litellm, created_by=owner)

    admin_client_.post(reverse("connections:test", args=[team.pk, connection.pk]))

    connection.refresh_from_db()
    assert connection.detected_run_api == "responses"
    assert connection.run_api_reason == RunApiReason.ASSISTANTS_NOT_OFFERED
    assert connection.run_api_status == 500
    # Each probe asked once (a "not supported" 500 is not asked three times); nothing created.
    assert len(litellm.requests_to("/v1/assistants", "GET")) == 1
    assert len(litellm.requests_to("/v1/responses/resp_" + "0" * 48, "GET")) == 1
    assert litellm.requests_to("/v1/responses", "POST") == []
    # Everyone who sees the connection sees what was detected and why.
    page = viewer_client.get(detail_url(connection)).content.decode()
    assert "Detect automatically (Responses API)" in page
    assert NOT_OFFERED in page
    with translation.override("es"):
        spanish = connection.run_api_explanation
    assert "el servidor no ofrece la Assistants API (HTTP 500)" in spanish


def test_a_new_connection_is_detected_at_once(team, owner, litellm):
    outcome = connection_create(
        team=team,
        user=owner,
        name="LiteLLM",
        provider="compatible",
        base_url=litellm.base_url,
        api_key=KEY_OK,
    )

    assert outcome.ok
    connection = outcome.value
    connection.refresh_from_db()
    assert (connection.detected_run_api, connection.run_api_reason) == (
        "responses",
        RunApiReason.ASSISTANTS_NOT_OFFERED,
    )


def test_a_new_assistant_runs_through_responses_with_a_long_id_polled_to_the_end(
    team, owner, member, member_client, litellm
):
    connection = fake_connection(team, litellm, created_by=owner)
    connection_test(connection=connection, user=owner)
    connection.refresh_from_db()

    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    assert assistant.sync_state == SyncState.SYNCED
    assert assistant.remote_id == ""
    assert litellm.requests_to("/v1/assistants", "POST") == []

    litellm.run_step_seconds = 30
    run = services.run_start(assistant=assistant, user=member, message="What is 2 + 2?").value

    run.refresh_from_db()
    (response_id,) = litellm.state["responses"]
    assert len(response_id) == LITELLM_RESPONSE_ID_LENGTH
    assert run.backend == "responses"
    assert run.response_id == response_id  # whole, not cut at 200
    assert run.status == RunStatus.QUEUED

    litellm.run_step_seconds = 0
    services.run_refresh(run=let_poll(run))

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert "You said: What is 2 + 2?" in run.output_text
    assert litellm.requests_to(f"/v1/responses/{segment(response_id)}", "GET")
    page = member_client.get(run_url("run_detail", run)).content.decode()
    assert "Completed" in page


def test_a_long_id_run_is_cancelled(team, owner, member, member_client, litellm):
    connection = fake_connection(team, litellm, created_by=owner, detected_run_api="responses")
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    run = services.run_start(assistant=assistant, user=member, message="Think [slow]").value
    run.refresh_from_db()
    assert len(run.response_id) == LITELLM_RESPONSE_ID_LENGTH

    response = member_client.post(run_url("run_cancel", run), follow=True)

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert litellm.requests_to(f"/v1/responses/{segment(run.response_id)}/cancel", "POST")
    assert "Cancellation requested." in response.content.decode()


def test_an_undetected_connection_moves_to_responses_at_the_first_assistant(
    team, owner, member, litellm
):
    # Never tested: the Assistants API is tried first, says "not supported", and the
    # connection is detected there and then instead of leaving the assistant failed.
    connection = fake_connection(team, litellm, created_by=owner)

    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    run = services.run_start(assistant=assistant, user=member, message="Hi").value

    assert assistant.sync_state == SyncState.SYNCED
    connection.refresh_from_db()
    assert connection.detected_run_api == "responses"
    assert connection.run_api_reason == RunApiReason.ASSISTANTS_NOT_OFFERED
    run.refresh_from_db()
    assert (run.backend, run.status) == ("responses", RunStatus.COMPLETED)


def test_a_passing_failure_keeps_the_assistants_api_and_says_detection_is_pending(
    team, owner, viewer_client, fake
):
    connection = fake_connection(team, fake, created_by=owner, detected_run_api="assistants")
    overloaded = Reply.error(503, "Service Unavailable", "server_error", None)
    fake.queue(overloaded, times=2)

    connection_detect_run_api(connection=connection)

    connection.refresh_from_db()
    assert connection.detected_run_api == "assistants"
    assert connection.run_api_reason == RunApiReason.PENDING
    assert len(fake.requests) == 2  # each question once
    page = viewer_client.get(detail_url(connection)).content.decode()
    assert "Detection pending: the Assistants API gave no clear answer (HTTP 503)." in page


def test_the_admin_choice_wins_and_the_detection_is_still_shown(
    team, owner, member, viewer_client, litellm
):
    connection = fake_connection(team, litellm, created_by=owner, run_api="assistants")
    connection_test(connection=connection, user=owner)
    connection.refresh_from_db()

    page = viewer_client.get(detail_url(connection)).content.decode()
    assert "chosen by an admin" in page
    assert "Detected: Responses API." in page
    assert NOT_OFFERED in page
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    assert assistant.sync_state == SyncState.FAILED  # the admin's choice is not overridden


def test_the_run_lookup_form_takes_a_long_id(team, owner, member, viewer_client, litellm):
    connection = fake_connection(team, litellm, created_by=owner, detected_run_api="responses")
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    run = services.run_start(assistant=assistant, user=member, message="Hi [incomplete]").value
    run.refresh_from_db()

    content = viewer_client.get(
        reverse("assistants:run_lookup", args=[team.pk]),
        {"connection": connection.pk, "response_id": run.response_id},
    ).content.decode()

    assert "Incomplete" in content
    assert "This run was started from Tablero" in content


def test_a_long_id_typed_in_the_lookup_form_is_refused_above_the_limit(
    team, owner, viewer_client, fake
):
    connection = fake_connection(team, fake, created_by=owner)

    content = viewer_client.get(
        reverse("assistants:run_lookup", args=[team.pk]),
        {"connection": connection.pk, "response_id": "resp_" + "a" * 1020},
    ).content.decode()

    assert "at most 1024 characters" in content
    assert fake.requests == []


def test_the_admin_site_shows_the_detection_and_why(team, owner, litellm):
    connection = fake_connection(team, litellm, created_by=owner)
    connection_test(connection=connection, user=owner)
    superuser = make_user("root@example.com", is_staff=True, is_superuser=True)

    page = (
        client_for(superuser)
        .get(reverse("admin:connections_connection_change", args=[connection.pk]))
        .content.decode()
    )

    assert NOT_OFFERED in page


def test_a_response_id_above_the_limit_is_refused_with_an_explanation(
    team, owner, member, admin_client_, fake
):
    connection = fake_connection(team, fake, created_by=owner, detected_run_api="responses")
    assistant = services.assistant_create(
        team=team, user=member, connection=connection, data=DATA
    ).value
    too_long = "resp_" + "A" * 1100
    fake.queue(Reply.json({"id": too_long, "object": "response", "status": "in_progress"}))

    run = services.run_start(assistant=assistant, user=member, message="Hi").value

    run.refresh_from_db()
    assert (run.status, run.last_error_kind) == (RunStatus.FAILED, "bad_response")
    assert run.response_id == ""  # not cut to fit
    page = admin_client_.get(run_url("run_detail", run)).content.decode()
    assert "is 1105 characters long" in page
    assert "up to 1024 characters whole and does not cut them" in page
    assert too_long[:200] not in page


def test_an_assistant_whose_server_stopped_offering_the_api_can_be_deleted(
    team, owner, member, litellm
):
    connection = fake_connection(team, litellm, created_by=owner, detected_run_api="responses")
    assistant = make_assistant(team, connection, remote_id="asst_from_before")

    assert services.assistant_delete(assistant=assistant, user=member).value is None

    assert not Assistant.objects.filter(pk=assistant.pk).exists()
    assert litellm.requests_to("/v1/assistants/asst_from_before", "DELETE")
