"""The team home's parts are cached, and dropped as soon as what they show changes: each
change below goes through the product's own write path, and the next page shows it."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from assistants.models import RunStatus
from assistants.services import runs as run_services
from connections import costs, services
from connections.models import ErrorOperation, Health
from fakeprovider import ADMIN_KEY_OK
from fakeprovider.keys import KEY_INVALID
from provider.errors import ErrorKind, ProviderError
from tests.assistants.helpers import make_assistant, make_run
from tests.connections.helpers import make_connection
from tests.dashboard.conftest import section


def _page(client, team) -> str:
    response = client.get(reverse("dashboard:team_home", args=[team.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_check_that_finds_a_refused_key_shows_at_once(admin_client_, team, fake_upstream):
    connection = make_connection(
        team, name="Production", key=KEY_INVALID, base_url=fake_upstream.base_url
    )
    assert "1 not checked yet" in section(_page(admin_client_, team), "summary")
    assert "1 not checked yet" in section(_page(admin_client_, team), "summary")  # cached

    services.connection_test(connection=connection, user=None)  # a background check

    body = _page(admin_client_, team)
    assert "1 with a problem" in section(body, "summary")
    assert "The key of Production was refused" in section(body, "needs-attention")
    assert "Testing the connection" in section(body, "latest-errors")


def test_a_renamed_connection_shows_its_new_name(viewer_client, team):
    connection = make_connection(team, name="Before", health=Health.OK)
    assert "Before" in _page(viewer_client, team)
    connection.name = "After"
    connection.save()
    body = _page(viewer_client, team)
    assert "After" in body and "Before" not in body


def test_a_new_run_counts_at_once(viewer_client, team, member):
    assistant = make_assistant(team, make_connection(team))
    make_run(assistant, started_by=member, total_tokens=100)
    summary = section(_page(viewer_client, team), "summary")
    assert '<p class="stat">1</p>' in summary and '<p class="stat">100</p>' in summary
    make_run(assistant, started_by=member, total_tokens=1234)
    summary = section(_page(viewer_client, team), "summary")
    assert '<p class="stat">2</p>' in summary and '<p class="stat">1,334</p>' in summary


def test_a_run_ended_by_a_guarded_update_leaves_the_runs_in_progress(viewer_client, team, member):
    # run_start_lost ends the run with an UPDATE (no save()): lib.events says so.
    assistant = make_assistant(team, make_connection(team))
    run = make_run(
        assistant,
        status=RunStatus.QUEUED,
        started_by=member,
        remote_run_id="",
        thread_id="",
        start_sent_at=timezone.now() - timedelta(minutes=5),
    )
    url = reverse("assistants:run_detail", args=[team.pk, run.pk])
    assert url in section(_page(viewer_client, team), "active-runs")
    assert run_services.run_start_lost(run=run)
    body = _page(viewer_client, team)
    assert url not in section(body, "active-runs")
    assert url in section(body, "latest-errors")


def test_a_new_provider_error_shows_and_groups(admin_client_, team, owner):
    connection = make_connection(team, name="Production", health=Health.OK)
    assert "Nothing went wrong lately." in _page(admin_client_, team)
    for _n in range(3):
        services.error_event_record(
            connection=connection,
            error=ProviderError(ErrorKind.QUOTA_EXHAUSTED, "You exceeded your current quota"),
            operation=ErrorOperation.MODELS_LIST,
            user=owner,
        )
    errors = section(_page(admin_client_, team), "latest-errors")
    assert "Listing models" in errors and "3 times" in errors


def test_spend_stored_by_a_costs_fetch_shows_at_once(
    admin_client_, team, fake_upstream, pinned_clock
):
    connection = make_connection(team, name="Known", base_url=fake_upstream.base_url)
    connection.set_admin_key(ADMIN_KEY_OK)
    connection.save()
    assert "Not known" in section(_page(admin_client_, team), "summary")
    assert costs.costs_refresh(connection=connection, group="line_item").ok
    summary = section(_page(admin_client_, team), "summary")
    assert "Not known" not in summary and "From the costs of 1 connection" in summary


def test_gateway_calls_count_at_once(admin_client_, team, owner, pinned_clock):
    from tests.gateway.tokenhelpers import make_token, token_connection
    from tests.gateway.usage_helpers import make_call

    token, _ = make_token(team, owner, connection=token_connection(team))
    gateway = _page(admin_client_, team).split('id="gateway-today"')[1].split("</div>")[0]
    assert '<p class="stat">0</p>' in gateway
    make_call(token)
    gateway = _page(admin_client_, team).split('id="gateway-today"')[1].split("</div>")[0]
    assert '<p class="stat">1</p>' in gateway


def test_the_cache_holds_no_words_each_reader_gets_their_language(admin_client_, team):
    make_connection(team, name="Broke", health=Health.NO_QUOTA)
    assert "No credit left on Broke" in _page(admin_client_, team)
    admin_client_.cookies["django_language"] = "es"
    body = _page(admin_client_, team)
    assert "No credit left on Broke" not in body
    assert "Broke" in section(body, "needs-attention")


# --- the sections kept as HTML (dashboard.home_fragments) ----------------------------------


def _world_with_an_error(team, member):
    connection = make_connection(team, name="Production", health=Health.NO_QUOTA)
    services.error_event_record(
        connection=connection,
        error=ProviderError(ErrorKind.QUOTA_EXHAUSTED, "You exceeded your current quota"),
        operation=ErrorOperation.MODELS_LIST,
        user=member,
    )
    assistant = make_assistant(team, connection, name="Math Tutor")
    make_run(assistant, status=RunStatus.IN_PROGRESS, started_by=member)
    return connection


def _admin_only(body: str) -> list[str]:
    """What of an admin's sections shows in this page."""
    shown = "".join(
        section(body, name) for name in ("needs-attention", "connections", "latest-errors")
    )
    return [
        text
        for text in (
            "add credit",
            "Test again",
            "csrfmiddlewaretoken",
            "You exceeded your current quota",
        )
        if text in shown
    ]


