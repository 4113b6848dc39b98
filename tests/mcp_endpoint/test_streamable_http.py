"""Streamable HTTP at /mcp against a real server: the official SDK client in both eras (the
2025-11-25 handshake with a session, and stateless 2026-07-28 requests), every graph tool, tool
errors, key and namespace isolation, resources and subscriptions, and the transport's wire rules
checked with plain HTTP (sessions, status codes, Origin, batches, SSE answers and resumption)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from tests.mcp_endpoint.conftest import ALL_TOOLS, GRAPH_TOOLS, READ_TOOLS

if TYPE_CHECKING:
    from tests.mcp_endpoint.conftest import McpServer

ACCEPT = "application/json, text/event-stream"
GRAPH_URI = "memory://knowledge-graph"
PROTOCOL_VERSION_META = "io.modelcontextprotocol/protocolVersion"
CLIENT_CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO_META = "io.modelcontextprotocol/serverInfo"


# Valid arguments for every read tool on the small graph `build_graph` makes.
READ_CALLS: dict[str, dict[str, Any]] = {
    "read_graph": {},
    "search_nodes": {"query": "chess"},
    "open_nodes": {"names": ["Alice"]},
    "get_entity": {"name": "Alice"},
    "batch_get_entities": {"names": ["Alice", "Nobody"]},
    "entity_exists": {"names": ["Alice", "Nobody"]},
    "graph_stats": {},
    "list_entity_types": {},
    "list_relation_types": {},
    "search_relations": {"from": "Alice"},
    "degree": {"name": "Bob"},
    "describe_entity": {"name": "Bob"},
    "get_neighbors": {"name": "Alice", "depth": 2},
    "extract_subgraph": {"names": ["Alice"], "depth": 1},
    "find_path": {"from": "Alice", "to": "Paris"},
    "find_all_paths": {"from": "Alice", "to": "Paris"},
    "export_graph": {"format": "mermaid"},
    "entity_history": {"name": "Alice"},
}
assert set(READ_CALLS) == READ_TOOLS

ENTITIES = [
    {"name": "Alice", "entityType": "person", "observations": ["likes tea"]},
    {"name": "Bob", "entityType": "person", "observations": ["plays chess"]},
    {"name": "Paris", "entityType": "city", "observations": ["capital of France"]},
    {"name": "Lutetia", "entityType": "city", "observations": ["city of light"]},
]
KNOWS = {"from": "Alice", "to": "Bob", "relationType": "knows"}
LIVES_IN = {"from": "Bob", "to": "Paris", "relationType": "lives_in"}


# --- helpers -------------------------------------------------------------------------------------


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def ok(result: types.CallToolResult) -> Any:
    """The structured content of a successful call (whose text block carries the same data)."""
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    json.loads(text_of(result))
    return result.structured_content


def failed(result: types.CallToolResult) -> str:
    assert result.is_error, result
    assert result.structured_content is None
    return text_of(result)


def names(entities: list[dict[str, Any] | None]) -> list[str | None]:
    return [entity["name"] if entity is not None else None for entity in entities]


async def all_tool_names(client: Client) -> list[str]:
    """Every tool, following nextCursor; checks the server's page size (10) on the way."""
    collected: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await client.list_tools(cursor=cursor)
        pages += 1
        collected += [tool.name for tool in page.tools]
        cursor = page.next_cursor
        if cursor is None:
            assert len(page.tools) <= 10
            return collected
        assert len(page.tools) == 10
        assert pages < 10, "tools/list never ends"


