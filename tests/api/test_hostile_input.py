"""Hostile input on every surface, against the real server over HTTP (issue 16, items 1 and 8).

Each surface (REST /v1/graph/* and /v1/memory/*, MemOS /product/*, MCP over /mcp, the
marketplace's /api/mcp/messages) must answer what no client should send — lists of 200,000
wrong items, 10,000-deep nesting, lone surrogates, integers past 64 bits — with a clear 4xx (or a
tool error / -32602), quickly, and with an error no larger than a few kilobytes.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx2
import pytest

from tests.mcp_endpoint.conftest import McpServer
from tests.mcp_endpoint.test_streamable_http import ACCEPT, Raw, modern_headers, modern_message

# Generous: the answers below took from 10 s to many minutes before they were bounded.
SECONDS = 5.0
# An error names a few problems and counts the rest; a few kilobytes at most.
ERROR_BYTES = 8 * 1024


def send(
    http: httpx2.Client, server: McpServer, path: str, body: bytes | Any, headers: dict[str, str] | None = None
) -> tuple[httpx2.Response, float]:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    started = time.perf_counter()
    response = http.post(
        path,
        content=content,
        headers={**server.headers("alice"), "Content-Type": "application/json", **(headers or {})},
    )
    return response, time.perf_counter() - started


def bounded(response: httpx2.Response, elapsed: float, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert elapsed < SECONDS, elapsed
    assert len(response.content) < ERROR_BYTES, len(response.content)
    return dict(response.json())


def call_tool(
    http: httpx2.Client, server: McpServer, name: str, arguments: Any, *, raw: bytes | None = None
) -> tuple[httpx2.Response, float]:
    """A stateless tools/call on /mcp (`raw`: the arguments' JSON text, as sent)."""
    message = modern_message("tools/call", {"name": name, "arguments": "ARGUMENTS"})
    text = json.dumps(message).replace('"ARGUMENTS"', raw.decode() if raw else json.dumps(arguments))
    headers = {**modern_headers(server, "tools/call", name), "Accept": ACCEPT}
    started = time.perf_counter()
    response = http.post("/mcp", content=text.encode(), headers={"Content-Type": "application/json", **headers})
    return response, time.perf_counter() - started


def tool_error(response: httpx2.Response, elapsed: float) -> str:
    """The text of a tool's isError result, checked to be quick and small."""
    assert response.status_code == 200, response.text[:500]
    assert elapsed < SECONDS, elapsed
    assert len(response.content) < ERROR_BYTES, len(response.content)
    result = response.json()["result"]
    assert result["isError"] is True, result
    return str(result["content"][0]["text"])


def json_list(item: bytes, count: int) -> bytes:
    return b"[" + b",".join([item] * count) + b"]"


# --- item 1: validation errors cost bounded time and bytes ----------------------------------------


@pytest.mark.parametrize("count", [1_000, 200_000])
def test_memos_validation_of_many_bad_messages_is_quick_and_short(
    server: McpServer, http: httpx2.Client, count: int
) -> None:
    body = b'{"messages":' + json_list(b"1", count) + b"}"
    answer = bounded(*send(http, server, "/product/add", body))
    assert answer["code"] == 400
    assert answer["data"] is None
    if count > 1_000:
        assert answer["message"] == f"messages is {count} items; the limit is 1000 items (MAX_ITEMS_PER_REQUEST)"
    else:
        assert answer["message"].startswith("messages.0: Input should be")
        assert answer["message"].endswith(" more)")


def test_memos_validation_message_counts_what_it_leaves_out(server: McpServer, http: httpx2.Client) -> None:
    # 1,000 wrong messages and wrong tags: the first problems are named, the rest counted.
    body = {"messages": [1] * 1000, "custom_tags": [2] * 1000}
    answer = bounded(*send(http, server, "/product/add", body))
    assert answer["message"].endswith("(and 1980 more)"), answer["message"]


def test_rest_validation_of_a_2_mb_body_is_quick_and_short(server: McpServer, http: httpx2.Client) -> None:
    body = b'{"entityNames":' + json_list(b"1", 1024 * 1024 - 10) + b"}"
    answer = bounded(*send(http, server, "/v1/graph/delete_entities", body))
    assert answer["error"]["code"] == "limit_exceeded"
    assert answer["error"]["message"] == (
        f"entityNames is {1024 * 1024 - 10} items; the limit is 1000 items (MAX_ITEMS_PER_REQUEST)"
    )


def test_rest_validation_details_name_the_first_problems_and_count_the_rest(
    server: McpServer, http: httpx2.Client
) -> None:
    answer = bounded(*send(http, server, "/v1/graph/open_nodes", {"names": [1] * 1000}))
    error = answer["error"]
    assert error["code"] == "invalid_argument"
    assert error["message"] == "names: 0: Not a valid string."
    assert len(error["details"]["fields"]["names"]) == 20
    assert error["details"]["omittedErrors"] == 980


def test_rest_memory_tags_are_counted_before_they_are_checked(server: McpServer, http: httpx2.Client) -> None:
    body = {"namespace": server.namespace(), "text": "hello", "tags": [1] * 200_000}
    answer = bounded(*send(http, server, "/v1/memory/write", body))
    assert answer["error"]["message"] == "tags: Ensure this field has no more than 64 elements."


@pytest.mark.parametrize("item", [b'"x"', b"1"])
def test_rest_open_nodes_with_200k_names(server: McpServer, http: httpx2.Client, item: bytes) -> None:
    body = b'{"names":' + json_list(item, 200_000) + b"}"
    answer = bounded(*send(http, server, "/v1/graph/open_nodes", body))
    assert answer["error"]["message"] == "names is 200000 items; the limit is 1000 items (MAX_ITEMS_PER_REQUEST)"


@pytest.mark.parametrize("item", [b'"x"', b"1"])
def test_mcp_open_nodes_with_200k_names(server: McpServer, http: httpx2.Client, item: bytes) -> None:
    raw = b'{"names":' + json_list(item, 200_000) + b"}"
    text = tool_error(*call_tool(http, server, "open_nodes", None, raw=raw))
    assert text == "names is 200000 items; the limit is 1000 items (MAX_ITEMS_PER_REQUEST)"


def test_mcp_validation_message_names_the_first_problems_and_counts_the_rest(
    server: McpServer, http: httpx2.Client
) -> None:
    text = tool_error(*call_tool(http, server, "open_nodes", {"names": [1] * 1000}))
    assert text.startswith("Input validation error: Invalid arguments for tool open_nodes: names.0: Input should be")
    assert text.endswith("(and 980 more)")


def test_mcp_nested_lists_are_counted_before_they_are_checked(server: McpServer, http: httpx2.Client) -> None:
    entities = [{"name": "a", "entityType": "t", "observations": [1] * 100_000}]
    text = tool_error(*call_tool(http, server, "create_entities", {"entities": entities}))
    assert text == "observations is 100000 items; the limit is 1000 items (MAX_ITEMS_PER_REQUEST)"


def test_memos_lists_within_lists_stop_at_their_first_wrong_item(server: McpServer, http: httpx2.Client) -> None:
    # 1,000 messages (the limit) of 1,000 wrong content parts each: one problem per message.
    message = b'{"content":' + json_list(b"1", 1000) + b"}"
    answer = bounded(*send(http, server, "/product/add", b'{"messages":' + json_list(message, 1000) + b"}"))
    assert answer["message"].startswith("messages.0.content"), answer["message"]
    assert "messages.0.content.1:" not in answer["message"]


def test_mcp_lists_within_lists_stop_at_their_first_wrong_item(server: McpServer, http: httpx2.Client) -> None:
    entity = {"name": "a", "entityType": "t", "observations": [1] * 1000}
    text = tool_error(*call_tool(http, server, "create_entities", {"entities": [entity] * 1000}))
    assert text.startswith(
        "Input validation error: Invalid arguments for tool create_entities: entities.0.observations.0"
    )
    assert text.endswith("(and 980 more)"), text[-100:]
    vector = {"entityName": "a", "embedding": ["x"] * 1000}
    text = tool_error(*call_tool(http, server, "vector_batch_upsert", {"items": [vector] * 1024}))
    assert text.endswith("(and 1004 more)"), text[-100:]


def test_json_rpc_errors_echo_only_the_start_of_what_was_sent(server: McpServer, http: httpx2.Client) -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x" * 100_000, "arguments": {}}}
    answer = bounded(*send(http, server, "/api/mcp/messages", call), status=200)
    assert answer["error"]["code"] == -32602
    assert answer["error"]["message"].startswith("Unknown tool: xxx")
    assert answer["error"]["message"].endswith("(100014 characters)")


# --- item 8: odd input is a clear 4xx, never a 5xx -------------------------------------------------

DEEP = b'{"query":' + b"[" * 10_000 + b"]" * 10_000 + b"}"


@pytest.mark.parametrize("path", ["/v1/graph/read_graph", "/v1/memory/search", "/product/search"])
def test_deep_nesting_is_refused(server: McpServer, http: httpx2.Client, path: str) -> None:
    response, elapsed = send(http, server, path, DEEP)
    assert response.status_code == 400, response.text[:500]
    assert elapsed < SECONDS


def test_deep_nesting_on_mcp_is_a_parse_error(server: McpServer, http: httpx2.Client) -> None:
    response, elapsed = call_tool(http, server, "search_nodes", None, raw=DEEP[1:-1].replace(b'"query":', b""))
    assert response.status_code in (200, 400), response.text[:500]
    assert elapsed < SECONDS
    message = response.json()
    assert "error" in message or message["result"]["isError"] is True


LONE = '"x\\ud800"'  # a lone surrogate, as JSON text


def lone(template: str) -> bytes:
    return template.replace("LONE", LONE).encode()


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v1/graph/create_entities", '{"entities":[{"name":"a","entityType":"t","observations":[LONE]}]}'),
        ("/v1/graph/create_entities", '{"entities":[{"name":LONE,"entityType":"t","observations":[]}]}'),
        ("/v1/graph/upsert_entities", '{"entities":[{"name":"a","entityType":"t","observations":[LONE]}]}'),
        ("/v1/graph/add_observations", '{"observations":[{"entityName":"a","contents":[LONE]}]}'),
        ("/v1/graph/search_nodes", '{"query":LONE}'),
        ("/v1/graph/open_nodes", '{"names":[LONE]}'),
        ("/v1/memory/write", '{"namespace":"NS","text":LONE}'),
        ("/v1/memory/write", '{"namespace":"NS","text":"ok","tags":[LONE]}'),
        ("/v1/memory/search", '{"query":LONE}'),
        ("/product/add", '{"messages":[{"role":"user","content":LONE}],"writable_cube_ids":["NS"]}'),
        ("/product/add", '{"messages":["ok"],"custom_tags":[LONE],"writable_cube_ids":["NS"]}'),
        ("/product/search", '{"query":LONE,"readable_cube_ids":["NS"]}'),
    ],
)
def test_lone_surrogates_are_refused(server: McpServer, http: httpx2.Client, path: str, template: str) -> None:
    if "create_entities" not in path and "memory" not in path and "product" not in path:
        # The entity the others name exists.
        send(http, server, "/v1/graph/create_entities", {"entities": [{"name": "a", "entityType": "t"}]})
    body = lone(template.replace("NS", server.namespace()))
    response, _ = send(http, server, path, body, {"X-Memory-Namespace": "org:alice:surrogates"})
    assert response.status_code == 400, response.text[:500]
    assert "surrogate" in response.text.lower(), response.text[:500]


