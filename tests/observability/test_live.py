"""Observability on a real daphne process, as deployed for scale-out: the Redis channel layer and
cache, a Redis Celery broker, JSON logs. Redis must be running at REDIS_URL: these tests fail
(never skip) without it.

An MCP tool call over Streamable HTTP (the official SDK) and a REST call are counted in that
process's /metrics; the request id goes in and out on both kinds of routes and is in the JSON log
line of its request; /healthz does its round trips through Redis.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import redis

from tests.mcp_endpoint.conftest import McpServer, running_servers
from tests.observability import promtext

REDIS_URL = os.environ.get("MEMORYHUB_OBSERVABILITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
QUEUE = f"memoryhub-observability-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpServer]:
    env = {
        "MEMORYHUB_REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "MEMORYHUB_CELERY_QUEUE": QUEUE,
        "MEMORYHUB_LOG_FORMAT": "json",
    }
    with running_servers(tmp_path_factory.mktemp("observability"), **env) as (live,):
        yield live


def scrape(server: McpServer) -> dict[str, promtext.Family]:
    response = httpx2.get(f"{server.base_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return promtext.parse(response.text)


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    return promtext.value(after, name, **labels) - promtext.value(before, name, **labels)


@pytest.mark.anyio
async def test_mcp_tool_calls_and_rest_calls_are_counted(server: McpServer) -> None:
    namespace = server.namespace("alice")
    before = scrape(server)

    async with server.client("alice", namespace=namespace) as client:
        created = await client.call_tool(
            "create_entities", {"entities": [{"name": "Ada", "entityType": "person", "observations": ["counts"]}]}
        )
        assert not created.is_error
        found = await client.call_tool("search_nodes", {"query": "Ada"})
        assert not found.is_error
        missing = await client.call_tool("get_entity", {"name": "nobody"})
        assert missing.is_error
    written = httpx2.post(
        f"{server.base_url}/v1/memory/write",
        json={"namespace": namespace, "text": "metrics count this"},
        headers=server.headers("alice"),
        timeout=30,
    )
    assert written.status_code == 200
    searched = httpx2.post(
        f"{server.base_url}/v1/memory/search",
        json={"namespace": namespace, "query": "metrics"},
        headers=server.headers("alice"),
        timeout=30,
    )
    assert searched.status_code == 200

    after = scrape(server)
    tools = "memoryhub_mcp_tool_calls_total"
    assert delta(before, after, tools, tool="create_entities", outcome="ok") == 1
    assert delta(before, after, tools, tool="search_nodes", outcome="ok") == 1
    assert delta(before, after, tools, tool="get_entity", outcome="error") == 1
    assert delta(before, after, "memoryhub_mcp_tool_duration_seconds_count", tool="search_nodes") == 1
    assert delta(before, after, "memoryhub_http_requests_total", surface="mcp", method="POST", status="200") >= 3
    assert delta(before, after, "memoryhub_http_request_duration_seconds_count", surface="mcp") >= 3
    assert (
        delta(before, after, "memoryhub_http_requests_total", surface="rest_memory", method="POST", status="200") == 2
    )
    assert promtext.value(after, "memoryhub_database_size_bytes") > 0
    # The write was embedded, and the search loaded its namespace's index in this process.
    assert promtext.value(after, "memoryhub_vector_indexes_loaded") >= 1
    assert sum(value for _, _, value in after["memoryhub_vector_index_vectors"].samples) >= 1


def test_queue_depth_and_broker_are_reported(server: McpServer) -> None:
    broker = redis.Redis.from_url(REDIS_URL)
    keys = [QUEUE, f"{QUEUE}\x06\x163"]  # the default priority's list and priority 3's (kombu)
    # The writes of the other tests queued embedding drains (vectors/tasks.py) that no worker here
    # takes: the depth is counted from what is already there.
    waiting = sum(broker.llen(key) for key in keys)
    try:
        broker.rpush(keys[0], "a", "b", "c")
        broker.rpush(keys[1], "d")
        families = scrape(server)
        assert promtext.value(families, "memoryhub_broker_up") == 1
        assert promtext.value(families, "memoryhub_queue_depth", queue=QUEUE) == waiting + 4
        health = httpx2.get(f"{server.base_url}/healthz", timeout=10).json()
        assert health["broker"]["queue_depth"] == waiting + 4
    finally:
        broker.delete(*keys)
        broker.close()


def test_healthz_round_trips_through_redis(server: McpServer) -> None:
    response = httpx2.get(f"{server.base_url}/healthz", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["channel_layer"]["ok"] is True
    assert body["channel_layer"]["backend"] == "RedisChannelLayer"
    assert body["broker"]["ok"] is True
    assert body["broker"]["configured"] is True
    assert body["broker"]["transport"] == "redis"
    assert REDIS_URL not in response.text


def test_request_ids_round_trip_on_mcp_and_django_routes(server: McpServer) -> None:
    mcp = httpx2.post(
        server.url,
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={**server.headers("alice"), "X-Request-ID": "mcp-req-1", "Accept": "application/json"},
        timeout=10,
    )
    assert mcp.headers["x-request-id"] == "mcp-req-1"
    assert len(mcp.headers.get_list("x-request-id")) == 1
    rest = httpx2.get(
        f"{server.base_url}/v1/memory/banks/list",
        headers={**server.headers("alice"), "X-Request-ID": "rest-req-1"},
        timeout=10,
    )
    assert rest.status_code == 200
    assert rest.headers["x-request-id"] == "rest-req-1"
    assert len(rest.headers.get_list("x-request-id")) == 1
    generated = httpx2.get(f"{server.base_url}/healthz", headers={"X-Request-ID": "bad id"}, timeout=10)
    assert len(generated.headers["x-request-id"]) == 32


def _log_lines(path: Path) -> list[dict]:
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entries.append(json.loads(line))  # every JSON-looking line must be one object
    return entries


def test_json_log_lines_carry_the_request_id(server: McpServer) -> None:
    request_id = f"log-{uuid.uuid4().hex[:12]}"
    response = httpx2.get(
        f"{server.base_url}/v1/graph/no-such-operation", headers={"X-Request-ID": request_id}, timeout=10
    )
    assert response.status_code == 404
    log = server.data_dir / "daphne.log"
    deadline = time.monotonic() + 10
    while True:
        mine = [entry for entry in _log_lines(log) if entry.get("request_id") == request_id]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert mine, log.read_text()[-2000:]
    (entry,) = mine
    assert entry["logger"] == "django.request"
    assert entry["level"] == "WARNING"
    assert "/v1/graph/no-such-operation" in entry["message"]
    assert entry["status_code"] == 404
    assert {"time", "level", "logger", "message", "request_id"} <= entry.keys()
