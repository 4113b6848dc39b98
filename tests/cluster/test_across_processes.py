"""Sessions, streams and notifications across server processes: the client's stream is held by
process A, the POST that must reach it lands on process B (as behind a load balancer).

Covered: the legacy HTTP+SSE transport, Streamable HTTP (standalone GET stream, notifications,
Last-Event-ID resumption, stream takeover), resource subscriptions (2025 sessions, legacy SSE and
2026-07-28 `subscriptions/listen`), `tools/list_changed` after a marketplace purchase (MCP
sessions and the marketplace SSE stream), and writes found by keyword and by vector through the
other process. Both processes share Redis for the channel layer and the cache; the settings
check proves that.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPDeprecationWarning

from tests.cluster.conftest import REDIS_URL, Cluster
from tests.mcp_endpoint.conftest import ROOT, McpServer, server_env
from tests.mcp_endpoint.test_legacy_sse import open_sse, post_message
from tests.mcp_endpoint.test_streamable_http import (
    GRAPH_URI,
    EventReader,
    Raw,
    StreamEnded,
    initialize_message,
    ok,
    recording_client,
    rpc,
    sse_events,
)

# Generous bounds for "it never arrived" (they are failure detectors, not performance limits).
WAIT = 15.0
# How long an SDK client waits for an answer before the test fails rather than hangs (a first
# write loads the embedding model).
READ_TIMEOUT = 60.0

UPDATED = {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": GRAPH_URI}}
LIST_CHANGED = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}


async def wait_for(condition: Any, what: str) -> None:
    try:
        with anyio.fail_after(WAIT):
            while not condition():
                await anyio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"{what} never arrived") from None


@pytest.fixture
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(timeout=30) as client:
        yield client


def entity(name: str, observation: str = "x") -> dict[str, Any]:
    return {"name": name, "entityType": "thing", "observations": [observation]}


# --- settings: one Redis for both ------------------------------------------------------------------


def redis_settings(env: dict[str, str]) -> dict[str, Any]:
    script = (
        "import json; from django.conf import settings; "
        "print(json.dumps([settings.CACHES['default'], settings.CHANNEL_LAYERS['default']]))"
    )
    run = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        text=True,
        capture_output=True,
    )
    cache, layer = json.loads(run.stdout)
    return {"cache": cache, "layer": layer}


def test_both_processes_use_one_redis_database_for_the_cache_and_the_channel_layer(cluster: Cluster) -> None:
    for server in (cluster.a, cluster.b):
        found = redis_settings(server.env)
        assert found["cache"]["BACKEND"] == "kernel.cache.SharedRedisCache"
        assert found["cache"]["LOCATION"] == REDIS_URL
        assert found["layer"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"
        # No client read timeout (redis-py >= 8 has 5 s, which kills idle consumers: see settings).
        assert found["layer"]["CONFIG"]["hosts"] == [{"address": REDIS_URL, "socket_timeout": None}]


def test_redis_url_is_accepted_when_memoryhub_redis_url_is_not_set(tmp_path: Any) -> None:
    env = server_env(tmp_path, REDIS_URL=REDIS_URL)
    env.pop("MEMORYHUB_REDIS_URL", None)
    found = redis_settings(env)
    assert found["cache"]["LOCATION"] == REDIS_URL
    assert found["layer"]["CONFIG"]["hosts"][0]["address"] == REDIS_URL
    # The MemoryHub name wins over the generic one.
    env["MEMORYHUB_REDIS_URL"] = "redis://127.0.0.1:6379/7"
    assert redis_settings(env)["layer"]["CONFIG"]["hosts"][0]["address"] == "redis://127.0.0.1:6379/7"


# --- (1) legacy HTTP+SSE -------------------------------------------------------------------------


def test_legacy_sse_answers_to_posts_on_the_other_process(cluster: Cluster, http: httpx2.Client) -> None:
    a, b = cluster.a, cluster.b
    namespace = a.namespace("alice")
    with open_sse(a, http, query=f"?namespace={namespace}") as sse:
        query = f"?sessionId={sse.session_id}"
        accepted = post_message(b, http, query, initialize_message())
        assert accepted.status_code == 202, accepted.text
        reply = sse.reader.next(WAIT)
        assert reply["event"] == "message"
        assert json.loads(reply["data"])["result"]["protocolVersion"] == "2025-11-25"
        assert post_message(b, http, query, rpc("notifications/initialized", request_id=None)).status_code == 202

        # A tool call through B, answered on A's stream.
        arguments = {"entities": [entity("Ada", "wrote the first program")]}
        called = post_message(b, http, query, rpc("tools/call", {"name": "create_entities", "arguments": arguments}, 2))
        assert called.status_code == 202
        answer = json.loads(sse.reader.next(WAIT)["data"])
        assert answer["id"] == 2
        assert answer["result"]["structuredContent"]["entities"][0]["name"] == "Ada"

        # A subscription made through B; a write through B in the namespace; the notification on A.
        assert post_message(b, http, query, rpc("resources/subscribe", {"uri": GRAPH_URI}, 3)).status_code == 202
        assert json.loads(sse.reader.next(WAIT)["data"]) == {"jsonrpc": "2.0", "id": 3, "result": {}}
        Raw(b, http).write(namespace, "Written through B")
        assert json.loads(sse.reader.next(WAIT)["data"]) == UPDATED

        # The session is the key's on every process.
        assert post_message(b, http, query, rpc("ping", request_id=4), persona="bob").status_code == 404


def test_an_idle_legacy_sse_stream_still_gets_its_answers(cluster: Cluster, http: httpx2.Client) -> None:
    """A stream that heard nothing through the channel layer for longer than the layer's blocking
    read (5 s) is still served. With redis-py 8's default 5 s socket timeout the idle consumer
    died on TimeoutError and the stream stayed open but silent."""
    a, b = cluster.a, cluster.b
    with open_sse(a, http) as sse:
        # Two blocking-read periods of silence on the channel layer (keep-alive comments only).
        time.sleep(2 * 5 + 1)
        accepted = post_message(b, http, f"?sessionId={sse.session_id}", initialize_message())
        assert accepted.status_code == 202
        assert json.loads(sse.reader.next(WAIT)["data"])["result"]["protocolVersion"] == "2025-11-25"


# --- (2) Streamable HTTP -------------------------------------------------------------------------


def subscribed_session(raw: Raw, namespace: str) -> str:
    session = raw.open_session(namespace=namespace)
    subscribed = raw.post(rpc("resources/subscribe", {"uri": GRAPH_URI}), session=session, version="2025-11-25")
    assert subscribed.json()["result"] == {}
    return session


def test_a_post_on_b_notifies_the_get_stream_held_by_a(cluster: Cluster, http: httpx2.Client) -> None:
    on_a, on_b = Raw(cluster.a, http), Raw(cluster.b, http)
    namespace = cluster.a.namespace("alice")
    session = subscribed_session(on_a, namespace)

    with http.stream("GET", cluster.a.url, headers=on_a.stream_headers(session)) as stream:
        assert stream.status_code == 200
        reader = EventReader(stream)
        assert reader.next(WAIT)["data"] == ""  # priming: the stream is open (and marked open in Redis)

        # The session's own write, POSTed to B: B sees (through the cache) that the session's
        # stream is open on A, so the notification goes there and the answer is plain JSON.
        arguments = {"entities": [entity("Own write")]}
        response = on_b.post(
            rpc("tools/call", {"name": "create_entities", "arguments": arguments}, request_id=5),
            session=session,
            version="2025-11-25",
        )
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json()["result"]["isError"] is False
        first = reader.next(WAIT)
        assert json.loads(first["data"]) == UPDATED

        # Someone else's write through B.
        on_b.write(namespace, "Another client's write")
        second = reader.next(WAIT)
        assert json.loads(second["data"]) == UPDATED
        assert second["id"] != first["id"]


def test_resuming_on_b_a_post_stream_started_on_a(cluster: Cluster, http: httpx2.Client) -> None:
    on_a, on_b = Raw(cluster.a, http), Raw(cluster.b, http)
    session = on_a.open_session(namespace=cluster.a.namespace("alice"))
    response = on_a.post(
        rpc("tools/call", {"name": "graph_stats", "arguments": {}}, request_id=7),
        session=session,
        version="2025-11-25",
        headers={"Accept": "text/event-stream"},
    )
    priming, answer = sse_events(response.text)
    # A client that lost A's stream after the priming event resumes it on B.
    resumed = http.get(cluster.b.url, headers=on_b.stream_headers(session, last_event_id=priming["id"]))
    assert resumed.status_code == 200
    (replayed,) = sse_events(resumed.text)
    assert replayed["id"] == answer["id"]
    assert json.loads(replayed["data"])["id"] == 7


def test_resuming_on_b_the_get_stream_started_on_a(cluster: Cluster, http: httpx2.Client) -> None:
    on_a, on_b = Raw(cluster.a, http), Raw(cluster.b, http)
    namespace = cluster.a.namespace("alice")
    session = subscribed_session(on_a, namespace)
    with http.stream("GET", cluster.a.url, headers=on_a.stream_headers(session)) as stream:
        reader = EventReader(stream)
        reader.next(WAIT)
        on_b.write(namespace, "Heard on A")
        last_id = reader.next(WAIT)["id"]

    # Missed while disconnected (written through A), replayed by B, whose stream is then live.
    on_a.write(namespace, "Missed")
    with http.stream("GET", cluster.b.url, headers=on_b.stream_headers(session, last_event_id=last_id)) as stream:
        assert stream.status_code == 200
        reader = EventReader(stream)
        missed = reader.next(WAIT)
        assert json.loads(missed["data"]) == UPDATED
        assert missed["id"] != last_id
        on_a.write(namespace, "Live on B")
        live = reader.next(WAIT)
        assert json.loads(live["data"]) == UPDATED
        assert live["id"] not in (missed["id"], last_id)


def test_a_get_stream_on_b_takes_over_from_the_one_on_a_and_delete_on_a_ends_it(
    cluster: Cluster, http: httpx2.Client
) -> None:
    on_a, on_b = Raw(cluster.a, http), Raw(cluster.b, http)
    namespace = cluster.a.namespace("alice")
    session = subscribed_session(on_a, namespace)
    with http.stream("GET", cluster.a.url, headers=on_a.stream_headers(session)) as first:
        first_reader = EventReader(first)
        first_reader.next(WAIT)
        with http.stream("GET", cluster.b.url, headers=on_b.stream_headers(session)) as second:
            second_reader = EventReader(second)
            second_reader.next(WAIT)
            with pytest.raises(StreamEnded):
                first_reader.next(WAIT)
            on_a.write(namespace, "Once")
            assert json.loads(second_reader.next(WAIT)["data"]) == UPDATED
            # The session's own write through A: its stream is known to be open (on B), so the
            # notification goes there, not into the answer.
            arguments = {"entities": [entity("Own write")]}
            response = on_a.post(
                rpc("tools/call", {"name": "create_entities", "arguments": arguments}, request_id=9),
                session=session,
                version="2025-11-25",
            )
            assert response.headers["Content-Type"].startswith("application/json"), response.text
            assert json.loads(second_reader.next(WAIT)["data"]) == UPDATED

            headers = {**cluster.a.headers("alice"), "MCP-Session-Id": session}
            assert http.request("DELETE", cluster.a.url, headers=headers).status_code == 204
            with pytest.raises(StreamEnded):
                second_reader.next(WAIT)


# --- (3) resource subscriptions with the official SDK -------------------------------------------


@asynccontextmanager
async def subscribed_sdk_client(server: McpServer, namespace: str, received: list[Any]) -> AsyncIterator[Client]:
    """A 2025-11-25 session on `server`, subscribed, its GET stream open."""

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            received.append(message)

    async with recording_client(
        server, namespace=namespace, mode="legacy", message_handler=on_message, read_timeout_seconds=READ_TIMEOUT
    ) as (client, responses):
        # The server joins the session's group before it answers the GET.
        await wait_for(lambda: any(r.request.method == "GET" and r.status_code == 200 for r in responses), "GET 200")
        with pytest.warns(MCPDeprecationWarning):
            await client.subscribe_resource(GRAPH_URI)
        yield client


@pytest.mark.anyio
async def test_subscribe_through_a_write_through_b_notified_on_a(cluster: Cluster) -> None:
    namespace = cluster.a.namespace("alice")
    received: list[types.ResourceUpdatedNotification] = []
    async with subscribed_sdk_client(cluster.a, namespace, received) as watcher:
        async with cluster.b.client("alice", namespace=namespace, read_timeout_seconds=READ_TIMEOUT) as writer:
            ok(await writer.call_tool("create_entities", {"entities": [entity("From B")]}))
        await wait_for(lambda: received, "notifications/resources/updated")
        assert str(received[0].params.uri) == GRAPH_URI
        # The session still works through A afterwards.
        assert ok(await watcher.call_tool("graph_stats", {}))["entities"] == 1


@pytest.mark.anyio
async def test_legacy_sse_subscriber_on_a_hears_a_write_through_b(cluster: Cluster) -> None:
    namespace = cluster.a.namespace("alice")
    received: list[types.ResourceUpdatedNotification] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            received.append(message)

    url = cluster.a.endpoint(namespace=namespace, path="/sse")
    transport = sse_client(url, headers=cluster.a.headers("alice"))
    async with Client(
        transport, mode="legacy", message_handler=on_message, read_timeout_seconds=READ_TIMEOUT
    ) as watcher:
        with pytest.warns(MCPDeprecationWarning):
            await watcher.subscribe_resource(GRAPH_URI)
        async with cluster.b.client("alice", namespace=namespace, read_timeout_seconds=READ_TIMEOUT) as writer:
            ok(await writer.call_tool("create_entities", {"entities": [entity("Via B")]}))
        await wait_for(lambda: received, "notifications/resources/updated")


@pytest.mark.anyio
async def test_a_listener_on_a_hears_a_write_through_b(cluster: Cluster) -> None:
    """2026-07-28 `subscriptions/listen`: its stream on A, the write on B."""
    from mcp.shared.subscriptions import ResourceUpdated

    namespace = cluster.a.namespace("alice")
    async with (
        cluster.a.client("alice", namespace=namespace, read_timeout_seconds=READ_TIMEOUT) as listener,
        listener.listen(resource_subscriptions=[GRAPH_URI]) as subscription,
    ):
        async with cluster.b.client("alice", namespace=namespace, read_timeout_seconds=READ_TIMEOUT) as writer:
            ok(await writer.call_tool("create_entities", {"entities": [entity("Listened")]}))
        with anyio.fail_after(WAIT):
            event = await subscription.__anext__()
        assert event == ResourceUpdated(uri=GRAPH_URI)


# --- (4) tools/list_changed after a marketplace purchase -----------------------------------------


async def next_data(lines: AsyncIterator[str]) -> dict[str, Any]:
    """The next `data:` payload of an SSE stream (comments such as heartbeats skipped)."""
    with anyio.fail_after(WAIT):
        async for line in lines:
            if line.startswith("data: "):
                return dict(json.loads(line.removeprefix("data: ")))
    raise AssertionError("the stream ended")


@pytest.mark.anyio
async def test_a_purchase_through_b_changes_the_tool_list_of_sessions_and_streams_on_a(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    agent = int(a.manage("create_agent", "--name", "Cluster agent", "--publish", "--provider", "extractive").stdout)
    a.manage("grant_credits", "--user", "alice", "--credits", "10")
    changed: list[types.ToolListChangedNotification] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.append(message)

    async with (
        recording_client(
            a, tools="agents", mode="legacy", message_handler=on_message, read_timeout_seconds=READ_TIMEOUT
        ) as (session, responses),
        httpx2.AsyncClient(timeout=30) as http,
        http.stream("GET", f"{a.base_url}/api/mcp/sse?key={a.keys['alice']}") as market_stream,
    ):
        assert market_stream.status_code == 200
        lines = market_stream.aiter_lines()
        assert (await next_data(lines))["method"] == "connection/established"
        await wait_for(lambda: any(r.request.method == "GET" and r.status_code == 200 for r in responses), "GET 200")
        assert f"agent_{agent}" not in [tool.name for tool in (await session.list_tools()).tools]

        bought = await http.post(
            f"{b.base_url}/api/mcp/messages",
            json=rpc("tools/call", {"name": "buy_agent_tokens", "arguments": {"agent_id": agent, "token_amount": 500}}),
            headers={"x-momoai-key": b.keys["alice"]},
        )
        assert bought.status_code == 200, bought.text
        assert bought.json()["result"]["isError"] is False

        await wait_for(lambda: changed, "ToolListChangedNotification on the SDK session")
        assert f"agent_{agent}" in [tool.name for tool in (await session.list_tools()).tools]
        assert await next_data(lines) == LIST_CHANGED


# --- (5) writes through A, found through B --------------------------------------------------------


def post_json(server: McpServer, http: httpx2.Client, path: str, body: dict[str, Any]) -> Any:
    response = http.post(f"{server.base_url}{path}", json=body, headers=server.headers("alice"))
    assert response.status_code == 200, response.text
    return response.json()


def found_texts(get_all: dict[str, Any]) -> list[str]:
    return [memory["memory"] for cube in get_all["data"] for memory in cube["memories"]]


def test_a_memory_written_through_a_is_found_through_b_by_keyword_and_by_vector(
    cluster: Cluster, http: httpx2.Client
) -> None:
    a, b = cluster.a, cluster.b
    namespace = a.namespace("alice")
    text = "The office plants need water on Fridays"
    post_json(a, http, "/v1/memory/write", {"namespace": namespace, "text": text})

    keyword = post_json(b, http, "/v1/memory/search", {"namespace": namespace, "query": "office plants"})
    assert [hit["text"] for hit in keyword["results"]] == [text]

    # By meaning alone: the MemOS API's explicit modes (embedding = vectors only).
    def search(query: str, search_type: str) -> list[str]:
        body = {
            "user_id": "u1",
            "memory_type": "text_mem",
            "mem_cube_ids": [namespace],
            "search_query": query,
            "search_type": search_type,
        }
        return found_texts(post_json(b, http, "/product/get_all", body))

    assert search("when should the greenery be watered", "embedding") == [text]
    assert search("when should the greenery be watered", "fulltext") == []
    # No word in common, so only the vector side can find it.
    vector = post_json(b, http, "/v1/memory/search", {"namespace": namespace, "query": "greenery watering day"})
    assert [hit["text"] for hit in vector["results"]][:1] == [text]


@pytest.mark.anyio
async def test_graph_facts_created_through_a_are_found_through_b_by_keyword_and_by_vector(cluster: Cluster) -> None:
    namespace = cluster.a.namespace("alice")
    async with cluster.a.client("alice", namespace=namespace, read_timeout_seconds=READ_TIMEOUT) as writer:
        grace = {"name": "Grace Hopper", "entityType": "person", "observations": ["invented the first compiler"]}
        ok(await writer.call_tool("create_entities", {"entities": [grace]}))
    async with cluster.b.client("alice", namespace=namespace, read_timeout_seconds=READ_TIMEOUT) as reader:
        by_keyword = ok(await reader.call_tool("search_nodes", {"query": "compiler"}))
        assert [found["name"] for found in by_keyword["entities"]] == ["Grace Hopper"]
        meaning = "who built an early program translator"
        by_vector = ok(await reader.call_tool("vector_search_entities", {"query": meaning}))
        assert by_vector["results"][0]["entityName"] == "Grace Hopper"
