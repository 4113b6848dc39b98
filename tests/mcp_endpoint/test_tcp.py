"""`manage.py mcp_tcp`: MCP over TCP, one newline-delimited JSON-RPC connection per socket, the
first line an API key (or a JSON object with key, namespace and tools).

Each server runs as a subprocess against the `mcp_server` fixture's database and keys; tests
talk to it over raw sockets (asyncio streams).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.mcp_endpoint.conftest import ALL_TOOLS, ROOT, McpServer

GRAPH = "memory://knowledge-graph"
TIMEOUT = 10


@dataclass
class TcpServer:
    port: int
    log: Path
    process: subprocess.Popen[str]


def start_tcp(mcp_server: McpServer, log: Path, *args: str) -> TcpServer:
    with open(log, "w") as stderr:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "manage.py", "mcp_tcp", "--bind", "127.0.0.1:0", *args],
            cwd=ROOT,
            env=mcp_server.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return TcpServer(int(found.group(1)), log, process)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"mcp_tcp did not start: {log.read_text()}")


def stop_tcp(server: TcpServer) -> None:
    server.process.terminate()
    try:
        assert server.process.wait(timeout=10) == 0, server.log.read_text()
    except subprocess.TimeoutExpired:
        server.process.kill()
        raise
    assert "stopped" in server.log.read_text()


@pytest.fixture(scope="module")
def tcp(mcp_server, tmp_path_factory) -> Iterator[TcpServer]:
    server = start_tcp(mcp_server, tmp_path_factory.mktemp("mcp-tcp") / "tcp.log")
    yield server
    stop_tcp(server)


@pytest.fixture
def small_tcp(mcp_server, tmp_path) -> Iterator[TcpServer]:
    server = start_tcp(mcp_server, tmp_path / "tcp.log", "--max-connections", "2")
    yield server
    stop_tcp(server)


class LineClient:
    """A raw MCP client: one JSON-RPC message per line."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.next_id = 0
        self.notifications: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, port: int, first_line: str | dict[str, Any]) -> LineClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        await client.send_line(first_line if isinstance(first_line, str) else json.dumps(first_line))
        return client

    async def send_line(self, line: str) -> None:
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_line(json.dumps(message))

    async def receive(self) -> Any:
        """The next message; None at end of stream."""
        line = await asyncio.wait_for(self.reader.readline(), TIMEOUT)
        return json.loads(line) if line else None

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        while True:
            reply = await self.receive()
            assert reply is not None, f"connection closed before the reply to {method}"
            if "method" in reply and "id" not in reply:
                self.notifications.append(reply)
                continue
            assert reply["id"] == self.next_id
            return reply

    async def initialize(self, version: str = "2025-11-25") -> dict[str, Any]:
        reply = await self.request(
            "initialize",
            {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "raw-tcp", "version": "1"}},
        )
        await self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return reply

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        reply = await self.request("tools/call", {"name": name, "arguments": arguments})
        assert "result" in reply, reply
        return reply["result"]

    async def tool_names(self) -> list[str]:
        names: list[str] = []
        params: dict[str, Any] = {}
        while True:
            page = (await self.request("tools/list", params))["result"]
            names += [tool["name"] for tool in page["tools"]]
            if "nextCursor" not in page:
                return names
            params = {"cursor": page["nextCursor"]}

    async def closed(self) -> bool:
        """True when the server closed the connection (reads EOF)."""
        try:
            return await asyncio.wait_for(self.reader.read(), TIMEOUT) == b""
        except ConnectionResetError:
            return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def entity(name: str, *observations: str) -> dict[str, Any]:
    return {"entities": [{"name": name, "entityType": "thing", "observations": list(observations)}]}


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_plain_key_line_then_mcp(mcp_server, tcp):
    client = await LineClient.open(tcp.port, mcp_server.keys["carol"])
    try:
        hello = await client.initialize()
        assert hello["result"]["serverInfo"]["name"] == "memoryhub"
        assert hello["result"]["protocolVersion"] == "2025-11-25"
        assert len(await client.tool_names()) == len(ALL_TOOLS)
        # carol reads alice's namespaces: her default one is readable, not writable.
        found = await client.call("search_nodes", {"query": "anything"})
        assert found["isError"] is False
        refused = await client.call("create_entities", entity("Nope"))
        assert refused["isError"] is True
        assert "no write grant" in refused["content"][0]["text"]
    finally:
        await client.close()


