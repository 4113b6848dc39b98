"""Every MCP tool refuses a key without the grant its operation needs, through the real server.

The tools are walked from the server's own tools/list (as the operator sees it), so a tool added
later must get an example here or this fails. Bob (write on org:bob:*) calls each tool aimed at a
namespace of Alice's; Carol (read on org:alice:*) calls each writing tool there. Each answer must
be the runner's refusal as an `isError` result, and Alice's data must be the same afterwards. The
operations themselves are walked in tests/access/test_operation_grants.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp import types

from tests.grants import CALLS, OPERATOR, READ, SECRET, WRITE
from tests.mcp_endpoint.conftest import McpServer

pytestmark = pytest.mark.anyio

# The memory tools take the namespace (MemOS' cube) as an argument; filled in per test.
MEMORY_CALLS: dict[str, tuple[dict[str, Any], str, str]] = {
    # tool -> (arguments, the argument naming the namespace, the grant it needs)
    "add_memory": ({"memory_content": "bob was here"}, "cube_id", WRITE),
    "search_memories": ({"query": "vault code"}, "cube_ids", READ),
    "chat": ({"query": "what is the vault code?", "add_message_on_answer": False}, "cube_ids", READ),
    "add_message": (
        {"conversation_first_message": "hi", "messages": [{"role": "user", "content": "bob was here"}]},
        "cube_id",
        WRITE,
    ),
    "search_memory": ({"query": "vault code"}, "knowledgebase_ids", READ),
}

# Tools whose reach is the caller's own account (credits, tokens) or ids: every user's key has
# its own, so there is no other tenant's grant to lack; they are checked differently below.
ACCOUNT_TOOLS = {"search_agents", "buy_agent_tokens"}
BY_ID_TOOLS = {"delete_memory", "memory_history", "update_memory", "restore_memory"}


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def _seed(server: McpServer, namespace: str) -> tuple[dict[str, Any], str]:
    """Alice's entity and memory holding the secret; her data as she reads it, and the memory's id."""
    async with server.client("alice", namespace=namespace) as alice:
        await alice.call_tool(
            "create_entities", {"entities": [{"name": "Ada", "entityType": "person", "observations": [SECRET]}]}
        )
        added = await alice.call_tool("add_memory", {"memory_content": SECRET, "cube_id": namespace})
        assert not added.is_error, text_of(added)
    return await _state(server, namespace), (added.structured_content or {})["id"]


async def _state(server: McpServer, namespace: str) -> dict[str, Any]:
    async with server.client("alice", namespace=namespace) as alice:
        graph = await alice.call_tool("read_graph", {})
        memories = await alice.call_tool("search_memories", {"query": "vault code", "cube_ids": [namespace]})
        return {
            "graph": graph.structured_content,
            "memories": sorted(hit["id"] for hit in (memories.structured_content or {}).get("results", [])),
        }


async def test_every_tool_is_walked(mcp_server: McpServer) -> None:
    async with mcp_server.client("root") as root:
        listed = {tool.name for tool in (await root.list_tools()).tools}
    walked = set(CALLS) | set(MEMORY_CALLS) | ACCOUNT_TOOLS | BY_ID_TOOLS
    assert listed <= walked, f"add an example call for {sorted(listed - walked)}"


async def test_tools_refuse_a_key_without_the_grant(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    before, _ = await _seed(mcp_server, namespace)
    async with (
        mcp_server.client("bob", namespace=namespace) as bob,
        mcp_server.client("carol", namespace=namespace) as carol,
    ):
        for tool, (arguments, needs) in CALLS.items():
            callers = [("bob", bob)] if needs == READ else [("bob", bob), ("carol", carol)]
            for who, client in callers:
                result = await client.call_tool(tool, arguments)
                assert result.is_error, (tool, who, text_of(result))
                expected = (
                    "affects every namespace" if needs == OPERATOR else f"no {needs} grant for namespace {namespace!r}"
                )
                assert expected in text_of(result), (tool, who, text_of(result))
        for tool, (arguments, argument, needs) in MEMORY_CALLS.items():
            callers = [("bob", bob)] if needs == READ else [("bob", bob), ("carol", carol)]
            for who, client in callers:
                named = namespace if argument == "cube_id" else [namespace]
                result = await client.call_tool(tool, {**arguments, argument: named})
                assert result.is_error, (tool, who, text_of(result))
                assert f"no {needs} grant for namespace {namespace!r}" in text_of(result), (tool, who)
                assert SECRET not in text_of(result)
    assert await _state(mcp_server, namespace) == before


async def test_memory_tools_without_a_namespace_reach_only_the_callers_own(mcp_server: McpServer) -> None:
    """Unnamed, a search reaches every namespace the key may read, a delete by id every one it may
    write: none of Alice's."""
    namespace = mcp_server.namespace("alice")
    before, memory_id = await _seed(mcp_server, namespace)
    assert memory_id in before["memories"]
    async with mcp_server.client("bob") as bob, mcp_server.client("carol") as carol:
        for tool in ("search_memories", "search_memory"):
            found = await bob.call_tool(tool, {"query": "vault code"})
            assert not found.is_error, text_of(found)
            assert SECRET not in json.dumps(found.structured_content)
        for client in (bob, carol):  # carol may read Alice's memories, not delete them
            refused = await client.call_tool("delete_memory", {"memory_ids": [memory_id]})
            assert (refused.structured_content or {}).get("deleted") == [], text_of(refused)
    assert await _state(mcp_server, namespace) == before


async def test_account_tools_reach_only_the_callers_own_account(mcp_server: McpServer) -> None:
    async with mcp_server.client("bob", tools="agents") as bob:
        found = await bob.call_tool("search_agents", {"query": ""})
        assert not found.is_error, text_of(found)
        assert all(card["hasPurchased"] is False for card in (found.structured_content or {})["agents"])