async def wait_for(condition: Any, timeout: float = 5.0) -> None:
    """Poll `condition` until it holds; TimeoutError after `timeout` seconds."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


@asynccontextmanager
async def recording_client(
    server: McpServer,
    persona: str = "alice",
    *,
    namespace: str | None = None,
    tools: str | None = None,
    mode: str = "auto",
    **options: Any,
) -> AsyncIterator[tuple[Client, list[httpx2.Response]]]:
    """An SDK client like `server.client`, plus every HTTP response it received (headers only)."""
    responses: list[httpx2.Response] = []

    async def record(response: httpx2.Response) -> None:
        responses.append(response)

    async with httpx2.AsyncClient(
        headers=server.headers(persona), timeout=30, event_hooks={"response": [record]}
    ) as http:
        transport = streamable_http_client(server.endpoint(namespace=namespace, tools=tools), http_client=http)
        async with Client(transport, mode=mode, **options) as client:
            yield client, responses


async def build_graph(client: Client) -> None:
    created = ok(await client.call_tool("create_entities", {"entities": ENTITIES}))
    assert created == {"entities": ENTITIES, "skipped": []}
    related = ok(await client.call_tool("create_relations", {"relations": [KNOWS, LIVES_IN]}))
    assert related == {"relations": [KNOWS, LIVES_IN], "skipped": []}


# --- raw HTTP helpers ----------------------------------------------------------------------------


def rpc(method: str, params: dict[str, Any] | None = None, request_id: int | None = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params is not None:
        message["params"] = params
    return message


def initialize_message(version: str = "2025-11-25") -> dict[str, Any]:
    return rpc(
        "initialize",
        {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw-test", "version": "1"}},
    )


def modern_message(
    method: str, params: dict[str, Any] | None = None, version: str = "2026-07-28", request_id: int = 1
) -> dict[str, Any]:
    meta = {PROTOCOL_VERSION_META: version, CLIENT_CAPABILITIES_META: {}}
    return rpc(method, {**(params or {}), "_meta": meta}, request_id)


def modern_headers(
    server: McpServer, method: str, name: str | None = None, version: str = "2026-07-28", persona: str = "alice"
) -> dict[str, str]:
    headers = {**server.headers(persona), "Accept": ACCEPT, "MCP-Protocol-Version": version, "Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = name
    return headers


class StreamEnded(AssertionError):
    pass


class EventReader:
    """Reads SSE events ({'id', 'event', 'retry', 'data'} as sent; comments skipped) off a live
    streamed response or any lines, giving up after a deadline."""

    def __init__(self, source: httpx2.Response | Iterable[str]) -> None:
        self.lines = iter(source.iter_lines() if isinstance(source, httpx2.Response) else source)

    def next(self, timeout: float = 5.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        fields: dict[str, str] = {}
        data: list[str] = []
        for line in self.lines:
            # The server sends a keepalive comment every second, so this check runs at least that often.
            assert time.monotonic() < deadline, "no SSE event arrived in time"
            if line == "":
                if fields or data:
                    return {**fields, "data": "\n".join(data)}
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
        raise StreamEnded("the stream ended")


def sse_events(text: str) -> list[dict[str, str]]:
    """Every event of a complete SSE body."""
    reader = EventReader(text.replace("\r\n", "\n").split("\n"))
    events = []
    while True:
        try:
            events.append(reader.next())
        except StreamEnded:
            return events


class Raw:
    """Plain HTTP against the server, one persona's key by default."""

    def __init__(self, server: McpServer, http: httpx2.Client) -> None:
        self.server = server
        self.http = http

    def post(
        self,
        body: Any,
        *,
        persona: str | None = "alice",
        session: str | None = None,
        version: str | None = None,
        headers: dict[str, str] | None = None,
        url: str | None = None,
    ) -> httpx2.Response:
        sent = {"Accept": ACCEPT, **(self.server.headers(persona) if persona else {})}
        if session is not None:
            sent["MCP-Session-Id"] = session
        if version is not None:
            sent["MCP-Protocol-Version"] = version
        sent.update(headers or {})
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.http.post(
            url or self.server.url, content=content, headers={"Content-Type": "application/json", **sent}
        )

    def open_session(self, persona: str = "alice", *, namespace: str | None = None, version: str = "2025-11-25") -> str:
        response = self.post(
            initialize_message(version), persona=persona, url=self.server.endpoint(namespace=namespace)
        )
        assert response.status_code == 200, response.text
        session = response.headers["MCP-Session-Id"]
        sent_version = None if version == "2025-03-26" else version
        initialized = self.post(
            rpc("notifications/initialized", request_id=None), persona=persona, session=session, version=sent_version
        )
        assert initialized.status_code == 202
        return session

    def stream_headers(self, session: str, persona: str = "alice", last_event_id: str | None = None) -> dict[str, str]:
        headers = {
            **self.server.headers(persona),
            "Accept": "text/event-stream",
            "MCP-Session-Id": session,
            "MCP-Protocol-Version": "2025-11-25",
        }
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        return headers

    def write(self, namespace: str, name: str, persona: str = "alice") -> None:
        """One stateless create_entities in `namespace` (a graph change subscribers hear about)."""
        arguments = {"entities": [{"name": name, "entityType": "thing", "observations": ["x"]}]}
        response = self.post(
            modern_message("tools/call", {"name": "create_entities", "arguments": arguments}),
            persona=None,
            headers=modern_headers(self.server, "tools/call", "create_entities", persona=persona),
            url=self.server.endpoint(namespace=namespace),
        )
        assert response.status_code == 200, response.text
        assert response.json()["result"]["isError"] is False


@pytest.fixture
def raw(mcp_server: McpServer) -> Iterator[Raw]:
    with httpx2.Client(timeout=10) as http:
        yield Raw(mcp_server, http)