@pytest.mark.parametrize(
    ("tool", "template"),
    [
        ("create_entities", '{"entities":[{"name":"a","entityType":"t","observations":[LONE]}]}'),
        ("add_observations", '{"observations":[{"entityName":"a","contents":[LONE]}]}'),
        ("search_nodes", '{"query":LONE}'),
        ("add_memory", '{"memory_content":LONE}'),
        ("search_memories", '{"query":LONE}'),
        ("vector_search_entities", '{"query":LONE}'),
    ],
)
def test_lone_surrogates_are_tool_errors_on_mcp(
    server: McpServer, http: httpx2.Client, tool: str, template: str
) -> None:
    call_tool(http, server, "create_entities", {"entities": [{"name": "a", "entityType": "t"}]})
    text = tool_error(*call_tool(http, server, tool, None, raw=lone(template))).lower()
    # pydantic refuses some ("unable to parse raw data as a unicode string"), the store the rest.
    assert "surrogate" in text or "unicode" in text, text


@pytest.mark.parametrize("operation", ["read_graph", "search_nodes", "search_relations"])
@pytest.mark.parametrize("offset", [2**63, 2**64 + 5, 10**30])
def test_huge_offsets_are_refused(server: McpServer, http: httpx2.Client, operation: str, offset: int) -> None:
    body = {"offset": offset, **({"query": "x"} if operation == "search_nodes" else {})}
    answer = bounded(*send(http, server, f"/v1/graph/{operation}", body))
    assert "offset" in answer["error"]["message"], answer
    text = tool_error(*call_tool(http, server, operation, body))
    assert "offset" in text, text