@pytest.mark.anyio
async def test_json_first_line_chooses_namespace_and_tools(mcp_server, tcp):
    namespace = mcp_server.namespace("alice")
    writer = await LineClient.open(tcp.port, {"key": mcp_server.keys["alice"], "namespace": namespace})
    reader = await LineClient.open(
        tcp.port, {"key": mcp_server.keys["alice"], "namespace": namespace, "tools": "kg-read"}
    )
    try:
        await writer.initialize()
        made = await writer.call("create_entities", entity("Tcp note", "sent over a socket"))
        assert made["isError"] is False
        await reader.initialize()
        names = await reader.tool_names()
        assert len(names) == 18
        assert "create_entities" not in names
        unknown = await reader.request("tools/call", {"name": "create_entities", "arguments": entity("X")})
        assert unknown["error"]["code"] == -32602
        opened = await reader.call("open_nodes", {"names": ["Tcp note"]})
        assert opened["structuredContent"]["entities"] == [
            {"name": "Tcp note", "entityType": "thing", "observations": ["sent over a socket"]}
        ]
    finally:
        await writer.close()
        await reader.close()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("first_line", "says"),
    [
        ("mh_not_a_key", "A valid API key is required"),
        ("", "A valid API key is required"),
        ({"key": "mh_not_a_key", "namespace": "org:alice:x"}, "A valid API key is required"),
        ({"namespace": "org:alice:x"}, "'key'"),
        ('{"key": ', "Parse error"),
        ("ALICE", "A valid API key is required"),
        ({"key": "ALICE", "namespace": "not a namespace"}, "is not valid"),
        ({"key": "ALICE", "tools": "kg-read,telepathy"}, "telepathy"),
    ],
)
async def test_refused_first_line_gets_one_error_line_then_close(mcp_server, tcp, first_line, says):
    if first_line == "ALICE":
        first_line = mcp_server.keys["alice"] + " trailing junk"
    elif isinstance(first_line, dict) and first_line.get("key") == "ALICE":
        first_line = {**first_line, "key": mcp_server.keys["alice"]}
    client = await LineClient.open(tcp.port, first_line)
    try:
        # A client that does not wait for a verdict: its initialize must not hide the error.
        await client.send_line(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        )
        refusal = await client.receive()
        assert refusal["jsonrpc"] == "2.0"
        assert refusal["id"] is None
        assert refusal["error"]["code"] == -32600
        assert says in refusal["error"]["message"]
        assert await client.closed()
    finally:
        await client.close()


# --- tenants and notifications --------------------------------------------------------------------


@pytest.mark.anyio
async def test_tenants_cannot_see_each_other(mcp_server, tcp):
    alices, bobs = mcp_server.namespace("alice"), mcp_server.namespace("bob")
    alice = await LineClient.open(tcp.port, {"key": mcp_server.keys["alice"], "namespace": alices})
    bob_at_alice = await LineClient.open(tcp.port, {"key": mcp_server.keys["bob"], "namespace": alices})
    bob = await LineClient.open(tcp.port, {"key": mcp_server.keys["bob"], "namespace": bobs})
    try:
        for client in (alice, bob_at_alice, bob):
            await client.initialize()
        assert (await alice.call("create_entities", entity("Alice only", "private")))["isError"] is False
        refused = await bob_at_alice.call("read_graph", {})
        assert refused["isError"] is True
        assert f"no read grant for namespace '{alices}'" in refused["content"][0]["text"]
        subscribe = await bob_at_alice.request("resources/subscribe", {"uri": GRAPH})
        assert subscribe["error"]["code"] == -32602
        own = await bob.call("search_nodes", {"query": "Alice only"})
        assert own["structuredContent"]["entities"] == []
        # And the other way round: alice cannot write into bob's namespace.
        alice_at_bob = await LineClient.open(tcp.port, {"key": mcp_server.keys["alice"], "namespace": bobs})
        try:
            await alice_at_bob.initialize()
            written = await alice_at_bob.call("create_entities", entity("Intruder"))
            assert written["isError"] is True
            assert "no write grant" in written["content"][0]["text"]
        finally:
            await alice_at_bob.close()
    finally:
        for client in (alice, bob_at_alice, bob):
            await client.close()


@pytest.mark.anyio
async def test_write_on_one_connection_notifies_subscribers_on_others(mcp_server, tcp):
    namespace = mcp_server.namespace("alice")
    watcher = await LineClient.open(tcp.port, {"key": mcp_server.keys["carol"], "namespace": namespace})
    writer = await LineClient.open(tcp.port, {"key": mcp_server.keys["alice"], "namespace": namespace})
    elsewhere = await LineClient.open(tcp.port, {"key": mcp_server.keys["alice"], "namespace": namespace + "x"})
    try:
        for client in (watcher, writer, elsewhere):
            await client.initialize()
        assert (await watcher.request("resources/subscribe", {"uri": GRAPH}))["result"] == {}
        assert (await elsewhere.request("resources/subscribe", {"uri": GRAPH}))["result"] == {}
        assert (await writer.call("create_entities", entity("Changed")))["isError"] is False
        update = await watcher.receive()
        assert update == {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": GRAPH},
        }
        # Only subscribers of that namespace hear of it: the other connection gets just its pong.
        pong = await elsewhere.request("ping")
        assert pong["result"] == {}
        assert elsewhere.notifications == []
    finally:
        for client in (watcher, writer, elsewhere):
            await client.close()