def error_of(response: httpx2.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["jsonrpc"] == "2.0"
    assert body["error"]["code"] == code, body
    return dict(body["error"])


# --- the SDK in both eras ------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("mode", "version"), [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
async def test_sdk_lists_and_calls_every_tool(mcp_server: McpServer, mode: str, version: str) -> None:
    namespace = mcp_server.namespace("alice")
    called: set[str] = set()
    async with recording_client(mcp_server, "alice", namespace=namespace, mode=mode) as (client, responses):
        assert client.protocol_version == version
        session_ids = {r.headers["MCP-Session-Id"] for r in responses if "MCP-Session-Id" in r.headers}
        if mode == "legacy":
            assert len(session_ids) == 1
            (session_id,) = session_ids
            assert len(session_id) >= 32
            assert all(0x21 <= ord(char) <= 0x7E for char in session_id)
        else:
            # Stateless: no session, every request says its version.
            assert session_ids == set()
            assert all(r.request.headers["MCP-Protocol-Version"] == version for r in responses)

        listed = await all_tool_names(client)
        assert len(listed) == len(ALL_TOOLS)
        assert set(listed) == ALL_TOOLS

        async def call(name: str, arguments: dict[str, Any]) -> Any:
            called.add(name)
            return ok(await client.call_tool(name, arguments))

        await build_graph(client)
        called |= {"create_entities", "create_relations"}
        added = await call("add_observations", {"observations": [{"entityName": "Alice", "contents": ["runs"]}]})
        assert added == {"results": [{"entityName": "Alice", "addedObservations": ["runs"]}]}

        # Reads.
        graph = await call("read_graph", {})
        assert names(graph["entities"]) == ["Alice", "Bob", "Paris", "Lutetia"]
        assert graph["relations"] == [KNOWS, LIVES_IN]
        assert graph["hasMore"] is False
        assert graph["nextCursor"] is None
        found = await call("search_nodes", READ_CALLS["search_nodes"])
        assert names(found["entities"]) == ["Bob"]
        assert found["hasMore"] is False
        opened = await call("open_nodes", READ_CALLS["open_nodes"])
        assert opened["entities"] == [{"name": "Alice", "entityType": "person", "observations": ["likes tea", "runs"]}]
        assert opened["relations"] == [KNOWS]
        assert await call("get_entity", READ_CALLS["get_entity"]) == opened["entities"][0]
        batch = await call("batch_get_entities", READ_CALLS["batch_get_entities"])
        assert names(batch["entities"]) == ["Alice", None]
        exists = await call("entity_exists", READ_CALLS["entity_exists"])
        assert exists == {"names": ["Alice", "Nobody"], "exists": [True, False]}
        stats = await call("graph_stats", {})
        assert stats == {
            "entities": 4,
            "relations": 2,
            "observations": 5,
            "memories": 0,
            "entityTypes": 2,
            "relationTypes": 2,
        }
        entity_types = await call("list_entity_types", {})
        assert sorted((t["name"], t["count"]) for t in entity_types["types"]) == [("city", 2), ("person", 2)]
        relation_types = await call("list_relation_types", {})
        assert sorted((t["name"], t["count"]) for t in relation_types["types"]) == [("knows", 1), ("lives_in", 1)]
        relations = await call("search_relations", READ_CALLS["search_relations"])
        assert relations == {"relations": [KNOWS], "hasMore": False, "nextOffset": None}
        degree = await call("degree", READ_CALLS["degree"])
        assert degree == {"name": "Bob", "direction": "both", "degree": 2, "inDegree": 1, "outDegree": 1}
        described = await call("describe_entity", READ_CALLS["describe_entity"])
        assert described["entity"]["name"] == "Bob"
        assert described["outgoing"] == [LIVES_IN]
        assert described["incoming"] == [KNOWS]
        assert sorted(described["neighbors"]) == ["Alice", "Paris"]
        neighbors = await call("get_neighbors", READ_CALLS["get_neighbors"])
        assert neighbors["distances"] == {"Bob": 1, "Paris": 2}
        assert neighbors["truncated"] is False
        subgraph = await call("extract_subgraph", READ_CALLS["extract_subgraph"])
        assert sorted(entity["name"] for entity in subgraph["entities"]) == ["Alice", "Bob"]
        assert subgraph["relations"] == [KNOWS]
        path = await call("find_path", READ_CALLS["find_path"])
        assert path == {"found": True, "path": ["Alice", "Bob", "Paris"], "relations": [KNOWS, LIVES_IN], "length": 2}
        paths = await call("find_all_paths", READ_CALLS["find_all_paths"])
        assert paths["paths"] == [["Alice", "Bob", "Paris"]]
        assert paths["count"] == 1
        exported = await call("export_graph", READ_CALLS["export_graph"])
        assert exported["format"] == "mermaid"
        assert exported["content"].startswith("graph LR")
        assert "Alice" in exported["content"]

        # Writes beyond create / add.
        upserted = await call(
            "upsert_entities",
            {
                "entities": [
                    {"name": "Alice", "entityType": "person", "observations": ["likes tea", "swims"]},
                    {"name": "Carl", "entityType": "person", "observations": ["new here"]},
                ]
            },
        )
        assert upserted == {
            "created": [{"name": "Carl", "entityType": "person", "observations": ["new here"]}],
            "updated": [{"name": "Alice", "addedObservations": ["swims"]}],
        }
        superseded = await call("supersede_observation", {"entityName": "Carl", "old": "new here", "new": "settled in"})
        assert superseded["supersedes"].startswith("mem_")
        assert (await call("declare_relation_type", {"relationType": "lives_in", "functional": True}))["functional"]
        await call("supersede_observation", {"entityName": "Carl", "old": "settled in", "new": "new here"})
        renamed = await call("rename_entity", {"name": "Carl", "newName": "Carla"})
        assert renamed == {"name": "Carla", "entityType": "person", "observations": ["new here"]}
        merged = await call("merge_entities", {"source": "Lutetia", "target": "Paris"})
        assert merged["entity"] == {
            "name": "Paris",
            "entityType": "city",
            "observations": ["capital of France", "city of light"],
        }
        assert merged["movedObservations"] == 1
        deleted = await call("delete_observations", {"deletions": [{"entityName": "Alice", "observations": ["swims"]}]})
        assert deleted["success"] is True
        assert deleted["deleted"] == 1
        deleted = await call("delete_relations", {"relations": [LIVES_IN]})
        assert deleted["success"] is True
        assert deleted["deleted"] == 1
        deleted = await call("delete_entities", {"entityNames": ["Carla"]})
        assert deleted["success"] is True
        assert deleted["deleted"] == 1
        final = await call("read_graph", {})
        assert names(final["entities"]) == ["Alice", "Bob", "Paris"]
        assert final["relations"] == [KNOWS]
        assert final["entities"][0]["observations"] == ["likes tea", "runs"]
        carla = await call("entity_history", {"name": "Carla"})
        assert [v["action"] for v in carla["versions"] if v["kind"] == "entity"] == ["delete", "rename", "create"]

        # compact is for operators only.
        assert "write grant on '*'" in failed(await client.call_tool("compact", {}))

    async with mcp_server.client("root", namespace=namespace, mode=mode) as root:
        assert root.protocol_version == version
        compacted = ok(await root.call_tool("compact", {}))
        called.add("compact")
        assert compacted["success"] is True
        assert isinstance(compacted["freedPages"], int)

    # Every graph tool; the vector and memory tools are called in test_vector_tools.py and
    # test_memory_tools.py.
    assert called == GRAPH_TOOLS


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sdk_tool_errors(mcp_server: McpServer, mode: str) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace, mode=mode) as alice:
        await build_graph(alice)
        missing = await alice.call_tool(
            "add_observations",
            {
                "observations": [
                    {"entityName": "Alice", "contents": ["not applied"]},
                    {"entityName": "Ghost", "contents": ["boo"]},
                ]
            },
        )
        assert failed(missing) == "Entity with name Ghost not found"
        # All or nothing: Alice's valid item was not applied.
        alice_now = ok(await alice.call_tool("get_entity", {"name": "Alice"}))
        assert alice_now["observations"] == ["likes tea"]

        bad_types = await alice.call_tool("create_entities", {"entities": "not a list"})
        assert failed(bad_types).startswith("Input validation error")
        bad_types = await alice.call_tool("get_neighbors", {"name": "Alice", "depth": "deep"})
        assert failed(bad_types).startswith("Input validation error")

        with pytest.raises(MCPError) as unknown:
            await alice.call_tool("no_such_tool", {})
        assert unknown.value.code == -32602
        assert "no_such_tool" in unknown.value.message

    async with mcp_server.client("carol", namespace=namespace, mode=mode) as carol:
        # Carol may read alice's namespace but not write it.
        assert names(ok(await carol.call_tool("read_graph", {}))["entities"]) == ["Alice", "Bob", "Paris", "Lutetia"]
        denied = failed(await carol.call_tool("create_entities", {"entities": [ENTITIES[0] | {"name": "Carol"}]}))
        assert denied == f"This API key has no write grant for namespace {namespace!r}."
        denied = failed(await carol.call_tool("delete_entities", {"entityNames": ["Alice"]}))
        assert denied == f"This API key has no write grant for namespace {namespace!r}."

    async with mcp_server.client("bob", namespace=namespace, mode=mode) as bob:
        denied = failed(await bob.call_tool("create_entities", {"entities": [ENTITIES[0] | {"name": "Bobby"}]}))
        assert denied == f"This API key has no write grant for namespace {namespace!r}."
        denied = failed(await bob.call_tool("read_graph", {}))
        assert denied == f"This API key has no read grant for namespace {namespace!r}."

    async with mcp_server.client("alice", namespace=namespace, mode=mode) as alice:
        graph = ok(await alice.call_tool("read_graph", {}))
        assert names(graph["entities"]) == ["Alice", "Bob", "Paris", "Lutetia"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_tool_categories(mcp_server: McpServer, raw: Raw, mode: str) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace, tools="kg-read", mode=mode) as reader:
        listed = await all_tool_names(reader)
        assert len(listed) == 18
        assert set(listed) == READ_TOOLS
        assert ok(await reader.call_tool("graph_stats", {}))["entities"] == 0
        with pytest.raises(MCPError) as unknown:
            await reader.call_tool("create_entities", {"entities": ENTITIES})
        assert unknown.value.code == -32602
        assert "Unknown tool" in unknown.value.message

    # An unknown category is a bad request, for a handshake and for a stateless request alike.
    bogus = mcp_server.endpoint(tools="bogus")
    error = error_of(raw.post(initialize_message(), url=bogus), 400, -32600)
    assert "bogus" in error["message"]
    modern = raw.post(
        modern_message("tools/list"), persona=None, headers=modern_headers(mcp_server, "tools/list"), url=bogus
    )
    error_of(modern, 400, -32600)


