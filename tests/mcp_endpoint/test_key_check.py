"""`/mcp` checks a stateless (2026-07-28) request's key in the same database call as its work.

One hop to the database thread instead of two is a measurable share of a read tool call under
load (bench/load.py). What must not change with it: a caller without a valid key learns nothing
but 401 (not whether its body or headers were right), the rate limit still holds, and two keys
still see only their own namespaces. In process, through the real routes and consumer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import SyncToAsync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import HttpCommunicator

from access import services
from mcp_endpoint.protocol import CLIENT_CAPABILITIES_META, PROTOCOL_VERSION_META
from mcp_endpoint.routing import urlpatterns
from tests.conftest import ALICE, Persona

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio]

ROUTES = URLRouter(urlpatterns)
VERSION = "2026-07-28"


def call(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    meta = {PROTOCOL_VERSION_META: VERSION, CLIENT_CAPABILITIES_META: {}}
    return {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments, "_meta": meta},
    }


def routing_headers(method: str, name: str | None = None, key: str | None = None) -> list[tuple[bytes, bytes]]:
    headers = [
        # Every HTTP/1.1 request names its host; the MCP routes refuse one not in ALLOWED_HOSTS.
        (b"host", b"127.0.0.1"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
        (b"mcp-protocol-version", VERSION.encode()),
        (b"mcp-method", method.encode()),
    ]
    if name is not None:
        headers.append((b"mcp-name", name.encode()))
    if key is not None:
        headers.append((b"x-api-key", key.encode()))
    return headers


async def post(body: Any, headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[bytes, bytes], Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await HttpCommunicator(ROUTES, "POST", "/mcp", body=raw, headers=headers).get_response(timeout=10)
    payload = json.loads(response["body"]) if response["body"] else None
    return response["status"], dict(response["headers"]), payload


async def tool(persona: Persona | None, name: str, arguments: dict[str, Any]) -> tuple[int, dict[bytes, bytes], Any]:
    key = persona.secret if persona is not None else None
    return await post(call(name, arguments), routing_headers("tools/call", name, key))


@pytest.fixture
def hops() -> Iterator[list[str]]:
    """Every call handed to a thread by asgiref (the database thread's hops), by function name."""
    seen: list[str] = []
    original = SyncToAsync.__call__

    async def counted(self: SyncToAsync, *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(self.func, "__name__", repr(self.func)))
        return await original(self, *args, **kwargs)

    SyncToAsync.__call__ = counted
    try:
        yield seen
    finally:
        SyncToAsync.__call__ = original


async def test_a_stateless_call_is_one_database_call_and_keys_stay_apart(
    alice_key: Persona, bob_key: Persona, hops: list[str]
) -> None:
    entity = {"name": "Ada", "entityType": "person", "observations": ["writes the release notes"]}
    status, _, created = await tool(alice_key, "create_entities", {"entities": [entity]})
    assert status == 200, created
    assert created["result"]["isError"] is False
    assert hops == ["_check_key_and_handle"]

    hops.clear()
    status, _, found = await tool(alice_key, "search_nodes", {"query": "release"})
    assert status == 200
    assert [e["name"] for e in found["result"]["structuredContent"]["entities"]] == ["Ada"]
    assert hops == ["_check_key_and_handle"]

    # Bob's key reads its own namespace: Alice's entity is not there, and hers is not his to name.
    status, _, other = await tool(bob_key, "search_nodes", {"query": "release"})
    assert status == 200
    assert other["result"]["structuredContent"]["entities"] == []
    status, _, refused = await post(
        call("search_nodes", {"query": "release"}),
        [*routing_headers("tools/call", "search_nodes", bob_key.secret), (b"x-memory-namespace", ALICE.encode())],
    )
    assert status == 200
    assert refused["result"]["isError"] is True
    assert "no read grant" in refused["result"]["content"][0]["text"]


async def test_without_a_valid_key_the_only_answer_is_401(alice_key: Persona) -> None:
    good = call("read_graph", {})
    mismatched = routing_headers("tools/list", "read_graph")  # headers disagree with the body
    cases: list[tuple[Any, list[tuple[bytes, bytes]], int, int]] = [
        # body, headers (without key), status with Alice's key, JSON-RPC code with it (0: none)
        (good, routing_headers("tools/call", "read_graph"), 200, 0),
        (good, mismatched, 400, -32020),
        (b'{"jsonrpc": "2.0", "id": 1, "method": ', routing_headers("tools/call"), 400, -32700),
        ([good], routing_headers("tools/call", "read_graph"), 400, -32600),  # no batches in this era
    ]
    for body, headers, status_with_key, code_with_key in cases:
        for key in (None, "mh_not_a_real_key"):
            with_bad_key = headers + ([(b"x-api-key", key.encode())] if key else [])
            status, answer_headers, payload = await post(body, with_bad_key)
            assert status == 401, (body, key, payload)
            assert payload["error"]["code"] == -32600
            assert payload["id"] is None
            assert answer_headers[b"WWW-Authenticate"] == (
                b'Bearer scope="mcp",resource_metadata="http://127.0.0.1/.well-known/oauth-protected-resource/mcp", '
                b'ApiKey realm="mcp"'
            )
        status, _, payload = await post(body, [*headers, (b"x-api-key", alice_key.secret.encode())])
        assert status == status_with_key, (body, payload)
        if code_with_key:
            assert payload["error"]["code"] == code_with_key

    await database_sync_to_async(services.api_key_revoke)(key=alice_key.key, source="command")
    status, _, payload = await tool(alice_key, "read_graph", {})
    assert status == 401


async def test_the_rate_limit_holds_on_the_one_call_path(alice_key: Persona, settings: Any) -> None:
    settings.MEMORYHUB_RATE_LIMIT = {"PER_MINUTE": 60, "BURST": 2}
    statuses = [(await tool(alice_key, "read_graph", {}))[0] for _ in range(3)]
    assert statuses == [200, 200, 429]
    status, headers, payload = await tool(alice_key, "read_graph", {})
    assert status == 429
    assert 1 <= int(dict((k.lower(), v) for k, v in headers.items())[b"retry-after"]) <= 2
    assert payload["error"]["code"] == -32600


async def test_notifications_and_other_requests_check_the_key_first(alice_key: Persona, hops: list[str]) -> None:
    meta = {PROTOCOL_VERSION_META: VERSION, CLIENT_CAPABILITIES_META: {}}
    note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "_meta": meta}}
    status, _, _ = await post(note, routing_headers("notifications/cancelled"))
    assert status == 401
    status, _, _ = await post(note, routing_headers("notifications/cancelled", key=alice_key.secret))
    assert status == 202
    # A request of an earlier protocol (here: initialize) is checked on its own, then handled.
    hops.clear()
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = [
        # Every HTTP/1.1 request names its host; the MCP routes refuse one not in ALLOWED_HOSTS.
        (b"host", b"127.0.0.1"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
        (b"x-api-key", alice_key.secret.encode()),
    ]
    status, _, payload = await post(initialize, headers)
    assert status == 200, payload
    assert payload["result"]["protocolVersion"] == "2025-11-25"
    assert hops[0] == "check"