def test_a_viewer_never_gets_the_admins_kept_sections(admin_client_, viewer_client, team, member):
    _world_with_an_error(team, member)
    admin_body = _page(admin_client_, team)  # rendered for an admin first, and kept
    assert _admin_only(admin_body) == [
        "add credit",
        "Test again",
        "csrfmiddlewaretoken",
        "You exceeded your current quota",
    ]
    for _n in range(2):  # rendered for a viewer, then from the cache
        viewer_body = _page(viewer_client, team)
        assert _admin_only(viewer_body) == []
        assert "Math Tutor" in section(viewer_body, "active-runs")
    assert _admin_only(_page(admin_client_, team)) == _admin_only(admin_body)


def test_each_admin_gets_their_own_csrf_token_in_the_kept_rows(
    owner, admin_user, team, fake_upstream
):
    from django.test import Client

    connection = make_connection(team, name="Production", base_url=fake_upstream.base_url)
    url = reverse("dashboard:connection_test", args=[team.pk, connection.pk])
    tokens = []
    for user in (owner, admin_user):  # the second page comes from the cache
        client = Client(enforce_csrf_checks=True)
        client.force_login(user)
        row = section(_page(client, team), "connections")
        token = row.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
        tokens.append(token)
        assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 302
    assert tokens[0] != tokens[1]


def test_spanish_and_english_readers_each_get_their_language(
    admin_client_, viewer_client, team, member
):
    _world_with_an_error(team, member)
    for client in (admin_client_, viewer_client):
        english = _page(client, team)
        assert "What went wrong lately" in english and "Runs in progress" in english
        client.cookies["django_language"] = "es"
        spanish = _page(client, team)
        assert "Qué falló recientemente" in spanish
        assert "What went wrong lately" not in spanish and "Runs in progress" not in spanish
        client.cookies["django_language"] = "en"
        assert "What went wrong lately" in _page(client, team)


def test_a_reader_is_told_the_admins_new_name(viewer_client, team, member, admin_user):
    connection = _world_with_an_error(team, member)
    assistant = make_assistant(team, connection, name="Writer")
    make_run(assistant, status=RunStatus.FAILED, last_error_kind="quota_exhausted")
    assert admin_user.email in section(_page(viewer_client, team), "latest-errors")
    admin_user.name = "Ada Admin"
    admin_user.save()
    body = _page(viewer_client, team)
    assert "Ada Admin" in section(body, "latest-errors")
    assert "Ada Admin" in section(body, "needs-attention")


def test_times_said_in_words_are_at_most_half_a_minute_old(viewer_client, team):
    import time_machine

    from dashboard.home_fragments import FRESH_SECONDS

    start = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    with time_machine.travel(start, tick=False) as traveller:
        make_connection(team, name="Production", health=Health.OK, last_checked_at=start)
        assert "now" in section(_page(viewer_client, team), "connections")
        traveller.shift(timedelta(minutes=5))
        assert "5\xa0minutes ago" in section(_page(viewer_client, team), "connections")
        traveller.shift(timedelta(seconds=FRESH_SECONDS - 1))  # the same slice: kept
        assert "5\xa0minutes ago" in section(_page(viewer_client, team), "connections")


def test_the_checklist_ticks_a_step_at_once(owner_client, team, owner):
    from tests.gateway.tokenhelpers import make_token, token_connection

    def checklist() -> str:
        return section(_page(owner_client, team), "checklist")

    assert "0 of 6 done" in checklist()
    assert "0 of 6 done" in checklist()  # kept
    connection = token_connection(team)
    assert "1 of 6 done" in checklist()
    make_assistant(team, connection)
    assert "2 of 6 done" in checklist()
    make_token(team, owner, connection=connection)  # a step another app registered
    assert "3 of 6 done" in checklist()


def test_deleting_an_assistant_or_a_connection_shows_at_once(owner_client, team, owner, member):
    """The two deletes a person can make that touch what the home shows. An assistant's runs
    stay (they keep its name) and only the checklist changes; a connection takes its
    assistants and runs with it."""

    def home() -> tuple[str, str, str]:
        body = _page(owner_client, team)
        return section(body, "summary"), section(body, "active-runs"), section(body, "checklist")

    connection = make_connection(team, name="Production")
    assistant = make_assistant(team, connection, name="Math Tutor", sync_state="pending")
    running = make_run(assistant, status=RunStatus.IN_PROGRESS, started_by=member)
    make_run(assistant, started_by=member, total_tokens=1234)
    url = reverse("assistants:run_detail", args=[team.pk, running.pk])
    summary, active, checklist = home()
    assert '<p class="stat">2</p>' in summary and '<p class="stat">1,234</p>' in summary
    assert url in active and "Math Tutor" in active
    assert "4 of 6 done" in checklist  # connection, assistant, run, someone invited

    deleted = owner_client.post(reverse("assistants:delete", args=[team.pk, assistant.pk]))
    assert deleted.status_code == 302
    summary, active, checklist = home()
    assert '<p class="stat">2</p>' in summary and '<p class="stat">1,234</p>' in summary
    assert url in active and "Math Tutor" in active
    assert "3 of 6 done" in checklist  # no assistant any more

    services.connection_delete(connection=connection, user=owner)
    summary, active, checklist = home()
    assert '<p class="stat">0</p>' in summary and "1,234" not in summary
    assert url not in active
    assert "1 of 6 done" in checklist  # someone invited, nothing else
