"""The background work on connections: periodic key checks (spread over the interval, skipped
when someone checked lately, slower while the provider rate-limits, retried after a passing
failure), hourly costs and the pruning of old errors. Huey runs in immediate mode; the provider
is the fake on loopback; nobody has a page open."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from connections import costs
from connections.models import Connection, ConnectionErrorEvent, ErrorOperation, Health
from connections.tasks import (
    connections_check_sweep,
    connections_due,
    costs_refresh_sweep,
    error_events_prune,
    error_events_prune_old,
)
from fakeprovider import ADMIN_KEY_OK, KEY_OK, Reply
from lib.taskqueue import slot_start
from tests.conftest import PINNED_NOW
from tests.connections.helpers import make_connection
from tests.taskqueue import empty_queue, run_scheduled, scheduled_etas  # noqa: F401

pytestmark = pytest.mark.django_db

PERIOD = timedelta(minutes=15)
REVOKED = Reply.error(
    401,
    "Incorrect API key provided: sk-test-********abcd. You can find your API key at "
    "https://platform.openai.com/account/api-keys.",
    "invalid_request_error",
    "invalid_api_key",
)
# A rate limit the client does not retry by itself (so no test waits on Retry-After).
RATE_LIMITED = Reply.error(
    429,
    "Rate limit reached for requests",
    "requests",
    "rate_limit_exceeded",
    headers={"x-should-retry": "false"},
)
DOWN = Reply.error(500, "The server had an error", "server_error", None)


def check_slot(connection: Connection, now: datetime) -> datetime:
    """The next moment, after `now`, at which the connection's periodic check falls due."""
    return slot_start(key=f"connection-check:{connection.pk}", period=PERIOD, now=now) + PERIOD


def at_its_slot(traveller, connection: Connection, *, after: datetime | None = None) -> datetime:
    """Move the clock to 30 seconds past the connection's next moment in the interval."""
    moment = check_slot(connection, after or datetime.now(UTC)) + timedelta(seconds=30)
    traveller.move_to(moment)
    return moment


def models_calls(fake) -> int:
    return len(fake.requests_to("/v1/models", "GET"))


@pytest.fixture
def checked(team, owner, fake_upstream):
    """A connection whose key worked when it was last checked, 20 minutes before the clock."""
    return make_connection(
        team,
        base_url=fake_upstream.base_url,
        key=KEY_OK,
        created_by=owner,
        health=Health.OK,
        last_checked_at=PINNED_NOW - timedelta(minutes=20),
    )


def test_a_key_revoked_at_the_provider_is_found_invalid_with_nobody_on_the_page(
    pinned_clock, checked, fake_upstream, owner_client, team
):
    fake_upstream.queue(REVOKED, times=3)  # the provider now refuses the key
    at_its_slot(pinned_clock, checked)

    connections_check_sweep()

    checked.refresh_from_db()
    assert checked.health == Health.INVALID_KEY
    (sent,) = fake_upstream.requests_to("/v1/models", "GET")
    assert sent.headers["authorization"] == f"Bearer {KEY_OK}"
    event = ConnectionErrorEvent.objects.get(connection=checked)
    assert (event.kind, event.status, event.operation) == (
        "invalid_key",
        401,
        ErrorOperation.CONNECTION_TEST,
    )
    assert event.user is None
    assert AuditEvent.objects.get(action="connection.test").actor is None
    assert scheduled_etas() == []  # a refused key is not tried again
    home = owner_client.get(reverse("dashboard:team_home", args=[team.pk])).content.decode()
    assert "Invalid key" in home
    assert f"The key of {checked.name} was refused" in home


def test_a_working_key_stays_working_and_its_check_time_moves(pinned_clock, checked, fake_upstream):
    moment = at_its_slot(pinned_clock, checked)

    connections_check_sweep()

    checked.refresh_from_db()
    assert checked.health == Health.OK
    assert checked.last_checked_at >= moment
    assert models_calls(fake_upstream) == 1
    # Nothing changed: the audit log is not told about every background check.
    assert not AuditEvent.objects.filter(action="connection.test").exists()


def test_nothing_is_checked_before_its_moment(pinned_clock, checked, fake_upstream):
    slot = check_slot(checked, datetime.now(UTC))
    pinned_clock.move_to(slot - timedelta(seconds=30))

    connections_check_sweep()

    assert models_calls(fake_upstream) == 0


def test_a_connection_checked_lately_by_someone_is_skipped(pinned_clock, checked, fake_upstream):
    moment = at_its_slot(pinned_clock, checked)
    Connection.objects.filter(pk=checked.pk).update(last_checked_at=moment - timedelta(minutes=3))

    connections_check_sweep()

    assert models_calls(fake_upstream) == 0


def test_a_check_queued_twice_asks_the_provider_once(pinned_clock, checked, fake_upstream):
    at_its_slot(pinned_clock, checked)

    connections_check_sweep()
    pinned_clock.shift(timedelta(minutes=1))  # the next sweep, still within the window
    connections_check_sweep()

    assert models_calls(fake_upstream) == 1


