"""The Redis cache shares one connection pool per process (lib/rediscache.py).

Django keeps a cache backend per thread, and under ASGI per request: with Django's own Redis
backend every request opened a new connection to Redis. Needs Redis on 127.0.0.1:6379 (CI
starts one); skipped without it.
"""

import threading
import uuid

import pytest
from django.core.cache import CacheHandler

from tests.test_settings import REDIS_HOST, REDIS_PORT, redis_reachable

pytestmark = pytest.mark.skipif(not redis_reachable(), reason="Redis is not reachable")


def _connections_named(name: str) -> int:
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        return sum(1 for entry in client.client_list() if entry.get("name") == name)
    finally:
        client.close()


@pytest.mark.parametrize(
    ("backend", "most"),
    [("lib.rediscache.RedisCache", 1), ("django.core.cache.backends.redis.RedisCache", 20)],
)
def test_twenty_requests_in_their_own_threads_use_one_connection(backend, most):
    name = "tablero-test-" + uuid.uuid4().hex[:12]
    handler = CacheHandler(
        {
            "default": {
                "BACKEND": backend,
                "LOCATION": f"redis://{REDIS_HOST}:{REDIS_PORT}/1",
                "OPTIONS": {"client_name": name},
            }
        }
    )
    kept, answers = [], []

    def one_request(number: int) -> None:
        cache = handler["default"]  # a backend of this thread's own, as Django gives each
        kept.append(cache)
        cache.set(f"{name}-{number}", number, timeout=30)
        answers.append(cache.get(f"{name}-{number}"))

    for number in range(20):
        thread = threading.Thread(target=one_request, args=(number,))
        thread.start()
        thread.join()

    assert sorted(answers) == list(range(20))
    assert len({id(cache) for cache in kept}) == 20
    # Django's own backend is the control: it opens a connection per backend.
    assert _connections_named(name) == most
    kept[0].delete_many([f"{name}-{number}" for number in range(20)])
