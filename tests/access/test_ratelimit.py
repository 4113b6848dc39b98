"""Per-key token bucket: 429 with Retry-After; each key has its own bucket; on Redis the bucket
is shared by every process (tested against the real Redis at 127.0.0.1:6379)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from django.core.cache import caches
from django.test import Client, override_settings

from access import ratelimit
from tests.conftest import Persona

LIST = "/v1/memory/banks/list"
REDIS_URL = os.environ.get("MEMORYHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def tight_limit(settings):
    settings.MEMORYHUB_RATE_LIMIT = {"PER_MINUTE": 60, "BURST": 3}


def test_it_answers_429_with_retry_after_once_the_burst_is_spent(
    client: Client, alice_key: Persona, bob_key: Persona, tight_limit
) -> None:
    statuses = [client.get(LIST, **alice_key.headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get(LIST, **alice_key.headers)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 2  # one token a second at 60 a minute
    assert refused.json()["error"]["code"] == "rate_limited"
    # Another key has its own bucket.
    assert client.get(LIST, **bob_key.headers).status_code == 200


def test_a_zero_limit_turns_rate_limiting_off(client: Client, alice_key: Persona, settings) -> None:
    settings.MEMORYHUB_RATE_LIMIT = {"PER_MINUTE": 0, "BURST": 1}
    assert {client.get(LIST, **alice_key.headers).status_code for _ in range(5)} == {200}


def test_bad_keys_do_not_spend_a_real_keys_tokens(client: Client, alice_key: Persona, tight_limit) -> None:
    for _ in range(5):
        assert client.get(LIST, HTTP_X_API_KEY=alice_key.secret[:-2] + "zz").status_code == 401
    assert client.get(LIST, **alice_key.headers).status_code == 200


def test_the_bucket_refills_at_the_configured_rate() -> None:
    limit = ratelimit.Limit(per_minute=6000, burst=2)  # one token every 10 ms
    bucket = f"test:{uuid.uuid4()}"
    assert ratelimit.take(bucket, limit) == 0.0
    assert ratelimit.take(bucket, limit) == 0.0
    wait = ratelimit.take(bucket, limit)
    assert 0 < wait <= 0.011
    time.sleep(wait + 0.005)
    assert ratelimit.take(bucket, limit) == 0.0


REDIS_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "memoryhub",  # what settings.py uses when MEMORYHUB_REDIS_URL is set
    }
}

OTHER_PROCESS = """
import os, sys, django
os.environ["DJANGO_SETTINGS_MODULE"] = "memoryhub.settings"
django.setup()
from access import ratelimit
print(ratelimit.take(sys.argv[1], ratelimit.Limit(per_minute=1, burst=3)))
"""


@override_settings(CACHES=REDIS_CACHE)
def test_on_redis_the_api_refuses_with_429_too(client: Client, alice_key: Persona, tight_limit) -> None:
    assert type(caches["default"]).__name__ == "RedisCache"
    caches["default"].delete_many([f"ratelimit:key:{alice_key.key.pk}", f"access:last-used:{alice_key.key.pk}"])
    assert [client.get(LIST, **alice_key.headers).status_code for _ in range(4)] == [200, 200, 200, 429]
    caches["default"].delete(f"ratelimit:key:{alice_key.key.pk}")


@override_settings(CACHES=REDIS_CACHE)
def test_on_redis_the_bucket_is_shared_across_processes() -> None:
    """Three tokens taken here leave none for another server process using the same Redis."""
    # One token a minute, so none comes back while the other process starts up.
    limit = ratelimit.Limit(per_minute=1, burst=3)
    bucket = f"test:{uuid.uuid4()}"
    assert [ratelimit.take(bucket, limit) for _ in range(3)] == [0.0, 0.0, 0.0]
    env = {**os.environ, "MEMORYHUB_REDIS_URL": REDIS_URL}
    result = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, bucket], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert float(result.stdout.strip().splitlines()[-1]) > 0  # refused over there
    caches["default"].delete(f"ratelimit:{bucket}")
    # ...and a fresh bucket over there is independent of ours.
    result = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, bucket + "-other"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert float(result.stdout.strip().splitlines()[-1]) == 0.0
