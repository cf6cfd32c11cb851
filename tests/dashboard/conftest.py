"""Fixtures of the dashboard tests."""

from tests.dashboard.webhook import webhook  # noqa: F401