@pytest.mark.anyio
async def test_keys_and_namespaces_are_isolated(mcp_server: McpServer) -> None:
    alice_ns = mcp_server.namespace("alice")
    bob_ns = mcp_server.namespace("bob")
    async with mcp_server.client("alice", namespace=alice_ns) as alice:
        await build_graph(alice)

    async with mcp_server.client("bob", namespace=alice_ns) as intruder:
        for name, arguments in READ_CALLS.items():
            text = failed(await intruder.call_tool(name, arguments))
            assert text == f"This API key has no read grant for namespace {alice_ns!r}.", name
        # Nor read it as a resource.
        with pytest.raises(MCPError):
            await intruder.read_resource(GRAPH_URI)
    async with mcp_server.client("bob", namespace=alice_ns, mode="legacy") as intruder:
        # Nor watch it.
        with pytest.warns(MCPDeprecationWarning), pytest.raises(MCPError):
            await intruder.subscribe_resource(GRAPH_URI)

    async with mcp_server.client("bob", namespace=bob_ns) as bob:
        # The same names in bob's own namespace are new entities, and bob sees only his.
        mine = [{"name": "Alice", "entityType": "person", "observations": ["bob's note"]}]
        assert ok(await bob.call_tool("create_entities", {"entities": mine})) == {"entities": mine, "skipped": []}
        graph = ok(await bob.call_tool("read_graph", {}))
        assert graph["entities"] == mine
        assert graph["relations"] == []

    async with mcp_server.client("alice", namespace=alice_ns) as alice:
        entity = ok(await alice.call_tool("get_entity", {"name": "Alice"}))
        assert entity["observations"] == ["likes tea"]
        assert ok(await alice.call_tool("graph_stats", {}))["entities"] == 4


# --- resources -----------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_graph_resource(mcp_server: McpServer, mode: str) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace, mode=mode) as client:
        await build_graph(client)
        listed = await client.list_resources()
        assert [str(resource.uri) for resource in listed.resources] == [GRAPH_URI]
        assert listed.resources[0].mime_type == "application/json"
        read = await client.read_resource(GRAPH_URI)
        (contents,) = read.contents
        assert isinstance(contents, types.TextResourceContents)
        graph = json.loads(contents.text)
        assert names(graph["entities"]) == ["Alice", "Bob", "Paris", "Lutetia"]
        assert graph["relations"] == [KNOWS, LIVES_IN]
        with pytest.raises(MCPError):
            await client.read_resource("memory://elsewhere")


@asynccontextmanager
async def subscriber(
    server: McpServer, namespace: str
) -> AsyncIterator[tuple[Client, list[types.ResourceUpdatedNotification]]]:
    """A legacy-mode client subscribed to the graph resource whose GET stream is open."""
    received: list[types.ResourceUpdatedNotification] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            received.append(message)

    async with recording_client(server, namespace=namespace, mode="legacy", message_handler=on_message) as (
        client,
        responses,
    ):
        # The stream is live once the GET's response headers arrived (the server joins the
        # session's group before it answers).
        await wait_for(lambda: any(r.request.method == "GET" and r.status_code == 200 for r in responses))
        with pytest.warns(MCPDeprecationWarning):
            await client.subscribe_resource(GRAPH_URI)
        yield client, received


