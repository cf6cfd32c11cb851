"""Opening a page never records a provider error: errors come from actions and checks (the
buttons that POST, the background tasks), not from reading a page. Every page of a team that
takes only objects in its URL is opened, as its owner, with a connection whose key the
provider refuses: nothing is asked of the provider, nothing goes into the error history."""

from typing import Any

from django.core.cache import cache
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from assistants.models import RunStatus
from connections.models import ConnectionErrorEvent, Health
from fakeprovider import ADMIN_KEY_OK
from fakeprovider.keys import KEY_INVALID
from tests.assistants.helpers import make_assistant, make_run
from tests.connections.helpers import make_connection

NAMESPACES = {"accounts", "assistants", "connections", "dashboard", "gateway", "gateway_usage"}


def _patterns() -> list[tuple[str, set[str]]]:
    """(name, its URL's parameters) of every named page of the product's apps."""
    found = []

    def walk(patterns: list[Any], namespace: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name and namespace in NAMESPACES:
                found.append((f"{namespace}:{pattern.name}", set(pattern.pattern.converters)))

    walk(get_resolver().url_patterns, "")
    return found


def test_no_page_records_a_provider_error(owner_client, team, owner, fake_upstream):
    connection = make_connection(
        team,
        name="Refused",
        key=KEY_INVALID,
        base_url=fake_upstream.base_url,
        health=Health.INVALID_KEY,
        last_error_kind="invalid_key",
    )
    connection.set_admin_key(ADMIN_KEY_OK)
    connection.save()
    assistant = make_assistant(team, connection)
    run = make_run(assistant, status=RunStatus.IN_PROGRESS, started_by=owner)
    values = {
        "team_id": team.pk,
        "connection_id": connection.pk,
        "assistant_id": assistant.pk,
        "run_id": run.pk,
        "model_id": "gpt-4o",
    }
    opened = []
    for name, parameters in _patterns():
        if not parameters or not parameters <= values.keys():
            continue
        url = reverse(name, kwargs={key: values[key] for key in parameters})
        response = owner_client.get(url)
        assert response.status_code in (200, 302, 405), (name, response.status_code)
        assert fake_upstream.requests == [], name
        assert not ConnectionErrorEvent.objects.exists(), name
        opened.append(name)
    assert "dashboard:team_home" in opened and "connections:detail" in opened
    assert "assistants:run_detail" in opened and "connections:models" in opened
    assert fake_upstream.requests == []
    assert not ConnectionErrorEvent.objects.exists()


def test_a_fetch_that_opening_a_page_queued_records_no_error(member_client, team, fake_upstream):
    # A key never checked: "New assistant" queues a fetch of its model list (run at once in
    # tests). The refusal is the connection's health now, not a line of the error history.
    connection = make_connection(
        team, name="Unchecked", key=KEY_INVALID, base_url=fake_upstream.base_url
    )
    response = member_client.get(reverse("assistants:create", args=[team.pk]))
    assert response.status_code == 200
    assert [request.path for request in fake_upstream.requests] == ["/v1/models"]
    connection.refresh_from_db()
    assert connection.health == Health.INVALID_KEY
    assert not ConnectionErrorEvent.objects.exists()

    # Refused once, it is not asked again by opening the page.
    fake_upstream.reset()
    cache.clear()
    assert member_client.get(reverse("assistants:create", args=[team.pk])).status_code == 200
    assert fake_upstream.requests == []
