"""A stateful, OpenAI-compatible fake provider on loopback (development only, no Django).

Used by the tests (the ``fake_upstream`` fixture), by ``make demo`` (``python -m fakeprovider``)
and by the demo seeding, which takes its keys from here. See `fakeprovider.server`.
"""

from fakeprovider.clock import Clock, ManualClock, SystemClock
from fakeprovider.keys import (
    ADMIN_KEY_OK,
    KEY_INVALID,
    KEY_NOT_JSON,
    KEY_OK,
    KEY_OVERLOADED,
    KEY_QUOTA,
    KEY_RATE_LIMIT,
    KEY_SLOW,
    KEYS,
)
from fakeprovider.ratelimit import RateLimit
from fakeprovider.router import FakeRequest, Reply, Router
from fakeprovider.server import FakeProvider, build_router

__all__ = [
    "ADMIN_KEY_OK",
    "KEYS",
    "KEY_INVALID",
    "KEY_NOT_JSON",
    "KEY_OK",
    "KEY_OVERLOADED",
    "KEY_QUOTA",
    "KEY_RATE_LIMIT",
    "KEY_SLOW",
    "Clock",
    "FakeProvider",
    "FakeRequest",
    "ManualClock",
    "RateLimit",
    "Reply",
    "Router",
    "SystemClock",
    "build_router",
]
