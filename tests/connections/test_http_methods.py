"""The reading pages of connections and models answer GET and HEAD (uptime checks and link
checkers send HEAD); a POST or any other method there is a 405."""

import pytest
from django.urls import reverse

from tests.connections.helpers import make_connection
from tests.fakeupstream import KEY_OK

pytestmark = pytest.mark.django_db


def test_reading_pages_take_get_and_head_only(team, owner_client, fake_upstream):
    connection = make_connection(team, base_url=fake_upstream.base_url, key=KEY_OK)
    one = [team.pk, connection.pk]
    pages = [
        reverse("connections:list", args=[team.pk]),
        reverse("connections:detail", args=one),
        reverse("connections:models", args=one),
        reverse("connections:model_detail", args=[*one, "gpt-4o"]),
        reverse("connections:costs", args=one),
    ]
    for url in pages:
        assert owner_client.get(url).status_code == 200, url
        head = owner_client.head(url)
        assert head.status_code == 200, url
        assert head.content == b"", url
        for method in ("post", "put", "patch", "delete"):
            assert getattr(owner_client, method)(url).status_code == 405, (method, url)
