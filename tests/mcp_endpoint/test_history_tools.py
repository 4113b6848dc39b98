"""memory_history, update_memory, restore_memory, entity_history and delete_memory's purge against a
real server with the official SDK: what each records (surface mcp, the caller's key), deletes
through the official tools undone, and two tenants that cannot read, change or restore each
other's memories. Every structured result is checked against the tool's listed outputSchema."""

from __future__ import annotations

import pytest

from tests.mcp_endpoint.conftest import McpServer
from tests.mcp_endpoint.test_vector_tools import Checked

pytestmark = pytest.mark.anyio

ADA = {"name": "Ada", "entityType": "person", "observations": ["wrote the first program", "born 1815"]}
BABBAGE = {"name": "Babbage", "entityType": "person", "observations": ["designed the engine"]}
KNOWS = {"from": "Ada", "to": "Babbage", "relationType": "worked with"}


async def test_update_history_delete_and_restore_a_memory(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        written = await tools.ok("add_memory", {"memory_content": "the standup is at 9:30", "user_id": "u1"})
        memory = written["id"]
        updated = await tools.ok("update_memory", {"id": memory, "text": "the standup moved to 10:00"})
        assert updated == {"id": memory, "text": "the standup moved to 10:00", "namespace": namespace, "version": 2}

        found = await tools.ok("search_memories", {"query": "standup 10:00", "cube_ids": [namespace]})
        assert found["results"][0]["id"] == memory
        assert found["results"][0]["text"] == "the standup moved to 10:00"

        history = await tools.ok("memory_history", {"id": memory})
        update, create = history["versions"]
        assert (update["action"], update["surface"], update["operation"]) == ("update", "mcp", "memory_update")
        assert update["before"]["text"] == "the standup is at 9:30"
        assert update["after"]["text"] == "the standup moved to 10:00"
        assert create["actorId"] == "u1"
        assert create["key"].startswith("key:")
        assert mcp_server.keys["alice"].startswith(f"mh_{create['key'][4:]}")

        deleted = await tools.ok("delete_memory", {"memory_ids": [memory]})
        assert deleted == {"deleted": [memory], "notDeleted": []}
        restored = await tools.ok("restore_memory", {"id": memory})
        assert (restored["id"], restored["restoredFrom"], restored["version"]) == (memory, 3, 4)
        assert restored["state"]["text"] == "the standup moved to 10:00"
        back = await tools.ok("search_memory", {"query": "when is the standup"})
        assert memory in [hit["id"] for hit in back["memories"]]

        older = await tools.ok("restore_memory", {"id": memory, "version": 1})
        assert older["state"]["text"] == "the standup is at 9:30"
        assert [v["action"] for v in (await tools.ok("memory_history", {"id": memory}))["versions"]] == [
            "restore",
            "restore",
            "delete",
            "update",
            "create",
        ]

        # Bad input: clear errors, nothing changed.
        assert "non-empty" in await tools.fails("update_memory", {"id": memory, "text": "  "})
        assert "no version 9" in await tools.fails("restore_memory", {"id": memory, "version": 9})
        assert "no memory" in await tools.fails("update_memory", {"id": "mem_999999999", "text": "x"})
        assert "give either id or entityName" in await tools.fails("memory_history", {})
        assert len((await tools.ok("memory_history", {"id": memory}))["versions"]) == 5


async def test_official_deletes_are_restorable_and_the_entity_history_reads_them(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        await tools.ok("create_entities", {"entities": [ADA, BABBAGE]})
        await tools.ok("create_relations", {"relations": [KNOWS]})
        before = await tools.ok("read_graph", {})
        deleted = await client.call_tool("delete_entities", {"entityNames": ["Ada"]})
        assert not deleted.is_error

        history = await tools.ok("memory_history", {"entityName": "Ada"})
        (ada,) = history["entities"]
        actions = [(v["kind"], v["action"]) for v in history["versions"]]
        assert actions[:4] == [("entity", "delete")] + [("observation", "delete")] * 2 + [("relation", "delete")]
        assert all(v["surface"] == "mcp" and v["operation"] == "delete_entities" for v in history["versions"][:4])
        assert history["versions"] == (await tools.ok("entity_history", {"name": "Ada"}))["versions"]

        restored = await tools.ok("restore_memory", {"id": ada})
        assert len(restored["alsoRestored"]) == 3
        assert await tools.ok("read_graph", {}) == before

        gone = await client.call_tool(
            "delete_observations", {"deletions": [{"entityName": "Ada", "observations": ["born 1815"]}]}
        )
        assert not gone.is_error
        fact = next(
            v["id"]
            for v in (await tools.ok("entity_history", {"name": "Ada"}))["versions"]
            if v["action"] == "delete" and v["kind"] == "observation"
        )
        await tools.ok("restore_memory", {"id": fact})
        assert await tools.ok("read_graph", {}) == before


async def test_purge_erases_the_memory_and_its_history(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        memory = (await tools.ok("add_memory", {"memory_content": "my passport number is X1234567"}))["id"]
        assert await tools.ok("delete_memory", {"memory_ids": [memory], "purge": True}) == {
            "deleted": [memory],
            "notDeleted": [],
        }
        assert "no history" in await tools.fails("memory_history", {"id": memory})
        assert "no memory, entity or relation" in await tools.fails("restore_memory", {"id": memory})


async def test_tenants_cannot_read_change_or_restore_each_others_memories(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as alice:
        tools = await Checked.of(alice)
        secret = (await tools.ok("add_memory", {"memory_content": "the vault code is 4417"}))["id"]
        gone = (await tools.ok("add_memory", {"memory_content": "the old vault code was 1111"}))["id"]
        await tools.ok("delete_memory", {"memory_ids": [gone]})
        await tools.ok("create_entities", {"entities": [ADA]})
        before = await tools.ok("memory_history", {"id": secret})

    async with mcp_server.client("bob") as bob, mcp_server.client("carol", namespace=namespace) as carol:
        bob_tools, carol_tools = await Checked.of(bob), await Checked.of(carol)
        for wire_id in (secret, gone):
            text = await bob_tools.fails("memory_history", {"id": wire_id})
            assert "4417" not in text
            assert "1111" not in text
        assert "no memory" in await bob_tools.fails("update_memory", {"id": secret, "text": "bob was here"})
        for tools in (bob_tools, carol_tools):  # carol may read Alice's namespace, not write it
            assert "no memory, entity or relation" in await tools.fails("restore_memory", {"id": gone})
            assert "no memory" in await tools.fails("update_memory", {"id": secret, "text": "changed"})
        assert "no read grant" in await bob_tools.fails("memory_history", {"entityName": "Ada", "namespace": namespace})
        # The graph tools act on the connection's namespace: Bob's own holds no Ada.
        assert "Entity with name Ada not found" in await bob_tools.fails("entity_history", {"name": "Ada"})
        # Carol reads the history: a read grant is enough.
        assert (await carol_tools.ok("memory_history", {"id": secret}))["versions"] == before["versions"]

    async with mcp_server.client("bob", namespace=namespace) as bob_there:
        refused = await bob_there.call_tool("entity_history", {"name": "Ada"})
        assert refused.is_error
        assert f"no read grant for namespace {namespace!r}" in str(refused.content[0])

    async with mcp_server.client("alice", namespace=namespace) as alice:
        tools = await Checked.of(alice)
        assert await tools.ok("memory_history", {"id": secret}) == before
        assert (await tools.ok("memory_history", {"id": gone}))["versions"][0]["action"] == "delete"
