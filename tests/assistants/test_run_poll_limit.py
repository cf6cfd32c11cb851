"""A run that never finishes is not polled forever: Tablero checks it until the provider's own
limit (an Assistants API run's `expires_at`), at most TABLERO_RUN_POLL_LIMIT after the start,
asks once more, then marks it expired, explains why, and its page stops polling.

The clock is pinned (`pinned_clock`, for the fake provider too) and the tests move it on. A run
the fake provider holds "[slow]" is still in progress there however far the clock goes."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from assistants import services
from assistants.models import Run, RunStatus
from fakeprovider import Reply
from tests.assistants.helpers import fake_connection, make_assistant, make_run, poll, watch

pytestmark = pytest.mark.django_db

UPDATES_BY_ITSELF = "This part of the page updates by itself"
STOPPED = "Tablero stopped checking this run"


def detail_url(run) -> str:
    return reverse("assistants:run_detail", kwargs={"team_id": run.team_id, "run_id": run.pk})


def status_url(run) -> str:
    return reverse("assistants:run_status", kwargs={"team_id": run.team_id, "run_id": run.pk})


def refresh_url(run) -> str:
    return reverse("assistants:run_refresh", kwargs={"team_id": run.team_id, "run_id": run.pk})


def run_path(run) -> str:
    if run.backend == "responses":
        return f"/v1/responses/{run.response_id}"
    return f"/v1/threads/{run.thread_id}/runs/{run.remote_run_id}"


def start(team, fake, member, api: str, message: str = "[slow] Think it over") -> Run:
    """A run on `api` that the fake provider keeps in progress."""
    number = Run.objects.count()
    connection = fake_connection(team, fake, name=f"Fake {number}", run_api=api)
    assistant = make_assistant(team, connection, name=f"Slow {number}", sync_state="pending")
    run = services.run_start(assistant=assistant, user=member, message=message).value
    assert run.backend == api
    return run


@pytest.fixture(params=["assistants", "responses"])
def api(request):
    return request.param


def test_a_30_hour_old_run_is_checked_once_more_then_expired(
    api, team, fake, member, viewer_client, pinned_clock
):
    run = start(team, fake, member, api)
    assert run.status == RunStatus.IN_PROGRESS
    pinned_clock.shift(timedelta(hours=30))
    fake.requests.clear()

    first = watch(viewer_client, run).content.decode()

    assert len(fake.requests_to(run_path(run), "GET")) == 1  # the last check
    assert "Expired" in first
    fake.requests.clear()

    page = watch(viewer_client, run).content.decode()
    fragment = poll(viewer_client, run).content.decode()

    assert fake.requests == []  # viewing the page no longer asks the provider
    for content in (page, fragment):
        assert 'data-status="expired"' in content
        assert STOPPED in content
        assert "the provider still said “In progress”" in content
        assert "It may have stalled" in content
        assert "hx-post" not in content and "hx-trigger" not in content
        assert UPDATES_BY_ITSELF not in content
        assert "Cancel run" not in content
    run.refresh_from_db()
    assert run.status == RunStatus.EXPIRED
    assert run.remote_status == RunStatus.IN_PROGRESS


def test_the_status_fragment_alone_also_stops(api, team, fake, member, viewer_client, pinned_clock):
    run = start(team, fake, member, api)
    pinned_clock.shift(timedelta(hours=30))

    fragment = poll(viewer_client, run).content.decode()
    fake.requests.clear()
    again = poll(viewer_client, run).content.decode()

    assert fake.requests == []
    for content in (fragment, again):
        assert STOPPED in content and "hx-post" not in content


def test_the_explanation_in_spanish(api, team, fake, member, viewer_client, pinned_clock):
    run = start(team, fake, member, api)
    pinned_clock.shift(timedelta(hours=30))

    content = watch(viewer_client, run, HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert "Tablero dejó de comprobar esta ejecución" in content
    assert "el proveedor seguía diciendo «En curso»" in content
    assert "hx-post" not in content


def test_a_run_within_the_limit_still_polls(team, fake, member, viewer_client, pinned_clock):
    runs = [
        (start(team, fake, member, "assistants"), timedelta(minutes=9)),
        (start(team, fake, member, "responses"), timedelta(minutes=59)),
    ]
    for run, age in runs:
        pinned_clock.move_to(run.created_at + age)
        fake.requests.clear()

        content = watch(viewer_client, run).content.decode()

        assert len(fake.requests_to(run_path(run), "GET")) == 1
        assert f'hx-post="{refresh_url(run)}"' in content
        assert UPDATES_BY_ITSELF in content
        assert STOPPED not in content
        run.refresh_from_db()
        assert run.status == RunStatus.IN_PROGRESS


def test_the_providers_own_expires_at_comes_first(team, fake, member, viewer_client, pinned_clock):
    """The fake provider expires Assistants API runs 10 minutes after creation, well within the
    60-minute setting; an 11-minute-old run it still calls in progress is expired here."""
    run = start(team, fake, member, "assistants")
    assert run.poll_until == run.created_at + timedelta(minutes=10)
    pinned_clock.shift(timedelta(minutes=11))

    content = watch(viewer_client, run).content.decode()

    assert STOPPED in content
    assert "10\xa0minutes after it started" in content
    assert "hx-post" not in content
    assert Run.objects.get(pk=run.pk).status == RunStatus.EXPIRED


def test_the_setting_limits_runs_without_a_provider_limit(
    team, fake, member, viewer_client, pinned_clock, settings
):
    settings.TABLERO_RUN_POLL_LIMIT = timedelta(minutes=5)
    assistants_run = start(team, fake, member, "assistants")  # the setting beats the 10 minutes
    responses_run = start(team, fake, member, "responses")
    pinned_clock.shift(timedelta(minutes=6))

    for run in (assistants_run, responses_run):
        content = watch(viewer_client, run).content.decode()
        assert "5\xa0minutes after it started" in content
        assert "hx-post" not in content


def test_a_run_the_provider_expired_is_explained_as_the_providers(
    team, fake, member, viewer_client
):
    run = start(team, fake, member, "assistants", message="[expire] Hi")

    content = watch(viewer_client, run).content.decode()

    assert run.status == RunStatus.EXPIRED
    assert "The run expired" in content
    assert STOPPED not in content
    assert "hx-post" not in content


def test_the_last_check_brings_a_late_answer(team, fake, member, viewer_client, pinned_clock):
    fake.run_step_seconds = 3600
    run = start(team, fake, member, "responses", message="Hi")
    assert run.status == RunStatus.QUEUED
    pinned_clock.shift(timedelta(hours=30))
    fake.run_step_seconds = 0  # it finished meanwhile

    content = watch(viewer_client, run).content.decode()

    assert 'data-status="completed"' in content
    assert "You said: Hi" in content
    assert STOPPED not in content


def test_a_failed_last_check_still_stops(team, fake, member, viewer_client, pinned_clock):
    run = start(team, fake, member, "responses")
    pinned_clock.shift(timedelta(hours=30))
    fake.queue(Reply.error(401, "Bad key", "invalid_request_error", "invalid_api_key"))

    content = watch(viewer_client, run).content.decode()
    fake.requests.clear()
    poll(viewer_client, run)

    assert STOPPED in content and "hx-post" not in content
    assert fake.requests == []


def test_a_run_never_started_at_the_provider_is_expired_without_asking(
    assistant, viewer_client, fake, pinned_clock
):
    run = make_run(assistant, status=RunStatus.QUEUED, thread_id="", remote_run_id="")
    pinned_clock.shift(timedelta(hours=2))

    content = watch(viewer_client, run).content.decode()

    assert fake.requests == []
    assert STOPPED in content
    assert "the provider never confirmed that it had started" in content
    assert "hx-post" not in content


def test_the_runs_list_shows_the_state(team, fake, member, viewer_client, pinned_clock):
    checked = start(team, fake, member, "assistants")
    unseen = start(team, fake, member, "responses")
    recent = start(team, fake, member, "responses")
    pinned_clock.shift(timedelta(hours=30))
    Run.objects.filter(pk=recent.pk).update(created_at=timezone.now() - timedelta(minutes=1))
    watch(viewer_client, checked)  # its last check: now stored as expired
    fake.requests.clear()
    runs_url = reverse("assistants:runs", kwargs={"team_id": team.pk})

    listing = viewer_client.get(runs_url).content.decode()
    expired = viewer_client.get(runs_url, {"status": "expired"}).content.decode()
    going = viewer_client.get(runs_url, {"status": "in_progress"}).content.decode()

    assert fake.requests == []  # the list asks nobody
    # The checked run and the unseen overdue one read as expired; the recent one goes on.
    assert listing.count(">Expired</span>") == 2
    assert listing.count(">In progress</span>") == 1
    for run in (checked, unseen):
        assert detail_url(run) in expired and detail_url(run) not in going
    assert detail_url(recent) in going and detail_url(recent) not in expired


def test_the_providers_limit_is_read_as_a_lifetime():
    """`expires_at` minus `created_at`, both on the provider's clock: a provider whose clock is
    a day off still gives its runs ten minutes."""
    from assistants.backends import AssistantsBackend

    day_off = 1_700_000_000 - 86_400
    run = {"id": "run_1", "thread_id": "thread_1", "status": "in_progress"}

    skewed = AssistantsBackend._snapshot(
        {**run, "created_at": day_off, "expires_at": day_off + 600}
    )
    missing = AssistantsBackend._snapshot({**run, "created_at": day_off, "expires_at": None})
    backwards = AssistantsBackend._snapshot({**run, "created_at": day_off, "expires_at": day_off})

    assert skewed.lifetime == timedelta(minutes=10)
    assert missing.lifetime is None and backwards.lifetime is None
