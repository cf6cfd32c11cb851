"""One deadline per provider call: a silent provider, or one that sends its answer a byte at
a time, does not hold a page (or a web worker) past TABLERO_PROVIDER_DEADLINE.

The bounds on elapsed time are generous (three times the deadline, where the old behaviour
took 93 and 182 seconds); the request counts say the same without a clock.
"""

import time

import httpx
import pytest
from django.urls import reverse

from connections.models import ConnectionErrorEvent
from connections.services import client_for
from fakeprovider import KEY_OK
from provider.client import ProviderClient
from provider.endpoint import Endpoint
from provider.errors import ErrorKind, ProviderError
from tests.connections.helpers import make_connection
from tests.connections.slowupstream import SlowUpstream, silent, trickle, trickle_headers
from tests.provider.helpers import LOOPBACK
from tests.test_settings import production_env, settings_under, startup_error

DEADLINE = 1.0


@pytest.fixture
def loopback_allowed(settings):
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = ["127.0.0.1"]
    settings.TABLERO_PROVIDER_DEADLINE = DEADLINE


def timed(call):
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        call()
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize(
    "behaviour",
    [silent, trickle(0.25), trickle_headers(0.25)],
    ids=["silent", "byte-by-byte body", "byte-by-byte headers"],
)
def test_a_call_ends_at_its_deadline(behaviour, loopback_allowed):
    with SlowUpstream(behaviour) as upstream:
        client = ProviderClient(
            Endpoint(upstream.base_url, KEY_OK), guard=LOOPBACK, deadline=DEADLINE
        )
        error, elapsed = timed(client.list_models)
        requests = upstream.requests
    assert error.kind == ErrorKind.TIMEOUT
    assert "within 1 seconds" in error.message
    # The deadline covers the retries too: none is started once it has passed.
    assert requests == 1
    assert elapsed < 3 * DEADLINE


def test_the_deadline_cuts_the_read_timeout_of_a_post(loopback_allowed):
    with SlowUpstream(silent) as upstream:
        client = ProviderClient(
            Endpoint(upstream.base_url, KEY_OK),
            guard=LOOPBACK,
            deadline=DEADLINE,
            timeout=httpx.Timeout(connect=5, read=30, write=30, pool=5),
        )
        error, elapsed = timed(lambda: client.request("POST", "/responses", json={}))
        requests = upstream.requests
    assert error.kind == ErrorKind.TIMEOUT and requests == 1
    assert elapsed < 3 * DEADLINE


def test_a_private_transport_keeps_the_deadline_too(loopback_allowed):
    """A client given its own transport (as tests do) still stops at the deadline: each phase's
    timeout is cut to the time left."""
    with SlowUpstream(silent) as upstream:
        client = ProviderClient(
            Endpoint(upstream.base_url, KEY_OK),
            guard=LOOPBACK,
            transport=httpx.HTTPTransport(),
            deadline=DEADLINE,
        )
        error, elapsed = timed(client.list_models)
    assert error.kind == ErrorKind.TIMEOUT
    assert elapsed < 3 * DEADLINE


def test_pages_use_the_setting_and_work_off_the_request_path_may_pass_more(team, settings):
    settings.TABLERO_PROVIDER_DEADLINE = 4.5
    connection = make_connection(team)
    assert client_for(connection).deadline == 4.5
    assert client_for(connection, deadline=120).deadline == 120
    assert ProviderClient(Endpoint("https://api.openai.com/v1", KEY_OK)).deadline == 10.0
    with pytest.raises(ValueError):
        ProviderClient(Endpoint("https://api.openai.com/v1", KEY_OK), deadline=0)


def retry_after(seconds):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(
            429,
            json={
                "error": {
                    "message": "Rate limit reached for gpt-4o in organization org-x on requests "
                    "per min (RPM): Limit 3, Used 3, Requested 1.",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            headers={"Retry-After": str(seconds)},
        )

    return handler, calls


def test_no_wait_that_would_end_past_the_deadline():
    """A Retry-After under the cap but past the deadline ends the call at once, and the error
    keeps the wait for the page."""
    sleeps = []
    handler, calls = retry_after(6)
    client = ProviderClient(
        Endpoint("https://api.openai.com/v1", KEY_OK),
        guard=LOOPBACK,
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
        deadline=5,
    )
    with pytest.raises(ProviderError) as caught:
        client.list_models()
    assert caught.value.kind == ErrorKind.RATE_LIMITED
    assert caught.value.retry_after == 6
    assert len(calls) == 1 and sleeps == []


def test_a_wait_within_the_deadline_is_slept():
    sleeps = []
    handler, calls = retry_after(2)
    client = ProviderClient(
        Endpoint("https://api.openai.com/v1", KEY_OK),
        guard=LOOPBACK,
        transport=httpx.MockTransport(handler),
        sleep=sleeps.append,
        deadline=10,
    )
    with pytest.raises(ProviderError):
        client.list_models()
    assert len(calls) == 3 and len(sleeps) == 2


# -- what the user sees -------------------------------------------------------------------------


def check_url(connection):
    return reverse(
        "connections:test", kwargs={"team_id": connection.team_id, "connection_id": connection.pk}
    )


@pytest.mark.django_db
@pytest.mark.parametrize("behaviour", [silent, trickle(0.25)], ids=["silent", "byte-by-byte"])
def test_test_connection_against_a_slow_provider_says_so(
    behaviour, admin_client_, team, loopback_allowed
):
    with SlowUpstream(behaviour) as upstream:
        connection = make_connection(team, base_url=upstream.base_url, key=KEY_OK)
        started = time.monotonic()
        response = admin_client_.post(check_url(connection), follow=True)
        elapsed = time.monotonic() - started
        requests = upstream.requests
    page = response.content.decode()
    assert response.status_code == 200
    assert "The check failed: The provider is slow." in page
    assert "The provider did not answer in time." in page
    assert requests == 1
    assert elapsed < 3 * DEADLINE
    event = ConnectionErrorEvent.objects.get(connection=connection)
    assert event.kind == "timeout"
    assert "within 1 seconds" in event.message


@pytest.mark.django_db
def test_test_connection_against_a_slow_provider_in_spanish(admin_client_, team, loopback_allowed):
    with SlowUpstream(silent) as upstream:
        connection = make_connection(team, base_url=upstream.base_url, key=KEY_OK)
        response = admin_client_.post(check_url(connection), follow=True, HTTP_ACCEPT_LANGUAGE="es")
    page = response.content.decode()
    assert "El proveedor tarda demasiado" in page
    assert "El proveedor no respondió a tiempo." in page


# -- the setting --------------------------------------------------------------------------------


def test_the_setting_comes_from_the_environment():
    env = production_env(TABLERO_PROVIDER_DEADLINE="7.5")
    values = settings_under(env, "TABLERO_PROVIDER_DEADLINE")
    assert values == {"TABLERO_PROVIDER_DEADLINE": "7.5"}
    values = settings_under(production_env(), "TABLERO_PROVIDER_DEADLINE")
    assert values == {"TABLERO_PROVIDER_DEADLINE": "10.0"}


@pytest.mark.parametrize("value", ["0", "-1", "nan", "3600"])
def test_a_deadline_out_of_range_stops_the_start(value):
    assert "TABLERO_PROVIDER_DEADLINE" in startup_error(
        production_env(TABLERO_PROVIDER_DEADLINE=value)
    )
