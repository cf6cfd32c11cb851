"""Fixtures of the dashboard tests."""

from tests.dashboard.webhook import webhook  # noqa: F401
from tests.test_consumer_process import consumer_env, storage  # noqa: F401
