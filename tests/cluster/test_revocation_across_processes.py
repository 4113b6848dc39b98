"""Revocation reaches every process (issue 16, item 7): a key holds streams open on two server
processes sharing Redis; `manage.py revoke_api_key`, run as a third process on the same Redis,
ends all of them. Keep-alives are five minutes apart here, so only the revocation's message
through Redis can end the streams in time (tests/mcp_endpoint/test_revocation.py has one process
without Redis, where the keep-alive finds it)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2

from tests.cluster.conftest import REDIS_URL, require_redis
from tests.mcp_endpoint.conftest import running_servers
from tests.mcp_endpoint.test_revocation import ENDS_WITHIN, assert_all_end, new_key, streams_of


def test_revoking_a_key_ends_its_streams_on_every_process(tmp_path: Path) -> None:
    require_redis()
    with (
        running_servers(
            tmp_path,
            2,
            MEMORYHUB_REDIS_URL=REDIS_URL,
            MEMORYHUB_MCP_KEEPALIVE_SECONDS="300",
            MEMORYHUB_MARKETPLACE_HEARTBEAT_SECONDS="300",
        ) as (a, b),
        httpx2.Client(timeout=ENDS_WITHIN + 5) as http,
    ):
        secret = new_key(a, "grace")
        with streams_of([a, b], "grace", secret, http) as streams:
            a.manage("revoke_api_key", secret)
            assert_all_end(streams, time.monotonic())
