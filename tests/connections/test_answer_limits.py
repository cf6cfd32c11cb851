"""A compression bomb from the provider, as the connection's page tells it (the limits
themselves are tested with the library, in tests/provider/test_client_compression.py)."""

import gzip

import pytest
from django.urls import reverse

from connections.models import ConnectionErrorEvent, Health
from fakeprovider import KEY_OK, Reply
from provider import body
from provider.errors import ErrorKind
from tests.connections.helpers import make_connection

MB = 1024 * 1024


@pytest.mark.django_db
def test_a_gzip_bomb_from_the_provider_is_explained(
    admin_client_, team, fake_upstream, monkeypatch
):
    monkeypatch.setattr(body, "MAX_BODY_BYTES", 1 * MB)
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    bomb = gzip.compress(b"\0" * (32 * MB), compresslevel=9)
    fake_upstream.queue(
        Reply(200, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    )

    response = admin_client_.post(
        reverse(
            "connections:test",
            kwargs={"team_id": team.pk, "connection_id": connection.pk},
        ),
        follow=True,
    )

    assert response.status_code == 200
    connection.refresh_from_db()
    assert connection.health == Health.ERROR
    event = ConnectionErrorEvent.objects.get(connection=connection)
    assert event.kind == ErrorKind.BAD_RESPONSE.value
    assert "larger than 1 MB" in event.message
