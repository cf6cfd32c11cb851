"""The reading pages of assistants and runs answer GET and HEAD (uptime checks and link
checkers send HEAD); a POST or any other method there is a 405."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.fixture
def reading_pages(team, assistant, finished_run):
    team_pages = ["list", "runs", "run_lookup", "usage"]
    return [reverse(f"assistants:{name}", args=[team.pk]) for name in team_pages] + [
        reverse("assistants:detail", args=[team.pk, assistant.pk]),
        reverse("assistants:run_detail", args=[team.pk, finished_run.pk]),
        reverse("assistants:run_status", args=[team.pk, finished_run.pk]),
    ]


def test_reading_pages_take_get_and_head_only(reading_pages, owner_client, fake):
    for url in reading_pages:
        assert owner_client.get(url).status_code == 200, url
        head = owner_client.head(url)
        assert head.status_code == 200, url
        assert head.content == b"", url
        for method in ("post", "put", "patch", "delete"):
            assert getattr(owner_client, method)(url).status_code == 405, (method, url)