def test_a_huge_page_is_refused(server: McpServer, http: httpx2.Client) -> None:
    body = {"mem_cube_id": "org:alice:notes", "page": 10**18}
    answer = bounded(*send(http, server, "/product/get_memory", body))
    assert answer["message"].startswith("page: "), answer


def test_an_odd_last_event_id_is_a_bad_request(server: McpServer, http: httpx2.Client) -> None:
    raw = Raw(server, http)
    session = raw.open_session()
    headers: dict[str, Any] = {**raw.stream_headers(session), "Last-Event-ID": b"0.\xb2"}
    with http.stream("GET", "/mcp", headers=headers) as response:
        assert response.status_code == 400
    headers["Last-Event-ID"] = "0." + "9" * 5000
    with http.stream("GET", "/mcp", headers=headers) as response:
        assert response.status_code == 400


def test_a_read_graph_cursor_past_sqlites_integers_is_refused(server: McpServer, http: httpx2.Client) -> None:
    cursor = base64.urlsafe_b64encode(b"e" + b"9" * 20).decode().rstrip("=")
    answer = bounded(*send(http, server, "/v1/graph/read_graph", {"cursor": cursor}))
    assert "cursor" in answer["error"]["message"], answer
    assert "cursor" in tool_error(*call_tool(http, server, "read_graph", {"cursor": cursor}))


