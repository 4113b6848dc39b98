"""Dedupe through MCP, against a real server with the official SDK: add_memory and add_message
fold a repeat into the memory it repeats (duplicateOf, mentionCount, lastSeen in search results),
never across user_ids or keys, not with `dedupe: false`; the graph's add_observations (the
official tool, its arguments unchanged) and upsert_entities (with its `dedupe` flag) fold an
entity's repeated observations. Every structured result is checked against its outputSchema."""

from __future__ import annotations

import pytest

from tests.mcp_endpoint.conftest import McpServer
from tests.mcp_endpoint.test_vector_tools import Checked

PORT = "The staging database runs on port 5432."
PORT_AGAIN = "Please remember that the staging database runs on port 5432!"
OTHER_PORT = "The staging database runs on port 5433."


@pytest.mark.anyio
async def test_add_memory_folds_a_repeat_per_user_and_key(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        first = await tools.ok("add_memory", {"memory_content": PORT, "user_id": "u1"})
        assert first["duplicateOf"] is None
        again = await tools.ok("add_memory", {"memory_content": PORT_AGAIN, "user_id": "u1"})
        assert again["duplicateOf"] == again["id"] == first["id"]
        near = await tools.ok("add_memory", {"memory_content": OTHER_PORT, "user_id": "u1"})
        assert near["duplicateOf"] is None
        assert near["id"] != first["id"]
        # Another user of the same key: their own memory, never folded into u1's.
        theirs = await tools.ok("add_memory", {"memory_content": PORT, "user_id": "u2"})
        assert theirs["duplicateOf"] is None
        assert theirs["id"] != first["id"]
        forced = await tools.ok("add_memory", {"memory_content": PORT, "user_id": "u1", "dedupe": False})
        assert forced["duplicateOf"] is None
        assert forced["id"] != first["id"]

        found = await tools.ok("search_memories", {"query": "staging database port", "user_id": "u1"})
        counts = {hit["id"]: hit["mentionCount"] for hit in found["results"]}
        assert counts == {first["id"]: 2, near["id"]: 1, forced["id"]: 1}
        hit = next(hit for hit in found["results"] if hit["id"] == first["id"])
        assert hit["lastSeen"] >= hit["createdAt"]
        memos = await tools.ok("search_memory", {"query": "staging database port", "user_id": "u1"})
        assert {memory["id"]: memory["mentionCount"] for memory in memos["memories"]} == counts

    async with mcp_server.client("bob", namespace=mcp_server.namespace("bob")) as client:
        bob = await Checked.of(client)
        mine = await bob.ok("add_memory", {"memory_content": PORT, "user_id": "u1"})
        assert mine["duplicateOf"] is None
        assert mine["id"] not in {first["id"], theirs["id"]}


@pytest.mark.anyio
async def test_add_message_reports_repeats_message_by_message(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    messages = [
        {"role": "user", "content": PORT},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "the staging database runs on port 5432"},
    ]
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        first = await tools.ok("add_message", {"conversation_first_message": PORT, "messages": messages})
        assert first["added"] == 2
        stored, noted, repeat = first["memoryIds"]
        assert first["duplicateOf"] == [None, None, stored]
        assert repeat == stored
        again = await tools.ok(
            "add_message", {"conversation_first_message": PORT, "messages": [{"role": "user", "content": PORT_AGAIN}]}
        )
        assert (again["added"], again["memoryIds"], again["duplicateOf"]) == (0, [stored], [stored])
        kept = await tools.ok(
            "add_message",
            {"conversation_first_message": PORT, "messages": [{"role": "user", "content": PORT}], "dedupe": False},
        )
        assert kept["added"] == 1
        assert kept["duplicateOf"] == [None]
        assert kept["memoryIds"] != [stored]
        found = await tools.ok("search_memory", {"query": "staging database port"})
        counts = {memory["id"]: memory["mentionCount"] for memory in found["memories"]}
        assert counts[stored] == 3
        assert noted not in counts or counts[noted] == 1


@pytest.mark.anyio
async def test_graph_tools_fold_an_entitys_repeated_observations(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        await tools.ok(
            "create_entities",
            {
                "entities": [
                    {"name": "Ada", "entityType": "person", "observations": ["Ada's favourite colour is blue."]}
                ]
            },
        )
        added = await tools.ok(
            "add_observations",
            {"observations": [{"entityName": "Ada", "contents": ["Ada's favorite color is blue!", "Ada likes tea."]}]},
        )
        assert added["results"] == [{"entityName": "Ada", "addedObservations": ["Ada likes tea."]}]
        upserted = await tools.ok(
            "upsert_entities",
            {"entities": [{"name": "Ada", "entityType": "person", "observations": ["ada likes tea"]}]},
        )
        assert upserted["updated"] == [{"name": "Ada", "addedObservations": []}]
        forced = await tools.ok(
            "upsert_entities",
            {"entities": [{"name": "Ada", "entityType": "person", "observations": ["ada likes tea"]}], "dedupe": False},
        )
        assert forced["updated"] == [{"name": "Ada", "addedObservations": ["ada likes tea"]}]
        opened = await tools.ok("open_nodes", {"names": ["Ada"]})
        assert opened["entities"][0]["observations"] == [
            "Ada's favourite colour is blue.",
            "Ada likes tea.",
            "ada likes tea",
        ]
