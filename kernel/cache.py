"""The Redis cache backend with one client (and connection pool) per process.

Why: Django keeps cache objects in a context-local (django.utils.connection.BaseConnectionHandler
uses asgiref Local(thread_critical=False)), and under ASGI every request runs in a new context.
RedisCache builds its client (and its redis-py connection pool) per cache object, so every request
opened a new TCP connection to Redis (plus redis-py's CLIENT SETINFO, which reads package metadata)
in `access.authentication._note_use` -> cache.add. Measured with bench/load.py (100k
entities, read tool calls, 1 daphne process with the Redis cache): 233 -> 472 calls/s, server CPU
per call 4.3 -> 2.2 ms. The redis-py client and its pool are thread-safe, so one per process is
enough.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_clients: dict[tuple[Any, ...], RedisCacheClient] = {}
_lock = threading.Lock()


class SharedRedisCache(RedisCache):
    """RedisCache whose client (connection pool) is shared by every cache object of the process."""

    @property
    def _cache(self) -> RedisCacheClient:
        # RedisCache's own _cache is a cached_property: one client per cache object. (The stubs do
        # not declare the private attributes RedisCache.__init__ sets.)
        servers, options = getattr(self, "_servers"), getattr(self, "_options")  # noqa: B009
        key = (tuple(servers), repr(sorted(options.items())))
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = getattr(self, "_class")(servers, **options)  # noqa: B009
            return client