@pytest.mark.parametrize(
    ("tool", "template"),
    [
        # Arguments that no store check sees before they reach SQLite or the embedder's lookup.
        ("vector_get_embedding", '{"name":"a","model":LONE}'),
        ("hybrid_search", '{"query":"x","model":LONE}'),
        ("read_graph", '{"entityType":LONE}'),
        ("search_nodes", '{"query":"x",LONE:1}'),
    ],
)
def test_a_lone_surrogate_in_any_tool_argument_is_a_tool_error(
    server: McpServer, http: httpx2.Client, tool: str, template: str
) -> None:
    text = tool_error(*call_tool(http, server, tool, None, raw=lone(template)))
    assert "surrogate" in text, text


def test_a_batch_over_the_item_limit_is_refused_whole(server: McpServer, http: httpx2.Client) -> None:
    raw = Raw(server, http)
    session = raw.open_session(version="2025-03-26")
    pings = [{"jsonrpc": "2.0", "id": index, "method": "ping"} for index in range(50_000)]
    started = time.perf_counter()
    response = raw.post(pings, session=session)
    elapsed = time.perf_counter() - started
    assert response.status_code == 400, response.text[:300]
    assert elapsed < SECONDS
    assert len(response.content) < ERROR_BYTES
    assert "50000 messages" in response.json()["error"]["message"]
    # A batch within the limit is still answered member by member.
    assert len(raw.post(pings[:10], session=session).json()) == 10
