"""`manage.py mcp_stdio`: MemoryHub as a local MCP server on stdin/stdout.

Driven by the official SDK's stdio client (it starts the command as a subprocess) and, for the
framing rules, by raw pipes: only MCP messages on stdout, one per line, errors for bad lines.
The command runs against the `mcp_server` fixture's database and keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPDeprecationWarning

from mcp_endpoint.lines import OVERSIZE, LineReader
from tests.mcp_endpoint.conftest import ALL_TOOLS, ROOT, McpServer, query, running_servers

REDIS_URL = os.environ.get("MEMORYHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")

GRAPH = "memory://knowledge-graph"
HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")


def params(server: McpServer, *args: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["manage.py", "mcp_stdio", *args],
        env={**server.env, **(env or {})},
        cwd=ROOT,
    )


@asynccontextmanager
async def stdio_client(server: McpServer, *args: str, **options: Any) -> AsyncIterator[Client]:
    async with Client(params(server, *args), mode="legacy", **options) as client:
        yield client


async def all_tools(client: Client) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor = None
    while True:
        page = await client.list_tools(cursor=cursor, cache_mode="bypass")
        tools.extend(page.tools)
        if page.next_cursor is None:
            return tools
        cursor = page.next_cursor


async def subscribe(client: Client) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MCPDeprecationWarning)  # resources/subscribe is 2025-era
        await client.subscribe_resource(GRAPH)


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def run_raw(server: McpServer, lines: list[str], *args: str, env: dict[str, str] | None = None):
    """Run the command on raw pipes: write `lines`, close stdin, collect everything."""
    return subprocess.run(
        [sys.executable, "manage.py", "mcp_stdio", *args],
        cwd=ROOT,
        env={**server.env, **(env or {})},
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=60,
    )


def initialize(version: str = "2025-11-25", request_id: int = 0) -> str:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
        }
    )


INITIALIZED = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})


def request(request_id: int, method: str, params: dict[str, Any] | None = None) -> str:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message)


def replies(stdout: str) -> list[Any]:
    """Every stdout line, decoded; fails unless each is a JSON-RPC message (or a batch of them)."""
    decoded = []
    for line in stdout.splitlines():
        value = json.loads(line)
        for message in value if isinstance(value, list) else [value]:
            assert isinstance(message, dict), line
            assert message["jsonrpc"] == "2.0", line
            assert "id" in message or "method" in message, line
        decoded.append(value)
    return decoded


def session_rows(server: McpServer, namespace: str) -> list[tuple[Any, ...]]:
    """The server's session rows (on PostgreSQL the flags are booleans, equal to SQLite's 1 and 0)."""
    return query(
        server.env,
        "SELECT transport, key_id IS NULL, subscribed, ended_at IS NULL, protocol_version"
        " FROM mcp_endpoint_mcpsession WHERE namespace = ?",
        (namespace,),
    )


# --- the SDK client ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_initialize_and_tool_lists(mcp_server):
    namespace = mcp_server.namespace()
    async with stdio_client(mcp_server, "--namespace", namespace) as client:
        assert client.server_info is not None
        assert client.server_info.name == "memoryhub"
        assert client.protocol_version in HANDSHAKE_VERSIONS
        assert client.server_capabilities.resources is not None
        assert client.server_capabilities.resources.subscribe is True
        tools = await all_tools(client)
        assert len(tools) == len(ALL_TOOLS)
    async with stdio_client(mcp_server, "--namespace", namespace, "--tools", "kg-read") as client:
        read_tools = await all_tools(client)
        assert len(read_tools) == 18
        assert all(tool.annotations is not None and tool.annotations.read_only_hint for tool in read_tools)


@pytest.mark.anyio
async def test_official_tools_round_trip(mcp_server):
    namespace = mcp_server.namespace("root")
    async with stdio_client(mcp_server, "--namespace", namespace) as client:
        created = await client.call_tool(
            "create_entities",
            {
                "entities": [
                    {"name": "Ada", "entityType": "person", "observations": ["wrote the first program"]},
                    {"name": "Engine", "entityType": "machine", "observations": ["made of brass gears"]},
                ]
            },
        )
        assert not created.is_error
        assert [e["name"] for e in created.structured_content["entities"]] == ["Ada", "Engine"]
        # The text block carries the bare array, as the official server's does.
        assert [e["name"] for e in json.loads(text(created))] == ["Ada", "Engine"]

        related = await client.call_tool(
            "create_relations", {"relations": [{"from": "Ada", "to": "Engine", "relationType": "programmed"}]}
        )
        assert json.loads(text(related)) == [{"from": "Ada", "to": "Engine", "relationType": "programmed"}]

        added = await client.call_tool(
            "add_observations", {"observations": [{"entityName": "Ada", "contents": ["was a countess"]}]}
        )
        assert json.loads(text(added)) == [{"entityName": "Ada", "addedObservations": ["was a countess"]}]

        graph = await client.call_tool("read_graph", {})
        assert {e["name"] for e in graph.structured_content["entities"]} == {"Ada", "Engine"}
        assert graph.structured_content["relations"] == [{"from": "Ada", "to": "Engine", "relationType": "programmed"}]
        assert graph.structured_content["hasMore"] is False

        found = await client.call_tool("search_nodes", {"query": "brass"})
        assert [e["name"] for e in found.structured_content["entities"]] == ["Engine"]

        opened = await client.call_tool("open_nodes", {"names": ["Ada"]})
        assert opened.structured_content["entities"] == [
            {"name": "Ada", "entityType": "person", "observations": ["wrote the first program", "was a countess"]}
        ]

        for tool, arguments in (
            ("delete_observations", {"deletions": [{"entityName": "Ada", "observations": ["was a countess"]}]}),
            ("delete_relations", {"relations": [{"from": "Ada", "to": "Engine", "relationType": "programmed"}]}),
            ("delete_entities", {"entityNames": ["Engine"]}),
        ):
            deleted = await client.call_tool(tool, arguments)
            assert not deleted.is_error, text(deleted)
            assert deleted.structured_content["success"] is True
            assert deleted.structured_content["deleted"] == 1

        graph = await client.call_tool("read_graph", {})
        assert graph.structured_content["entities"] == [
            {"name": "Ada", "entityType": "person", "observations": ["wrote the first program"]}
        ]
        assert graph.structured_content["relations"] == []

        missing = await client.call_tool(
            "add_observations", {"observations": [{"entityName": "Nobody", "contents": ["x"]}]}
        )
        assert missing.is_error
        assert text(missing) == "Entity with name Nobody not found"


@pytest.mark.anyio
async def test_a_key_brings_its_grants(mcp_server):
    alices = mcp_server.namespace("alice")
    async with stdio_client(mcp_server, "--key", mcp_server.keys["alice"], "--namespace", alices) as client:
        made = await client.call_tool(
            "create_entities", {"entities": [{"name": "Secret", "entityType": "note", "observations": ["alice's"]}]}
        )
        assert not made.is_error
    # Bob's key in alice's namespace: every tool call is refused by his grants.
    async with stdio_client(mcp_server, "--key", mcp_server.keys["bob"], "--namespace", alices) as client:
        refused = await client.call_tool("read_graph", {})
        assert refused.is_error
        assert "no read grant" in text(refused)
        assert alices in text(refused)
    # The key from the environment, in the key's default namespace (bob's): none of alice's data.
    env = {"MEMORYHUB_API_KEY": mcp_server.keys["bob"]}
    async with Client(params(mcp_server, env=env), mode="legacy") as client:
        found = await client.call_tool("search_nodes", {"query": "Secret"})
        assert not found.is_error
        assert found.structured_content["entities"] == []


@pytest.mark.anyio
async def test_subscriber_is_notified_of_its_own_writes(mcp_server):
    namespace = mcp_server.namespace("root")
    updates: list[str] = []
    arrived = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            arrived.set()

    async with stdio_client(mcp_server, "--namespace", namespace, message_handler=on_message) as client:
        await subscribe(client)
        version = client.protocol_version
        assert session_rows(mcp_server, namespace) == [("stdio", 1, 1, 1, version)]
        await client.call_tool("create_entities", {"entities": [{"name": "N", "entityType": "t", "observations": []}]})
        with anyio.fail_after(10):
            await arrived.wait()
        assert updates == [GRAPH]
    # Closing stdin ends the session (and its subscription).
    with anyio.fail_after(10):
        while session_rows(mcp_server, namespace)[0][3]:
            await anyio.sleep(0.05)
    assert session_rows(mcp_server, namespace) == [("stdio", 1, 0, 0, version)]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpServer]:
    """A server whose channel layer (and cache) is the real Redis: the set-up in which
    notifications cross processes. Fails, not skips, when Redis is not running."""
    with running_servers(tmp_path_factory.mktemp("redis-server"), MEMORYHUB_REDIS_URL=REDIS_URL) as (server,):
        yield server


async def wait_for_update(arrived: anyio.Event) -> bool:
    with anyio.move_on_after(5):
        await arrived.wait()
    return arrived.is_set()


def updates_into(arrived: anyio.Event) -> Any:
    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            arrived.set()

    return on_message


@pytest.mark.anyio
async def test_http_write_reaches_a_stdio_subscriber_across_processes(redis_server: McpServer) -> None:
    namespace = redis_server.namespace("alice")
    arrived = anyio.Event()
    async with stdio_client(
        redis_server,
        "--key",
        redis_server.keys["alice"],
        "--namespace",
        namespace,
        message_handler=updates_into(arrived),
    ) as client:
        await subscribe(client)
        async with redis_server.client("alice", namespace=namespace) as http:
            made = await http.call_tool(
                "create_entities", {"entities": [{"name": "From HTTP", "entityType": "t", "observations": []}]}
            )
            assert not made.is_error
        assert await wait_for_update(arrived), "no notifications/resources/updated reached the stdio client"


@pytest.mark.anyio
async def test_stdio_write_reaches_an_http_subscriber_across_processes(redis_server: McpServer) -> None:
    namespace = redis_server.namespace("alice")
    arrived = anyio.Event()
    async with redis_server.client(
        "alice", namespace=namespace, mode="legacy", message_handler=updates_into(arrived)
    ) as http:
        await subscribe(http)
        async with stdio_client(redis_server, "--key", redis_server.keys["alice"], "--namespace", namespace) as client:
            made = await client.call_tool(
                "create_entities", {"entities": [{"name": "From stdio", "entityType": "t", "observations": []}]}
            )
            assert not made.is_error
        assert await wait_for_update(arrived), "no notifications/resources/updated reached the HTTP session's stream"


# --- raw pipes: framing and stdout purity --------------------------------------------------------


def test_stdout_carries_only_mcp_messages(mcp_server):
    namespace = mcp_server.namespace("root")
    done = run_raw(
        mcp_server,
        [initialize(), INITIALIZED, request(1, "tools/list"), "{this is not json", request(2, "ping")],
        "--namespace",
        namespace,
        # Chatty logging and every warning: all of it must go to stderr.
        env={"MEMORYHUB_LOG_LEVEL": "debug", "PYTHONWARNINGS": "always"},
    )
    assert done.returncode == 0, done.stderr
    answers = replies(done.stdout)
    assert [answer["id"] for answer in answers] == [0, 1, None, 2]
    assert answers[0]["result"]["serverInfo"]["name"] == "memoryhub"
    assert len(answers[1]["result"]["tools"]) == 10  # first page (MEMORYHUB_MCP_PAGE_SIZE=10)
    assert answers[2]["error"]["code"] == -32700
    assert answers[3]["result"] == {}
    assert "MemoryHub database:" in done.stderr


def test_framing_errors_and_batches(mcp_server):
    namespace = mcp_server.namespace("root")
    oversized = request(9, "ping", {"padding": "x" * 5000})
    done = run_raw(
        mcp_server,
        [
            initialize("2025-03-26"),
            INITIALIZED,
            "",
            "   ",
            oversized,
            "x" * 300_000,  # longer than a read: reported before its end arrives, then skipped
            request(1, "ping") + "\r",
            '{"jsonrpc": "2.0", "id": 2}',
            "[1, 2]",
            "[" + request(3, "ping") + "," + INITIALIZED + "," + initialize("2025-03-26", 4) + "]",
            "[]",
            request(5, "no/such/method"),
        ],
        "--namespace",
        namespace,
        env={"MEMORYHUB_MAX_REQUEST_BYTES": "2048"},
    )
    assert done.returncode == 0, done.stderr
    answers = replies(done.stdout)
    assert answers[0]["id"] == 0
    too_large = answers[1]
    assert too_large["id"] is None
    assert too_large["error"]["code"] == -32600
    assert "2048" in too_large["error"]["message"]
    assert answers[2] == too_large
    answers = answers[2:]
    assert answers[1] == {"jsonrpc": "2.0", "id": 1, "result": {}}  # the line after them is served
    assert answers[2]["id"] is None
    assert answers[2]["error"]["code"] == -32600
    assert [item["error"]["code"] for item in answers[3]] == [-32600, -32600]
    batch = answers[4]
    assert batch[0] == {"jsonrpc": "2.0", "id": 3, "result": {}}
    assert batch[1]["error"]["code"] == -32600  # initialize may not be batched
    assert len(batch) == 2  # the notification has no reply
    assert answers[5]["error"]["code"] == -32600  # empty batch
    assert answers[6]["id"] == 5
    assert answers[6]["error"]["code"] == -32601
    assert len(answers) == 7


def test_batches_need_protocol_2025_03_26(mcp_server):
    done = run_raw(
        mcp_server,
        [initialize("2025-06-18"), "[" + request(1, "ping") + "]"],
        "--namespace",
        mcp_server.namespace("root"),
    )
    answers = replies(done.stdout)
    assert answers[1]["id"] is None
    assert answers[1]["error"]["code"] == -32600
    assert "2025-03-26" in answers[1]["error"]["message"]


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--key", "mh_nope_nope"], {}, "not valid"),
        ([], {"MEMORYHUB_API_KEY": "mh_nope_nope"}, "not valid"),
        (["--namespace", "no spaces allowed"], {}, "is not valid"),
        (["--tools", "kg-read,telepathy"], {}, "telepathy"),
    ],
)
def test_refused_start_exits_2_with_nothing_on_stdout(mcp_server, args, env, says):
    done = run_raw(mcp_server, [initialize()], *args, env=env)
    assert done.returncode == 2
    assert done.stdout == ""
    assert says in done.stderr


def test_sigterm_ends_the_session(mcp_server):
    namespace = mcp_server.namespace("root")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "mcp_stdio", "--namespace", namespace],
        cwd=ROOT,
        env=mcp_server.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(initialize() + "\n")
        process.stdin.flush()
        assert json.loads(process.stdout.readline())["id"] == 0
        assert session_rows(mcp_server, namespace)[0][3] == 1  # live
        process.terminate()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    # Ended; or already deleted as ended by the shared server's purge_sessions job (its timer
    # first fires a minute after that server started, and may land right here).
    assert [row[3] for row in session_rows(mcp_server, namespace)] in ([0], [])


def test_stateless_2026_requests_leave_the_connection_uninitialized(mcp_server):
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    done = run_raw(
        mcp_server,
        [
            request(1, "server/discover", {"_meta": meta}),
            request(2, "tools/list", {"_meta": meta}),
            request(3, "tools/list"),
        ],
        "--namespace",
        mcp_server.namespace("root"),
    )
    discover, tools, unannounced = replies(done.stdout)
    assert discover["result"]["supportedVersions"] == ["2026-07-28"]
    assert len(tools["result"]["tools"]) == 10
    assert unannounced["error"]["code"] == -32600  # the handshake is still needed for 2025-era requests


class Trickle:
    """A ByteStream that hands out its input a few bytes at a time."""

    def __init__(self, data: bytes, size: int) -> None:
        self.chunks = [data[i : i + size] for i in range(0, len(data), size)]

    async def read(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    async def write(self, data: bytes) -> None:
        raise AssertionError("not used")


@pytest.mark.anyio
@pytest.mark.parametrize("size", [1, 3, 7, 64])
async def test_line_reader_bounds_lines_whatever_the_chunks(size):
    data = b"short\n" + b"y" * 40 + b"\n" + b"z" * 11 + b"\r\n" + b"0123456789\n" + b"w" * 30 + b"\nlast"
    reader = LineReader(Trickle(data, size), limit=10)
    lines = []
    while (line := await reader.next()) is not None:
        lines.append(line)
        assert len(reader.buffer) <= 10 + size  # never more than the limit plus one read is held
    assert lines == [b"short", OVERSIZE, OVERSIZE, b"0123456789", OVERSIZE, b"last"]