@pytest.mark.anyio
async def test_resource_subscription_notifies_the_session_stream(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with (
        subscriber(mcp_server, namespace) as (watcher, watched),
        subscriber(mcp_server, namespace) as (_, control),
        mcp_server.client("alice", namespace=namespace) as writer,
    ):
        await build_graph(writer)
        await wait_for(lambda: watched and control)
        assert all(str(note.params.uri) == GRAPH_URI for note in watched)

        with pytest.warns(MCPDeprecationWarning):
            await watcher.unsubscribe_resource(GRAPH_URI)
        watched.clear()
        control.clear()
        ok(await writer.call_tool("add_observations", {"observations": [{"entityName": "Bob", "contents": ["new"]}]}))
        # The still-subscribed control session hears about the write; the unsubscribed one does not.
        await wait_for(lambda: control)
        await anyio.sleep(0.3)
        assert watched == []


# --- raw HTTP: sessions and status codes ---------------------------------------------------------


@pytest.mark.anyio
async def test_modern_clients_listen_for_resource_updates(mcp_server: McpServer) -> None:
    """2026-07-28 `subscriptions/listen` with the SDK: acknowledged, then every write in the
    namespace arrives as a ResourceUpdated event; another namespace's writes do not."""
    from mcp.shared.subscriptions import ResourceUpdated

    namespace = mcp_server.namespace("alice")
    elsewhere = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as listener:
        assert listener.protocol_version == "2026-07-28"
        async with listener.listen(resource_subscriptions=[GRAPH_URI], tools_list_changed=True) as subscription:
            assert subscription.honored.resource_subscriptions == [GRAPH_URI]
            assert subscription.honored.tools_list_changed is True
            assert subscription.honored.prompts_list_changed is None
            for target in (elsewhere, namespace):
                async with mcp_server.client("alice", namespace=target) as writer:
                    await writer.call_tool(
                        "create_entities", {"entities": [{"name": "Heard", "entityType": "t", "observations": []}]}
                    )
            with anyio.fail_after(5):
                event = await subscription.__anext__()
            assert event == ResourceUpdated(uri=GRAPH_URI)
    # bob may not listen to alice's namespace; unknown resources are refused.
    async with mcp_server.client("bob", namespace=namespace) as outsider:
        with pytest.raises(MCPError):
            async with outsider.listen(resource_subscriptions=[GRAPH_URI]):
                pass
        with pytest.raises(MCPError):
            async with outsider.listen(resource_subscriptions=["memory://nope"]):
                pass


def test_initialize_notification_and_session_rules(mcp_server: McpServer, raw: Raw) -> None:
    response = raw.post(initialize_message())
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    session = response.headers["MCP-Session-Id"]
    assert len(session) >= 32
    assert all(0x21 <= ord(char) <= 0x7E for char in session)
    result = response.json()["result"]
    assert response.json()["id"] == 1
    assert result["protocolVersion"] == "2025-11-25"
    assert result["serverInfo"]["name"] == "memoryhub"
    assert result["capabilities"]["resources"]["subscribe"] is True

    initialized = raw.post(rpc("notifications/initialized", request_id=None), session=session, version="2025-11-25")
    assert initialized.status_code == 202
    assert initialized.content == b""

    listed = raw.post(rpc("tools/list", request_id=2), session=session, version="2025-11-25")
    assert listed.status_code == 200
    assert len(listed.json()["result"]["tools"]) == 10

    # No session header: 400; unknown id: 404; alice's id with bob's key: 404.
    error_of(raw.post(rpc("tools/list"), version="2025-11-25"), 400, -32600)
    error_of(raw.post(rpc("tools/list"), session="x" * 43, version="2025-11-25"), 404, -32600)
    error_of(raw.post(rpc("tools/list"), persona="bob", session=session, version="2025-11-25"), 404, -32600)
    stream = raw.http.get(mcp_server.url, headers=raw.stream_headers(session, persona="bob"))
    assert stream.status_code == 404
    # An unsupported MCP-Protocol-Version is a bad request.
    error_of(raw.post(rpc("tools/list"), session=session, version="1999-01-01"), 400, -32600)
    # Still alice's and alive.
    assert raw.post(rpc("ping", request_id=3), session=session, version="2025-11-25").json()["result"] == {}

    # DELETE ends it; then the id is 404 everywhere.
    headers = {**mcp_server.headers("alice"), "MCP-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
    assert raw.http.request("DELETE", mcp_server.url, headers=headers).status_code == 204
    error_of(raw.post(rpc("ping"), session=session, version="2025-11-25"), 404, -32600)
    assert raw.http.get(mcp_server.url, headers=raw.stream_headers(session)).status_code == 404
    assert raw.http.request("DELETE", mcp_server.url, headers=headers).status_code == 404

    # A client must accept JSON or SSE answers.
    error_of(raw.post(initialize_message(), headers={"Accept": "text/html"}), 406, -32600)


def test_lone_surrogates_are_echoed_as_valid_json(raw: Raw) -> None:
    """`"\\ud800"` is valid JSON but cannot be encoded as UTF-8; echoed back (an unknown tool's
    name, a request id) it must come out escaped, not crash the response."""
    session = raw.open_session()
    call = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\\ud800"}}'
    response = raw.post(call, session=session, version="2025-11-25")
    assert response.status_code == 200
    assert response.json()["error"] == {"code": -32602, "message": "Unknown tool: \ud800"}
    streamed = raw.post(call, session=session, version="2025-11-25", headers={"Accept": "text/event-stream"})
    assert streamed.status_code == 200
    assert json.loads(sse_events(streamed.text)[-1]["data"])["error"]["message"] == "Unknown tool: \ud800"
    ping = raw.post(b'{"jsonrpc":"2.0","id":"\\udfff","method":"ping"}', session=session, version="2025-11-25")
    assert ping.json() == {"jsonrpc": "2.0", "id": "\udfff", "result": {}}


def test_unknown_protocol_version_gets_the_latest(raw: Raw) -> None:
    response = raw.post(initialize_message("2099-01-01"))
    assert response.status_code == 200
    assert response.json()["result"]["protocolVersion"] == "2025-11-25"
    response = raw.post(initialize_message("2025-06-18"))
    assert response.json()["result"]["protocolVersion"] == "2025-06-18"


def test_origin_checks(mcp_server: McpServer, raw: Raw) -> None:
    evil = {"Origin": "http://evil.example"}
    error_of(raw.post(initialize_message(), headers=evil), 403, -32600)
    session = raw.open_session()
    get = raw.http.get(mcp_server.url, headers={**raw.stream_headers(session), **evil})
    error_of(get, 403, -32600)
    sse = raw.http.get(
        f"{mcp_server.base_url}/sse", headers={**mcp_server.headers("alice"), "Accept": "text/event-stream", **evil}
    )
    error_of(sse, 403, -32600)
    messages = raw.post(rpc("ping"), headers=evil, url=f"{mcp_server.base_url}/messages?sessionId=whatever")
    error_of(messages, 403, -32600)

    # Loopback origins (a local web app) and the server's own origin are fine.
    for origin in ("http://localhost:3000", mcp_server.base_url):
        response = raw.post(initialize_message(), headers={"Origin": origin})
        assert response.status_code == 200, (origin, response.text)
        assert response.headers["MCP-Session-Id"]


def test_cors_lets_allowed_browser_origins_read_the_answer(mcp_server: McpServer, raw: Raw) -> None:
    origin = {"Origin": "http://localhost:5173"}
    preflight = raw.http.options(
        mcp_server.url,
        headers={**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert set(preflight.headers["Access-Control-Allow-Methods"].split(", ")) == {"POST", "GET", "DELETE"}
    allowed = {name.strip().lower() for name in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"x-api-key", "mcp-session-id", "mcp-protocol-version", "last-event-id"} <= allowed
    answer = raw.post(initialize_message(), headers=origin)
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert "MCP-Session-Id" in answer.headers["Access-Control-Expose-Headers"]
    # A refused origin gets no preflight, and clients without an Origin no CORS headers.
    refused = raw.http.options(mcp_server.url, headers={"Origin": "http://evil.example"})
    error_of(refused, 403, -32600)
    assert "Access-Control-Allow-Origin" not in raw.post(initialize_message()).headers


def test_authentication_required(mcp_server: McpServer, raw: Raw) -> None:
    for response in (
        raw.post(initialize_message(), persona=None),
        raw.post(initialize_message(), persona=None, headers={"X-API-Key": "mh_not_a_real_key"}),
        raw.http.get(mcp_server.url, headers={"Accept": "text/event-stream"}),
    ):
        error = error_of(response, 401, -32600)
        assert error["message"]
        assert response.json()["id"] is None
        assert response.headers["WWW-Authenticate"]


def test_parse_errors_and_bad_requests(mcp_server: McpServer, raw: Raw) -> None:
    error_of(raw.post(b'{"jsonrpc": "2.0", "id": 1, "method": '), 400, -32700)
    error_of(raw.post(b"\xff\xfe"), 400, -32700)
    session = raw.open_session()
    error_of(raw.post({"jsonrpc": "1.0", "id": 1, "method": "ping"}, session=session), 400, -32600)
    response = raw.http.request("PUT", mcp_server.url, headers=mcp_server.headers("alice"))
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


def test_body_over_the_limit(mcp_server: McpServer, raw: Raw) -> None:
    limit = 16 * 1024 * 1024
    body = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"' + b"x" * limit + b'"}}'
    try:
        response = raw.post(body)
    except httpx2.TransportError:
        pytest.fail("the server dropped the connection instead of answering 413")
    error = error_of(response, 413, -32600)
    assert str(limit) in error["message"]


def test_batches_only_in_2025_03_26(raw: Raw) -> None:
    batch = [rpc("ping", request_id=1), rpc("tools/list", request_id=2)]
    modern_session = raw.open_session()
    error = error_of(raw.post(batch, session=modern_session, version="2025-11-25"), 400, -32600)
    assert "batch" in error["message"]

    old_session = raw.open_session(version="2025-03-26")
    response = raw.post(
        [*batch, rpc("notifications/initialized", request_id=None), {"jsonrpc": "2.0"}], session=old_session
    )
    assert response.status_code == 200
    replies = response.json()
    assert isinstance(replies, list)
    by_id = {reply["id"]: reply for reply in replies}
    assert by_id[1]["result"] == {}
    assert len(by_id[2]["result"]["tools"]) == 10
    assert by_id[None]["error"]["code"] == -32600  # the invalid member
    assert len(replies) == 3
    # The same with the version header the session negotiated.
    assert len(raw.post(batch, session=old_session, version="2025-03-26").json()) == 2
    # Only notifications: nothing to answer. Empty: invalid.
    only_notes = raw.post([rpc("notifications/initialized", request_id=None)], session=old_session)
    assert only_notes.status_code == 202
    assert only_notes.content == b""
    error_of(raw.post([], session=old_session), 400, -32600)


# --- raw HTTP: SSE answers, the GET stream and resumption ----------------------------------------


def test_sse_answer_and_resumption_of_a_post_stream(mcp_server: McpServer, raw: Raw) -> None:
    namespace = mcp_server.namespace("alice")
    session = raw.open_session(namespace=namespace)
    response = raw.post(
        rpc("tools/call", {"name": "graph_stats", "arguments": {}}, request_id=7),
        session=session,
        version="2025-11-25",
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["X-Accel-Buffering"] == "no"
    priming, answer = sse_events(response.text)
    assert priming["data"] == ""
    assert priming["id"]
    assert int(priming["retry"]) > 0
    assert answer.get("event", "message") == "message"
    assert answer["id"] != priming["id"]
    reply = json.loads(answer["data"])
    assert reply["id"] == 7
    assert reply["result"]["structuredContent"]["entities"] == 0

    # A client that lost the stream after the priming event gets the response by GET.
    resumed = raw.http.get(mcp_server.url, headers=raw.stream_headers(session, last_event_id=priming["id"]))
    assert resumed.status_code == 200
    assert resumed.headers["Content-Type"].startswith("text/event-stream")
    (replayed,) = sse_events(resumed.text)
    assert replayed["id"] == answer["id"]
    assert json.loads(replayed["data"]) == reply

    # Nothing after the last event; an id that is not this session's is refused.
    after = raw.http.get(mcp_server.url, headers=raw.stream_headers(session, last_event_id=answer["id"]))
    assert sse_events(after.text) == []
    bogus = raw.http.get(mcp_server.url, headers=raw.stream_headers(session, last_event_id="nonsense"))
    assert bogus.status_code == 400
    other = raw.open_session()
    foreign = raw.http.get(mcp_server.url, headers=raw.stream_headers(other, last_event_id=priming["id"]))
    assert sse_events(foreign.text) == []


def test_notifications_a_request_causes_come_with_its_answer_without_a_get_stream(
    mcp_server: McpServer, raw: Raw
) -> None:
    """A subscribed session with no GET stream open still hears about its own write: the answer
    turns into an SSE stream with the notification before the response."""
    namespace = mcp_server.namespace("alice")
    session = raw.open_session(namespace=namespace)
    subscribed = raw.post(
        rpc("resources/subscribe", {"uri": "memory://knowledge-graph"}), session=session, version="2025-11-25"
    )
    assert subscribed.status_code == 200
    assert subscribed.headers["Content-Type"].startswith("application/json")
    arguments = {"entities": [{"name": "Loud", "entityType": "thing", "observations": []}]}
    response = raw.post(
        rpc("tools/call", {"name": "create_entities", "arguments": arguments}, request_id=3),
        session=session,
        version="2025-11-25",
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    priming, notification, answer = sse_events(response.text)
    assert priming["data"] == ""
    assert json.loads(notification["data"]) == {
        "jsonrpc": "2.0",
        "method": "notifications/resources/updated",
        "params": {"uri": "memory://knowledge-graph"},
    }
    assert json.loads(answer["data"])["id"] == 3
    # A read causes nothing: a plain JSON answer.
    read = raw.post(rpc("tools/call", {"name": "graph_stats", "arguments": {}}), session=session, version="2025-11-25")
    assert read.headers["Content-Type"].startswith("application/json")


def test_sse_answer_to_initialize(raw: Raw) -> None:
    response = raw.post(initialize_message(), headers={"Accept": "text/event-stream"})
    assert response.status_code == 200
    assert response.headers["MCP-Session-Id"]
    events = sse_events(response.text)
    assert events[0]["data"] == ""
    assert json.loads(events[-1]["data"])["result"]["protocolVersion"] == "2025-11-25"


def test_get_stream_delivers_and_replays_notifications(mcp_server: McpServer, raw: Raw) -> None:
    namespace = mcp_server.namespace("alice")
    session = raw.open_session(namespace=namespace)
    subscribed = raw.post(rpc("resources/subscribe", {"uri": GRAPH_URI}), session=session, version="2025-11-25")
    assert subscribed.json()["result"] == {}

    with raw.http.stream("GET", mcp_server.url, headers=raw.stream_headers(session)) as stream:
        assert stream.status_code == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        reader = EventReader(stream)
        priming = reader.next()
        assert priming["data"] == ""
        assert priming["id"]
        assert "retry" in priming
        raw.write(namespace, "First")
        event = reader.next()
        assert event["id"]
        assert event["id"] != priming["id"]
        assert json.loads(event["data"]) == {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": GRAPH_URI},
        }
        last_id = event["id"]

    # Missed while disconnected, replayed on reconnection with Last-Event-ID.
    raw.write(namespace, "Second")
    with raw.http.stream("GET", mcp_server.url, headers=raw.stream_headers(session, last_event_id=last_id)) as stream:
        assert stream.status_code == 200
        reader = EventReader(stream)
        missed = reader.next()
        assert missed["id"] not in (last_id, priming["id"])
        assert json.loads(missed["data"])["method"] == "notifications/resources/updated"
        # And the resumed stream is live.
        raw.write(namespace, "Third")
        live = reader.next()
        assert json.loads(live["data"])["method"] == "notifications/resources/updated"
        assert live["id"] not in (missed["id"], last_id)


def test_one_get_stream_per_session(mcp_server: McpServer, raw: Raw) -> None:
    """A second GET stream takes over from the first (a message goes to one stream only), and
    DELETE ends the live stream."""
    namespace = mcp_server.namespace("alice")
    session = raw.open_session(namespace=namespace)
    raw.post(rpc("resources/subscribe", {"uri": GRAPH_URI}), session=session, version="2025-11-25")
    with raw.http.stream("GET", mcp_server.url, headers=raw.stream_headers(session)) as first:
        first_reader = EventReader(first)
        first_reader.next()
        with raw.http.stream("GET", mcp_server.url, headers=raw.stream_headers(session)) as second:
            second_reader = EventReader(second)
            second_reader.next()
            with pytest.raises(AssertionError, match="the stream ended"):
                first_reader.next()
            raw.write(namespace, "Once")
            assert json.loads(second_reader.next()["data"])["method"] == "notifications/resources/updated"

            headers = {**mcp_server.headers("alice"), "MCP-Session-Id": session}
            assert raw.http.request("DELETE", mcp_server.url, headers=headers).status_code == 204
            with pytest.raises(AssertionError, match="the stream ended"):
                second_reader.next()


def test_get_stream_rules(mcp_server: McpServer, raw: Raw) -> None:
    session = raw.open_session()
    headers = raw.stream_headers(session)
    error_of(raw.http.get(mcp_server.url, headers={**headers, "Accept": "application/json"}), 406, -32600)
    error_of(raw.http.get(mcp_server.url, headers={**headers, "MCP-Protocol-Version": "1999-01-01"}), 400, -32600)
    del headers["MCP-Session-Id"]
    error_of(raw.http.get(mcp_server.url, headers=headers), 400, -32600)


# --- raw HTTP: stateless 2026-07-28 requests -----------------------------------------------------


def test_stateless_request(mcp_server: McpServer, raw: Raw) -> None:
    namespace = mcp_server.namespace("alice")
    raw.write(namespace, "Solo")
    response = raw.post(
        modern_message("tools/call", {"name": "read_graph", "arguments": {}}),
        persona=None,
        headers=modern_headers(mcp_server, "tools/call", "read_graph"),
        url=mcp_server.endpoint(namespace=namespace),
    )
    assert response.status_code == 200, response.text
    assert "MCP-Session-Id" not in response.headers
    result = response.json()["result"]
    assert result["resultType"] == "complete"
    assert result["_meta"][SERVER_INFO_META]["name"] == "memoryhub"
    assert names(result["structuredContent"]["entities"]) == ["Solo"]

    discovered = raw.post(
        modern_message("server/discover"), persona=None, headers=modern_headers(mcp_server, "server/discover")
    )
    assert discovered.status_code == 200
    discover = discovered.json()["result"]
    assert discover["supportedVersions"] == ["2026-07-28"]
    assert discover["resultType"] == "complete"
    assert "tools" in discover["capabilities"]

    listed = raw.post(modern_message("tools/list"), persona=None, headers=modern_headers(mcp_server, "tools/list"))
    assert listed.json()["result"]["nextCursor"]
    assert listed.json()["result"]["ttlMs"] == 0

    # resources/read names its uri in Mcp-Name; non-ASCII-safe values may come base64-wrapped.
    encoded = "=?base64?" + base64.b64encode(GRAPH_URI.encode()).decode() + "?="
    for name_header in (GRAPH_URI, encoded):
        read = raw.post(
            modern_message("resources/read", {"uri": GRAPH_URI}),
            persona=None,
            headers=modern_headers(mcp_server, "resources/read", name_header),
            url=mcp_server.endpoint(namespace=namespace),
        )
        assert read.status_code == 200, read.text
        (contents,) = read.json()["result"]["contents"]
        assert names(json.loads(contents["text"])["entities"]) == ["Solo"]
    missing = raw.post(
        modern_message("resources/read", {"uri": "memory://elsewhere"}),
        persona=None,
        headers=modern_headers(mcp_server, "resources/read", "memory://elsewhere"),
    )
    error_of(missing, 400, -32602)

    # An SSE answer, when that is all the client accepts.
    streamed = raw.post(
        modern_message("tools/call", {"name": "graph_stats", "arguments": {}}),
        persona=None,
        headers={**modern_headers(mcp_server, "tools/call", "graph_stats"), "Accept": "text/event-stream"},
        url=mcp_server.endpoint(namespace=namespace),
    )
    assert streamed.headers["Content-Type"].startswith("text/event-stream")
    answer = json.loads(sse_events(streamed.text)[-1]["data"])
    assert answer["result"]["structuredContent"]["entities"] == 1

    # A notification is accepted with no body.
    note = raw.post(
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": modern_message("x")["params"]},
        persona=None,
        headers=modern_headers(mcp_server, "notifications/cancelled"),
    )
    assert note.status_code == 202
    assert note.content == b""


def test_stateless_request_errors(mcp_server: McpServer, raw: Raw) -> None:
    call = modern_message("tools/call", {"name": "read_graph", "arguments": {}})
    # Routing headers must agree with the body.
    mismatch = raw.post(call, persona=None, headers=modern_headers(mcp_server, "tools/list", "read_graph"))
    error_of(mismatch, 400, -32020)
    mismatch = raw.post(call, persona=None, headers=modern_headers(mcp_server, "tools/call", "graph_stats"))
    error_of(mismatch, 400, -32020)
    mismatch = raw.post(
        call, persona=None, headers=modern_headers(mcp_server, "tools/call", "read_graph", version="2025-11-25")
    )
    error_of(mismatch, 400, -32020)

    unsupported = raw.post(
        modern_message("tools/list", version="2030-01-01"),
        persona=None,
        headers=modern_headers(mcp_server, "tools/list", version="2030-01-01"),
    )
    error = error_of(unsupported, 400, -32022)
    assert error["data"]["supported"] == ["2026-07-28"]
    assert error["data"]["requested"] == "2030-01-01"

    unknown = raw.post(
        modern_message("tools/frobnicate"), persona=None, headers=modern_headers(mcp_server, "tools/frobnicate")
    )
    error_of(unknown, 404, -32601)

    # No initialize in this era, and no GET stream.
    no_key = raw.post(call, persona=None, headers={"Accept": ACCEPT, "MCP-Protocol-Version": "2026-07-28"})
    error_of(no_key, 401, -32600)
    get = raw.http.get(
        mcp_server.url, headers=modern_headers(mcp_server, "tools/list") | {"Accept": "text/event-stream"}
    )
    assert get.status_code == 405