# --- limits ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_connection_cap(mcp_server, small_tcp):
    first = await LineClient.open(small_tcp.port, mcp_server.keys["alice"])
    second = await LineClient.open(small_tcp.port, mcp_server.keys["bob"])
    try:
        for client in (first, second):
            assert "result" in await client.initialize()
        third = await LineClient.open(small_tcp.port, mcp_server.keys["carol"])
        try:
            refusal = await third.receive()
            assert refusal["id"] is None
            assert refusal["error"]["code"] == -32600
            assert "Too many connections" in refusal["error"]["message"]
            assert await third.closed()
        finally:
            await third.close()
        # A slot frees up when a connection ends.
        await first.close()
        deadline = time.monotonic() + TIMEOUT
        while True:
            retry = await LineClient.open(small_tcp.port, mcp_server.keys["carol"])
            await retry.send({"jsonrpc": "2.0", "id": 1, "method": "ping"})
            reply = await retry.receive()
            await retry.close()
            if reply == {"jsonrpc": "2.0", "id": 1, "result": {}}:
                break
            assert time.monotonic() < deadline, reply
            await asyncio.sleep(0.1)
    finally:
        await second.close()


@pytest.mark.anyio
async def test_revoked_key_stops_an_open_connection(mcp_server, tcp):
    # Every line re-checks the key, as every HTTP request does; and a quiet connection does not
    # outlive its key either (issue 16, item 7): the server says so in an error line and closes it,
    # without waiting for the client's next line.
    secret = mcp_server.manage(
        "create_api_key", "--user", "dave", "--grant", "org:dave:*=write", "--default-namespace", "org:dave:notes"
    ).stdout.strip()
    client = await LineClient.open(tcp.port, secret)
    try:
        await client.initialize()
        assert (await client.call("read_graph", {}))["isError"] is False
        await asyncio.to_thread(mcp_server.manage, "revoke_api_key", secret)
        refused = await client.receive()
        assert refused["id"] is None
        assert refused["error"]["code"] == -32600
        assert "A valid API key is required" in refused["error"]["message"]
        assert await client.closed()
    finally:
        await client.close()


@pytest.mark.anyio
async def test_a_quiet_connection_ends_when_its_key_expires(mcp_server, tcp):
    secret = mcp_server.manage(
        "create_api_key", "--user", "erin", "--grant", "org:erin:*=write", "--default-namespace", "org:erin:notes"
    ).stdout.strip()
    await asyncio.to_thread(
        mcp_server.manage,
        "shell",
        "-c",
        "import datetime as dt; from django.utils import timezone; from access.models import ApiKey; "
        "ApiKey.objects.filter(owner__username='erin').update(expires_at=timezone.now() + dt.timedelta(seconds=4))",
    )
    client = await LineClient.open(tcp.port, secret)
    try:
        await client.initialize()
        assert (await client.request("ping"))["result"] == {}
        refused = await client.receive()
        assert refused["id"] is None
        assert "has expired" in refused["error"]["message"]
        assert await client.closed()
    finally:
        await client.close()


async def idle_socket(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that never sends its key line, from `source` (another loopback address)."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


@pytest.mark.anyio
async def test_idle_sockets_from_one_address_cannot_lock_out_other_clients(mcp_server, tmp_path):
    # Issue 16, item 9: sockets that never authenticate held a connection slot for 30 s each, so
    # a handful of them from one address took every slot. Now each address may have only a few
    # connections waiting for their first line; the rest are refused at once.
    server = start_tcp(mcp_server, tmp_path / "tcp.log", "--max-connections", "4", "--max-pending-per-address", "2")
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        idle = [await idle_socket(server.port, "127.0.0.2") for _ in range(6)]
        refused = 0
        for reader, _ in idle[2:]:
            line = await asyncio.wait_for(reader.readline(), TIMEOUT)
            assert json.loads(line)["error"]["message"].startswith("Too many connections waiting"), line
            refused += 1
        assert refused == 4
        # A client from another address still gets in (two of the four slots are taken).
        client = await LineClient.open(server.port, mcp_server.keys["alice"])
        try:
            assert "result" in await client.initialize()
            assert (await client.request("ping"))["result"] == {}
        finally:
            await client.close()
    finally:
        for _, writer in idle:
            writer.close()
        stop_tcp(server)


@pytest.mark.anyio
async def test_a_socket_that_sends_no_key_is_closed_soon(mcp_server, tcp):
    # The default first-line deadline is a few seconds, not 30: an unauthenticated socket frees
    # its slot long before TIMEOUT.
    reader, writer = await idle_socket(tcp.port, "127.0.0.1")
    try:
        line = await asyncio.wait_for(reader.readline(), TIMEOUT)
        refusal = json.loads(line)
        assert refusal["error"]["code"] == -32600
        assert "No API key line within" in refusal["error"]["message"]
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    finally:
        writer.close()
