"""The protocol core without a transport: JSON-RPC framing, lifecycle, version negotiation, the
2026-07-28 envelope, tool calls and resources, on the real database."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_endpoint import protocol
from mcp_endpoint.jsonrpc import ProtocolError, classify, parse
from tests.conftest import Persona
from tests.mcp_endpoint.conftest import ALL_TOOLS

MODERN_META = {
    protocol.PROTOCOL_VERSION_META: "2026-07-28",
    protocol.CLIENT_CAPABILITIES_META: {},
}


def request(method: str, params: dict[str, Any] | None = None, request_id: int = 1) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def send(connection: protocol.Connection, message: dict[str, Any]) -> dict[str, Any] | None:
    return protocol.handle(connection, classify(message)).message


def ready(persona: Persona, **options: Any) -> protocol.Connection:
    """A connection that went through the handshake."""
    connection = protocol.Connection(access=persona.key.to_access(), namespace=persona.namespace, **options)
    reply = send(connection, request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}}))
    assert reply is not None
    assert reply["result"]["protocolVersion"] == "2025-06-18"
    send(connection, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert connection.initialized
    return connection


# --- framing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        [],
        "text",
        {"id": 1, "method": "ping"},  # no jsonrpc
        {"jsonrpc": "1.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "id": True, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1.5, "method": "ping"},
        {"jsonrpc": "2.0", "id": 1, "method": ""},
        {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1]},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "id": 1, "result": {}, "error": {}},
    ],
)
def test_anything_but_one_json_rpc_message_is_an_invalid_request(value: Any) -> None:
    with pytest.raises(ProtocolError) as raised:
        classify(value)
    assert raised.value.code == -32600


def test_broken_json_is_a_parse_error() -> None:
    with pytest.raises(ProtocolError) as raised:
        parse(b'{"jsonrpc": "2.0",')
    assert raised.value.code == -32700
    with pytest.raises(ProtocolError):
        parse(b"\xff\xfe")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_constants_are_a_parse_error(constant: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        parse(f'{{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {{"x": {constant}}}}}')
    assert raised.value.code == -32700


# --- lifecycle ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        ("2024-11-05", "2024-11-05"),
        ("2025-03-26", "2025-03-26"),
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2099-01-01", "2025-11-25"),  # unknown: answer with our latest (spec SHOULD)
        ("2026-07-28", "2025-11-25"),  # the stateless era has no initialize
    ],
)
def test_initialize_negotiates_the_version(alice_key: Persona, offered: str, answered: str) -> None:
    connection = protocol.Connection(access=alice_key.key.to_access(), namespace=alice_key.namespace)
    reply = send(connection, request("initialize", {"protocolVersion": offered, "capabilities": {}}))
    assert reply is not None
    result = reply["result"]
    assert result["protocolVersion"] == answered
    assert result["serverInfo"]["name"] == "memoryhub"
    assert result["capabilities"] == {
        "tools": {"listChanged": True},
        "resources": {"subscribe": True, "listChanged": False},
    }
    assert "search_nodes" in result["instructions"]


def test_requests_before_initialize_are_refused_except_ping(alice_key: Persona) -> None:
    connection = protocol.Connection(access=alice_key.key.to_access(), namespace=alice_key.namespace)
    assert send(connection, request("ping")) == {"jsonrpc": "2.0", "id": 1, "result": {}}
    reply = send(connection, request("tools/list"))
    assert reply is not None
    assert reply["error"]["code"] == -32600


def test_a_second_initialize_is_refused(alice_key: Persona) -> None:
    connection = ready(alice_key)
    reply = send(connection, request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}}))
    assert reply is not None
    assert reply["error"]["code"] == -32600


def test_initialize_needs_a_protocol_version_string(alice_key: Persona) -> None:
    connection = protocol.Connection(access=alice_key.key.to_access(), namespace=alice_key.namespace)
    reply = send(connection, request("initialize", {"protocolVersion": 20251125}))
    assert reply is not None
    assert reply["error"]["code"] == -32602


def test_unknown_methods_notifications_and_responses(alice_key: Persona) -> None:
    connection = ready(alice_key)
    reply = send(connection, request("prompts/list"))
    assert reply is not None
    assert reply["error"] == {"code": -32601, "message": "Method not found: prompts/list"}
    # Notifications and responses are never answered.
    assert send(connection, {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {}}) is None
    assert send(connection, {"jsonrpc": "2.0", "id": 9, "result": {}}) is None


# --- tools --------------------------------------------------------------------------------------


def test_tools_list_pages_with_an_opaque_cursor(alice_key: Persona, settings: Any) -> None:
    settings.MEMORYHUB_MCP_PAGE_SIZE = 10
    connection = ready(alice_key)
    names: list[str] = []
    cursor = None
    pages = 0
    while True:
        reply = send(connection, request("tools/list", {"cursor": cursor} if cursor else {}))
        assert reply is not None
        names += [tool["name"] for tool in reply["result"]["tools"]]
        pages += 1
        cursor = reply["result"].get("nextCursor")
        if cursor is None:
            break
    assert pages == -(-len(ALL_TOOLS) // 10)  # every tool, 10 a page
    assert len(names) == len(set(names)) == len(ALL_TOOLS)
    reply = send(connection, request("tools/list", {"cursor": "not-a-cursor"}))
    assert reply is not None
    assert reply["error"]["code"] == -32602


def test_tool_categories_limit_what_is_listed_and_callable(alice_key: Persona) -> None:
    connection = ready(alice_key, categories=("kg-read",))
    reply = send(connection, request("tools/list"))
    assert reply is not None
    tools = reply["result"]["tools"]
    assert len(tools) == 18
    assert all(tool["annotations"]["readOnlyHint"] for tool in tools)
    reply = send(connection, request("tools/call", {"name": "create_entities", "arguments": {"entities": []}}))
    assert reply is not None
    assert reply["error"] == {"code": -32602, "message": "Unknown tool: create_entities"}


def call(connection: protocol.Connection, name: str, arguments: Any) -> dict[str, Any]:
    reply = send(connection, request("tools/call", {"name": name, "arguments": arguments}))
    assert reply is not None
    assert "result" in reply, reply
    result: dict[str, Any] = reply["result"]
    return result


def test_a_tool_result_carries_structured_content_and_the_same_json_as_text(alice_key: Persona) -> None:
    connection = ready(alice_key)
    entity = {"name": "咖啡 ☕", "entityType": "drink", "observations": ["Café crème"]}
    result = call(connection, "create_entities", {"entities": [entity]})
    assert result["isError"] is False
    assert result["structuredContent"]["entities"] == [entity]
    # As the official server: the bare array, pretty-printed with two spaces, unicode unescaped.
    assert result["content"] == [{"type": "text", "text": json.dumps([entity], indent=2, ensure_ascii=False)}]
    stats = call(connection, "graph_stats", {})
    # Tools outside the official nine send compact JSON text (fewer tokens).
    assert json.loads(stats["content"][0]["text"]) == stats["structuredContent"]
    assert "\n" not in stats["content"][0]["text"]


def test_tool_failures_are_results_a_model_can_act_on(alice_key: Persona, carol_key: Persona) -> None:
    connection = ready(alice_key)
    missing = call(connection, "add_observations", {"observations": [{"entityName": "Nobody", "contents": ["x"]}]})
    assert missing == {"content": [{"type": "text", "text": "Entity with name Nobody not found"}], "isError": True}
    invalid = call(connection, "create_entities", {"entities": "not a list"})
    assert invalid["isError"] is True
    assert invalid["content"][0]["text"].startswith(
        "Input validation error: Invalid arguments for tool create_entities"
    )
    assert "entities" in invalid["content"][0]["text"]
    not_object = call(connection, "read_graph", ["a"])
    assert not_object["isError"] is True
    over_limit = call(connection, "search_nodes", {"query": "x", "limit": 10**6})
    assert over_limit["isError"] is True
    read_only = ready(carol_key)
    refused = call(read_only, "create_entities", {"entities": []})
    assert refused["isError"] is True
    assert "no write grant" in refused["content"][0]["text"]
    assert call(read_only, "read_graph", {})["isError"] is False


def test_missing_arguments_object_means_no_arguments(alice_key: Persona) -> None:
    connection = ready(alice_key)
    reply = send(connection, request("tools/call", {"name": "graph_stats"}))
    assert reply is not None
    assert reply["result"]["isError"] is False


def test_a_connection_without_any_namespace_is_told_how_to_fix_it(alice_key: Persona) -> None:
    access = alice_key.key.to_access()
    connection = protocol.Connection(
        access=access.__class__(grants=access.grants, key_id=access.key_id), namespace=None
    )
    send(connection, request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}}))
    result = call(connection, "read_graph", {})
    assert result["isError"] is True
    assert "namespace" in result["content"][0]["text"]


# --- resources ----------------------------------------------------------------------------------


def test_the_knowledge_graph_resource(alice_key: Persona, bob_key: Persona) -> None:
    connection = ready(alice_key)
    call(connection, "create_entities", {"entities": [{"name": "A", "entityType": "t", "observations": []}]})
    listed = send(connection, request("resources/list"))
    assert listed is not None
    assert [r["uri"] for r in listed["result"]["resources"]] == ["memory://knowledge-graph"]
    read = send(connection, request("resources/read", {"uri": "memory://knowledge-graph"}))
    assert read is not None
    content = read["result"]["contents"][0]
    assert content["mimeType"] == "application/json"
    assert [e["name"] for e in json.loads(content["text"])["entities"]] == ["A"]
    unknown = send(connection, request("resources/read", {"uri": "memory://other"}))
    assert unknown is not None
    assert unknown["error"]["code"] == -32002
    # Subscribing needs read access to the namespace.
    outsider = protocol.Connection(access=bob_key.key.to_access(), namespace=alice_key.namespace)
    send(outsider, request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}}))
    refused = send(outsider, request("resources/subscribe", {"uri": "memory://knowledge-graph"}))
    assert refused is not None
    assert refused["error"]["code"] == -32602
    assert not outsider.subscribed
    # The grant a subscription needs is the one reading the resource needs, refused alike.
    unread = send(outsider, request("resources/read", {"uri": "memory://knowledge-graph"}))
    assert unread is not None
    assert refused["error"] == unread["error"]
    assert "org:alice:notes" in refused["error"]["message"]
    assert send(connection, request("resources/subscribe", {"uri": "memory://knowledge-graph"})) is not None
    assert connection.subscribed
    assert connection.changed
    send(connection, request("resources/unsubscribe", {"uri": "memory://knowledge-graph"}))
    assert not connection.subscribed


# --- the stateless 2026-07-28 era ---------------------------------------------------------------


def test_a_modern_request_needs_no_handshake(alice_key: Persona) -> None:
    connection = protocol.Connection(access=alice_key.key.to_access(), namespace=alice_key.namespace)
    reply = send(connection, request("tools/list", {"_meta": MODERN_META}))
    assert reply is not None
    result = reply["result"]
    assert result["resultType"] == "complete"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "memoryhub"
    assert result["ttlMs"] == 0
    assert result["cacheScope"] == "private"
    called = send(connection, request("tools/call", {"name": "graph_stats", "arguments": {}, "_meta": MODERN_META}))
    assert called is not None
    assert called["result"]["isError"] is False
    assert called["result"]["resultType"] == "complete"


def test_server_discover(alice_key: Persona) -> None:
    connection = protocol.Connection(access=alice_key.key.to_access(), namespace=alice_key.namespace)
    reply = send(connection, request("server/discover", {"_meta": MODERN_META}))
    assert reply is not None
    assert reply["result"]["supportedVersions"] == ["2026-07-28"]
    # Subscriptions there go through subscriptions/listen (served on Streamable HTTP).
    assert reply["result"]["capabilities"]["resources"]["subscribe"] is True


@pytest.mark.parametrize(
    ("meta", "code"),
    [
        ({protocol.PROTOCOL_VERSION_META: "2030-01-01", protocol.CLIENT_CAPABILITIES_META: {}}, -32022),
        ({protocol.PROTOCOL_VERSION_META: "2026-07-28"}, -32602),  # no client capabilities
        ({protocol.PROTOCOL_VERSION_META: 20260728, protocol.CLIENT_CAPABILITIES_META: {}}, -32602),
    ],
)
def test_the_modern_envelope_is_checked(alice_key: Persona, meta: dict[str, Any], code: int) -> None:
    connection = protocol.Connection(access=alice_key.key.to_access(), namespace=alice_key.namespace)
    reply = send(connection, request("tools/list", {"_meta": meta}))
    assert reply is not None
    assert reply["error"]["code"] == code
    if code == -32022:
        assert reply["error"]["data"] == {"supported": ["2026-07-28"], "requested": "2030-01-01"}


def test_a_listen_filter_honours_what_we_can_send(alice_key: Persona, bob_key: Persona) -> None:
    connection = protocol.Connection(access=alice_key.key.to_access(), namespace=alice_key.namespace)
    wanted = {"toolsListChanged": True, "promptsListChanged": True, "resourceSubscriptions": [protocol.GRAPH_RESOURCE]}
    honoured = protocol.listen_filter(connection, {"notifications": wanted})
    assert honoured == {"toolsListChanged": True, "resourceSubscriptions": [protocol.GRAPH_RESOURCE]}
    assert connection.subscribed
    outsider = protocol.Connection(access=bob_key.key.to_access(), namespace=alice_key.namespace)
    bad: list[dict[str, Any]] = [
        {"notifications": {"resourceSubscriptions": [protocol.GRAPH_RESOURCE]}},  # no read grant
        {"notifications": {"resourceSubscriptions": "memory://knowledge-graph"}},  # not a list
        {"notifications": []},
        {},
    ]
    for params in bad:
        with pytest.raises(ProtocolError) as refused:
            protocol.listen_filter(outsider, params)
        assert refused.value.code == -32602
    assert not outsider.subscribed


def test_methods_removed_in_2026_07_28_are_unknown_there(alice_key: Persona) -> None:
    connection = protocol.Connection(access=alice_key.key.to_access(), namespace=alice_key.namespace)
    for method in ("ping", "resources/subscribe"):
        reply = send(connection, request(method, {"_meta": MODERN_META, "uri": "memory://knowledge-graph"}))
        assert reply is not None
        assert reply["error"]["code"] == -32601
    unknown = send(connection, request("resources/read", {"_meta": MODERN_META, "uri": "memory://nope"}))
    assert unknown is not None
    assert unknown["error"]["code"] == -32602
