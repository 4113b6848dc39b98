"""The session event log in the Redis cache, as a cluster keeps it: event ids never repeat while a
stream is in use, however long that is.

Each stream numbers its events with a counter key; the events live `RETENTION` seconds. The
counter must outlive every event it numbered and every open stream, or numbering restarts at 1
(a long-lived GET stream would then drop new notifications as already sent). Time is not waited
for: the keys' remaining lives are read from Redis after shortening them as time would.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
import redis
from django.core.cache import cache
from django.test import override_settings

from mcp_endpoint import events
from tests.cluster.conftest import REDIS_URL, require_redis

MESSAGE = {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": "memory://x"}}


@pytest.fixture
def redis_cache() -> Iterator[redis.Redis]:
    """The cache of this process on the cluster's Redis (its own key prefix), and a raw client."""
    require_redis()
    backend = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"memoryhub-test-{secrets.token_hex(4)}",
    }
    client = redis.Redis.from_url(REDIS_URL)
    with override_settings(CACHES={"default": backend}):
        yield client
    for key in client.scan_iter(match=f"{backend['KEY_PREFIX']}:*"):
        client.delete(key)


def ttl(client: redis.Redis, key: str) -> int:
    return int(client.ttl(cache.make_and_validate_key(key)))


def test_a_counter_outlives_every_event_it_numbered(redis_cache: redis.Redis) -> None:
    session = secrets.token_urlsafe(16)
    first = events.record(session, events.STANDALONE, MESSAGE)
    counter = events._seq_key(session, events.STANDALONE)
    # Most of the counter's life has gone by; then the stream numbers another event.
    redis_cache.expire(cache.make_and_validate_key(counter), 5)
    second = events.record(session, events.STANDALONE, MESSAGE)
    assert (first.id, second.id) == ("0.1", "0.2")
    newest = events._event_key(session, events.STANDALONE, 2)
    assert ttl(redis_cache, counter) > ttl(redis_cache, newest) > 0
    # So the next id is still fresh, and a client resuming after 0.1 gets 0.2.
    assert events.record(session, events.STANDALONE, MESSAGE).id == "0.3"
    replayed = events.replay(session, "0.1")
    assert replayed is not None
    assert (replayed[0], [event.id for event in replayed[1]]) == ("0", ["0.2", "0.3"])


def test_an_open_stream_keeps_its_counter_alive(redis_cache: redis.Redis) -> None:
    session = secrets.token_urlsafe(16)
    events.record(session, events.STANDALONE, None)
    counter = events._seq_key(session, events.STANDALONE)
    redis_cache.expire(cache.make_and_validate_key(counter), 5)
    # A keep-alive of the session's open GET stream (idle: no event numbered since).
    events.stream_opened(session, "channel", 45)
    assert ttl(redis_cache, counter) > events.RETENTION


def test_post_stream_ids_do_not_repeat_while_their_events_are_kept(redis_cache: redis.Redis) -> None:
    session = secrets.token_urlsafe(16)
    first = events.new_stream(session)
    events.record(session, first, MESSAGE)
    counter = events._seq_key(session, "streams")
    redis_cache.expire(cache.make_and_validate_key(counter), 5)
    second = events.new_stream(session)
    assert (first, second) == ("p1", "p2")
    assert ttl(redis_cache, counter) > events.RETENTION
