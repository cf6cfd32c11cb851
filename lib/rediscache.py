"""Django's Redis cache backend, with one connection pool per process instead of one per request.

Django keeps a cache backend per thread and, under ASGI, per request (its cache handler is an
asgiref ``Local``). Its Redis client keeps its connection pools on that instance, so every page
served by uvicorn made a new pool and opened a new connection to Redis: a TCP handshake, a
``HELLO`` and a ``CLIENT SETINFO`` (whose library version redis-py reads from the installed
package's metadata each time), about 40 % of a signed-in page's time under load.

Here the pools live at module level, keyed by server and options, so every backend instance in
the process shares them. redis-py's pools are thread-safe and notice a fork (the pid check in
``ConnectionPool``), so uvicorn's and Huey's workers each end up with their own.
"""

import threading

from django.core.cache.backends import redis

_pools: dict[tuple, tuple[object, object]] = {}  # (pool, client)
_pools_lock = threading.Lock()


class SharedPoolRedisCacheClient(redis.RedisCacheClient):
    def _shared(self, write):
        server = self._servers[self._get_connection_pool_index(write)]
        key = (self._pool_class, server, repr(sorted(self._pool_options.items())))
        shared = _pools.get(key)
        if shared is None:
            with _pools_lock:
                shared = _pools.get(key)
                if shared is None:
                    pool = self._pool_class.from_url(server, **self._pool_options)
                    # A redis-py client is thread-safe (each command takes a connection from
                    # the pool): kept too, where Django made one per cache call.
                    shared = _pools[key] = (pool, self._client(connection_pool=pool))
        return shared

    def _get_connection_pool(self, write):
        return self._shared(write)[0]

    def get_client(self, key=None, *, write=False):
        return self._shared(write)[1]


class RedisCache(redis.RedisCache):
    """Named like Django's, which it is but for the pools (settings test the name)."""

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
