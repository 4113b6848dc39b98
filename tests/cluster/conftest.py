"""Two real server processes (daphne) on one SQLite database and one Redis: the scale-out shape
of DESIGN.md ("Runtime"). Each test connects a client to one process (A) and sends the request
that should reach it to the other (B), so the only way through is the Redis channel layer and
the Redis cache (events' replay log, open-stream markers) plus the shared database.

Redis is real and required: without it these tests fail (they never skip). They use Redis
database 6 unless MEMORYHUB_CLUSTER_REDIS_URL names another.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from tests.mcp_endpoint.conftest import McpServer, running_servers

REDIS_URL = os.environ.get("MEMORYHUB_CLUSTER_REDIS_URL", "redis://127.0.0.1:6379/6")


def require_redis(url: str = REDIS_URL) -> None:
    """Fail (not skip) with a clear message when Redis does not answer."""
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as problem:
        pytest.fail(
            f"Redis at {url} does not answer ({problem}). The cluster tests need a running Redis "
            "(apt-get install redis-server, or set MEMORYHUB_CLUSTER_REDIS_URL).",
            pytrace=False,
        )


@dataclass(frozen=True)
class Cluster:
    """Two processes serving one database: clients hold their streams on `a`, requests that
    must reach them go to `b`."""

    a: McpServer
    b: McpServer


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_redis()
    with running_servers(
        tmp_path_factory.mktemp("cluster"),
        2,
        MEMORYHUB_REDIS_URL=REDIS_URL,
        # Published marketplace agents answer with the extractive provider: no LLM involved.
        MEMORYHUB_MARKETPLACE_HEARTBEAT_SECONDS="1",
    ) as (a, b):
        # One set of keys on both processes (an MCP session belongs to the key that opened it): a
        # key a test adds for one process is the other's too.
        b.keys = a.keys
        yield Cluster(a, b)
