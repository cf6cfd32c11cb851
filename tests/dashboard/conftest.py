"""Fixtures of the dashboard tests."""

import pytest
from django.core.cache import cache

from tests.dashboard.webhook import webhook  # noqa: F401
from tests.test_consumer_process import consumer_env, storage  # noqa: F401


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with no cached part of a team home (nor anything else cached)."""
    cache.clear()
    yield
    cache.clear()


def section(body: str, section_id: str) -> str:
    """The part of a page from the element with this id to the end of its <section>."""
    return body.split(f'id="{section_id}"')[1].split("</section>")[0]
