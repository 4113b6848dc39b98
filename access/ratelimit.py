"""Per-key rate limit: a token bucket, kept in the cache so it holds across processes on Redis.

The bucket is stored as GCRA's single number (the "theoretical arrival time"), which behaves
exactly like a token bucket of `burst` tokens refilled at `per_minute` tokens a minute but needs
one value per key instead of two. On Redis the update is one Lua script (atomic across every
server process, using Redis' clock); on other caches it is a locked read-modify-write, which is
exact within one process (the local-memory cache is per process anyway).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tolerance then
  return tostring(tat - now - tolerance)
end
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', math.ceil((tat + interval - now) * 1000) + 1000)
return '0'
"""
_lock = threading.Lock()


@dataclass(frozen=True)
class Limit:
    per_minute: int
    burst: int

    @property
    def interval(self) -> float:
        return 60.0 / self.per_minute

    @property
    def tolerance(self) -> float:
        return self.interval * (self.burst - 1)


def configured_limit() -> Limit | None:
    per_minute = settings.MEMORYHUB_RATE_LIMIT["PER_MINUTE"]
    if per_minute <= 0:
        return None
    return Limit(per_minute=per_minute, burst=max(1, settings.MEMORYHUB_RATE_LIMIT["BURST"]))


def take(bucket: str, limit: Limit) -> float:
    """Take one token from `bucket`. Returns 0.0 if allowed, else the seconds until one is free."""
    key = f"ratelimit:{bucket}"
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        return _take_redis(cache, key, limit)
    with _lock:
        now = time.time()
        tat = max(cache.get(key, 0.0), now)
        if tat - now > limit.tolerance:
            return tat - now - limit.tolerance
        cache.set(key, tat + limit.interval, timeout=int(tat + limit.interval - now) + 1)
        return 0.0


def _take_redis(cache: RedisCache, key: str, limit: Limit) -> float:
    full_key = cache.make_and_validate_key(key)
    client = cache._cache.get_client(full_key, write=True)
    wait = client.eval(_LUA, 1, full_key, repr(limit.interval), repr(limit.tolerance))
    return float(wait)