def test_checks_are_spread_over_the_interval(pinned_clock, team, fake_upstream):
    """A hundred connections, each checked at its moment in the last interval, fall due at their
    own moments in this one: each once, never many in the same minute."""
    start = PINNED_NOW  # a whole quarter hour
    for number in range(100):
        connection = make_connection(
            team, name=f"Connection {number}", base_url=fake_upstream.base_url, key=KEY_OK
        )
        pk = uuid.uuid5(uuid.NAMESPACE_URL, f"connection-{number}")  # the same spread every run
        last = slot_start(key=f"connection-check:{pk}", period=PERIOD, now=start)
        Connection.objects.filter(pk=connection.pk).update(
            id=pk, last_checked_at=last + timedelta(seconds=1), health=Health.OK
        )

    per_minute = []
    seen: list[uuid.UUID] = []
    for minute in range(16):  # the sweep, once a minute, for an interval
        now = start + timedelta(minutes=minute, seconds=5)
        due = connections_due(now=now)
        Connection.objects.filter(pk__in=due).update(last_checked_at=now)  # as if checked
        per_minute.append(len(due))
        seen += due

    assert sorted(seen) == sorted(Connection.objects.values_list("pk", flat=True))
    assert max(per_minute) <= 15, per_minute  # at once, it would be 100
    assert sum(1 for count in per_minute if count) >= 12, per_minute


def test_while_the_provider_rate_limits_the_checks_come_less_often(
    pinned_clock, checked, fake_upstream
):
    """Each check that finds the provider rate-limiting doubles the wait for the next one."""
    fake_upstream.queue(RATE_LIMITED, times=10)
    first = at_its_slot(pinned_clock, checked)
    calls_at = []
    for interval in range(8):
        pinned_clock.move_to(first + PERIOD * interval)
        before = models_calls(fake_upstream)
        connections_check_sweep()
        if models_calls(fake_upstream) > before:
            calls_at.append(interval)

    checked.refresh_from_db()
    assert checked.health == Health.RATE_LIMITED
    assert calls_at == [0, 2, 6]  # then 1, 2 and 4 intervals apart
    assert scheduled_etas() == []  # not retried sooner either


def test_a_passing_failure_is_tried_again_later(pinned_clock, checked, fake_upstream):
    fake_upstream.queue(DOWN, times=3)  # the client itself tries three times
    moment = at_its_slot(pinned_clock, checked)

    connections_check_sweep()

    checked.refresh_from_db()
    assert checked.health == Health.ERROR
    assert [eta - moment for eta in scheduled_etas()] == [
        pytest.approx(timedelta(seconds=60), abs=timedelta(seconds=5))
    ]

    run_scheduled(pinned_clock)  # the provider is back

    checked.refresh_from_db()
    assert checked.health == Health.OK
    assert scheduled_etas() == []


def test_a_connection_removed_before_its_check_is_left_alone(pinned_clock, checked, fake_upstream):
    from connections.tasks import connection_check

    Connection.objects.filter(pk=checked.pk).delete()

    connection_check(str(checked.pk))

    assert models_calls(fake_upstream) == 0


# --- costs --------------------------------------------------------------------------------------


@pytest.fixture
def with_admin_key(checked):
    checked.set_admin_key(ADMIN_KEY_OK)
    checked.save()
    return checked


def costs_slot(connection: Connection, now: datetime) -> datetime:
    return slot_start(key=f"connection-costs:{connection.pk}", period=timedelta(hours=1), now=now)


def test_costs_are_fetched_every_hour_for_connections_with_an_admin_key(
    pinned_clock, with_admin_key, team, fake_upstream, owner_client
):
    without = make_connection(team, name="No admin key", base_url=fake_upstream.base_url)
    slot = costs_slot(with_admin_key, PINNED_NOW) + timedelta(hours=1)
    pinned_clock.move_to(slot + timedelta(seconds=30))

    costs_refresh_sweep()

    fetched = fake_upstream.requests_to("/v1/organization/costs", "GET")
    assert fetched
    assert {request.headers["authorization"] for request in fetched} == {f"Bearer {ADMIN_KEY_OK}"}
    with_admin_key.refresh_from_db()
    assert with_admin_key.month_spend["month"] == "2026-11"
    without.refresh_from_db()
    assert without.month_spend == {}
    home = owner_client.get(reverse("dashboard:team_home", args=[team.pk])).content.decode()
    spend = costs.month_spend_known(connections=[with_admin_key])[with_admin_key.pk]
    assert spend.amounts["usd"] > Decimal(0)
    assert spend.display in home

    # Within the hour nothing is asked again.
    pinned_clock.shift(timedelta(minutes=1))
    costs_refresh_sweep()
    assert len(fake_upstream.requests_to("/v1/organization/costs", "GET")) == len(fetched)


# --- retention ----------------------------------------------------------------------------------


def test_old_errors_are_pruned(pinned_clock, checked, settings):
    settings.TABLERO_ERROR_RETENTION = timedelta(days=90)

    def error(days_ago: float) -> ConnectionErrorEvent:
        return ConnectionErrorEvent.objects.create(
            connection=checked,
            kind="invalid_key",
            operation=ErrorOperation.CONNECTION_TEST,
            created_at=PINNED_NOW - timedelta(days=days_ago),
        )

    kept = [error(1), error(89)]
    for days in (91, 200, 400):
        error(days)

    error_events_prune_old()

    assert set(ConnectionErrorEvent.objects.values_list("pk", flat=True)) == {e.pk for e in kept}


def test_pruning_goes_in_batches(checked, monkeypatch):
    from connections import tasks

    monkeypatch.setattr(tasks, "PRUNE_BATCH", 2)
    old = datetime(2020, 1, 1, tzinfo=UTC)
    for _ in range(5):
        ConnectionErrorEvent.objects.create(
            connection=checked,
            kind="timeout",
            operation=ErrorOperation.MODELS_LIST,
            created_at=old,
        )

    assert error_events_prune(before=old + timedelta(days=1)) == 5
    assert not ConnectionErrorEvent.objects.exists()
