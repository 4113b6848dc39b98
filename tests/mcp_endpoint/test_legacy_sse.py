"""The 2024-11-05 HTTP+SSE transport (`GET /sse` + `POST /messages`) against a real server: the
official SDK's SSE client end to end, and the wire rules with plain HTTP (the endpoint event,
both query spellings of the session id, 202 "Accepted", 404 for unknown or foreign sessions,
`?key=` only on the stream, notifications on the stream)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from tests.mcp_endpoint.conftest import ALL_TOOLS
from tests.mcp_endpoint.test_streamable_http import (
    ENTITIES,
    GRAPH_URI,
    KNOWS,
    LIVES_IN,
    EventReader,
    all_tool_names,
    build_graph,
    failed,
    initialize_message,
    names,
    ok,
    rpc,
    wait_for,
)

if TYPE_CHECKING:
    from tests.mcp_endpoint.conftest import McpServer


@asynccontextmanager
async def sse_sdk_client(
    server: McpServer, persona: str = "alice", *, namespace: str | None = None, **options: Any
) -> AsyncIterator[Client]:
    url = server.endpoint(namespace=namespace, path="/sse")
    async with Client(sse_client(url, headers=server.headers(persona)), mode="legacy", **options) as client:
        yield client


@pytest.mark.anyio
async def test_sdk_over_legacy_sse(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with sse_sdk_client(mcp_server, namespace=namespace) as client:
        assert client.protocol_version == "2025-11-25"
        assert client.server_info is not None
        assert client.server_info.name == "memoryhub"
        listed = await all_tool_names(client)
        assert len(listed) == len(ALL_TOOLS)
        assert set(listed) == ALL_TOOLS

        await build_graph(client)
        graph = ok(await client.call_tool("read_graph", {}))
        assert names(graph["entities"]) == ["Alice", "Bob", "Paris", "Lutetia"]
        assert graph["relations"] == [KNOWS, LIVES_IN]
        path = ok(await client.call_tool("find_path", {"from": "Alice", "to": "Paris"}))
        assert path["path"] == ["Alice", "Bob", "Paris"]

        missing = await client.call_tool(
            "add_observations", {"observations": [{"entityName": "Ghost", "contents": ["x"]}]}
        )
        assert failed(missing) == "Entity with name Ghost not found"
        assert failed(await client.call_tool("create_entities", {"entities": 3})).startswith("Input validation error")
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("no_such_tool", {})
        assert unknown.value.code == -32602

        read = await client.read_resource(GRAPH_URI)
        assert isinstance(read.contents[0], types.TextResourceContents)
        assert names(json.loads(read.contents[0].text)["entities"]) == ["Alice", "Bob", "Paris", "Lutetia"]

    async with sse_sdk_client(mcp_server, "bob", namespace=namespace) as bob:
        failed(await bob.call_tool("read_graph", {}))
    async with sse_sdk_client(mcp_server, "carol", namespace=namespace) as carol:
        assert ok(await carol.call_tool("graph_stats", {}))["entities"] == 4
        failed(await carol.call_tool("create_entities", {"entities": [ENTITIES[0] | {"name": "Carol"}]}))


@pytest.mark.anyio
async def test_subscription_notification_on_the_sse_stream(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    received: list[types.ResourceUpdatedNotification] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            received.append(message)

    async with (
        sse_sdk_client(mcp_server, namespace=namespace, message_handler=on_message) as watcher,
        mcp_server.client("alice", namespace=namespace) as writer,
    ):
        with pytest.warns(MCPDeprecationWarning):
            await watcher.subscribe_resource(GRAPH_URI)
        await build_graph(writer)
        await wait_for(lambda: received)
        assert str(received[0].params.uri) == GRAPH_URI

        # Writes elsewhere are not this subscription's business.
        received.clear()
        async with mcp_server.client("alice", namespace=mcp_server.namespace("alice")) as elsewhere:
            await build_graph(elsewhere)
        ok(await writer.call_tool("delete_entities", {"entityNames": ["Lutetia"]}))
        await wait_for(lambda: received)
        # One stream carries everything in order: once a later reply is in, any stray
        # notification would have been too.
        ok(await watcher.call_tool("graph_stats", {}))
        assert len(received) == 1


# --- raw HTTP --------------------------------------------------------------------------------------


class SseSession:
    """An open `/sse` stream: its event reader and the endpoint its `endpoint` event named."""

    def __init__(self, reader: EventReader, endpoint: str) -> None:
        self.reader = reader
        self.endpoint = endpoint
        self.session_id = parse_qs(urlsplit(endpoint).query)["sessionId"][0]


@contextmanager
def open_sse(
    server: McpServer, http: httpx2.Client, *, headers: dict[str, str] | None = None, query: str = ""
) -> Iterator[SseSession]:
    sent = {"Accept": "text/event-stream", **(headers if headers is not None else server.headers("alice"))}
    with http.stream("GET", f"{server.base_url}/sse{query}", headers=sent) as stream:
        assert stream.status_code == 200, stream.read()
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        reader = EventReader(stream)
        endpoint = reader.next()
        assert endpoint["event"] == "endpoint"
        yield SseSession(reader, endpoint["data"])


@pytest.fixture
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(timeout=10) as client:
        yield client


def post_message(
    server: McpServer, http: httpx2.Client, query: str, body: Any, persona: str | None = "alice"
) -> httpx2.Response:
    headers = {"Content-Type": "application/json", **(server.headers(persona) if persona else {})}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http.post(f"{server.base_url}/messages{query}", content=content, headers=headers)


def test_endpoint_event_and_messages(mcp_server: McpServer, http: httpx2.Client) -> None:
    with open_sse(mcp_server, http) as sse:
        assert sse.endpoint.startswith("/messages?sessionId=")
        assert len(sse.session_id) >= 32

        # The endpoint as given, then the Python SDK's spellings (session_id, /messages/).
        accepted = http.post(
            f"{mcp_server.base_url}{sse.endpoint}",
            json=initialize_message(),
            headers=mcp_server.headers("alice"),
        )
        assert accepted.status_code == 202
        assert accepted.text == "Accepted"
        reply = sse.reader.next()
        assert reply["event"] == "message"
        assert json.loads(reply["data"])["result"]["protocolVersion"] == "2025-11-25"

        notification = post_message(
            mcp_server, http, f"?session_id={sse.session_id}", rpc("notifications/initialized", request_id=None)
        )
        assert notification.status_code == 202
        assert notification.text == "Accepted"
        listed = post_message(mcp_server, http, f"/?session_id={sse.session_id}", rpc("tools/list", request_id=2))
        assert listed.status_code == 202
        reply = json.loads(sse.reader.next()["data"])
        assert reply["id"] == 2
        assert len(reply["result"]["tools"]) == 10

        # A broken message is refused on the POST; nothing goes to the stream.
        broken = post_message(mcp_server, http, f"?sessionId={sse.session_id}", b"{not json")
        assert broken.status_code == 400
        assert broken.json()["error"]["code"] == -32700

        # Unknown session, another key, no session: refused.
        assert post_message(mcp_server, http, "?sessionId=nope", rpc("ping")).status_code == 404
        assert post_message(mcp_server, http, "/?session_id=nope", rpc("ping")).status_code == 404
        foreign = post_message(mcp_server, http, f"?sessionId={sse.session_id}", rpc("ping"), persona="bob")
        assert foreign.status_code == 404
        assert post_message(mcp_server, http, "", rpc("ping")).status_code == 400

        # A legacy session is not a Streamable HTTP session, and the other way round.
        streamable = http.post(
            mcp_server.url,
            json=rpc("ping"),
            headers={
                **mcp_server.headers("alice"),
                "Accept": "application/json, text/event-stream",
                "MCP-Session-Id": sse.session_id,
            },
        )
        assert streamable.status_code == 404

        # A reply that echoes a lone surrogate goes out escaped and the stream lives on.
        surrogate = post_message(
            mcp_server,
            http,
            f"?sessionId={sse.session_id}",
            b'{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"\\ud800"}}',
        )
        assert surrogate.status_code == 202
        assert json.loads(sse.reader.next()["data"])["error"]["message"] == "Unknown tool: \ud800"

        # The session still works after all that.
        pinged = post_message(mcp_server, http, f"?sessionId={sse.session_id}", rpc("ping", request_id=9))
        assert pinged.status_code == 202
        assert json.loads(sse.reader.next()["data"]) == {"jsonrpc": "2.0", "id": 9, "result": {}}
        session_id = sse.session_id

    # The stream closed: its session is over (once the server has seen the disconnect).
    deadline = time.monotonic() + 5
    while post_message(mcp_server, http, f"?sessionId={session_id}", rpc("ping")).status_code != 404:
        assert time.monotonic() < deadline, "the session outlived its stream"
        time.sleep(0.05)


def test_query_key_only_on_the_stream(mcp_server: McpServer, http: httpx2.Client) -> None:
    key = mcp_server.keys["alice"]
    with open_sse(mcp_server, http, headers={}, query=f"?key={key}") as sse:
        initialize = http.post(f"{mcp_server.base_url}{sse.endpoint}&key={key}", json=initialize_message())
        assert initialize.status_code == 401
        assert initialize.json()["error"]["code"] == -32600
        # With the header it works, on the session the query key opened.
        accepted = post_message(mcp_server, http, f"?sessionId={sse.session_id}", initialize_message())
        assert accepted.status_code == 202
        assert json.loads(sse.reader.next()["data"])["result"]["serverInfo"]["name"] == "memoryhub"

    # Without Accept: text/event-stream the query key is not looked at.
    refused = http.get(f"{mcp_server.base_url}/sse?key={key}", headers={"Accept": "application/json"})
    assert refused.status_code == 401
    assert http.get(f"{mcp_server.base_url}/sse", headers={"Accept": "text/event-stream"}).status_code == 401


def test_sse_methods_and_settings(mcp_server: McpServer, http: httpx2.Client) -> None:
    headers = {**mcp_server.headers("alice"), "Accept": "text/event-stream"}
    assert http.post(f"{mcp_server.base_url}/sse", headers=headers).status_code == 405
    assert http.get(f"{mcp_server.base_url}/messages", headers=headers).status_code == 405
    bogus = http.get(f"{mcp_server.base_url}/sse?tools=bogus", headers=headers)
    assert bogus.status_code == 400
    assert bogus.json()["error"]["code"] == -32600
