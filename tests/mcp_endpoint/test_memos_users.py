"""MemOS users on one key, through the MemOS MCP tools (add_memory, search_memories, chat,
add_message, search_memory) on a real server with the official SDK: each user_id has its own
memories by default (those recorded with it in the connection's namespace, also named by the
user_id itself), a namespace named explicitly is shared, and no user_id reaches everything, as
before. The same model as `/product/*` (tests/compat/test_memos_users.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.mcp_endpoint.conftest import McpServer
from tests.mcp_endpoint.test_vector_tools import Checked

BLOOD = "My blood type is AB negative."
BIKE = "I cycle to work every day on a red bike."
RECIPE = "Grandma's lasagne needs three layers of bechamel."


def texts(result: dict[str, Any]) -> list[str]:
    return [hit["text"] for hit in result["results"]]


def memories(result: dict[str, Any]) -> list[str]:
    return [hit["memory"] for hit in result["memories"]]


@pytest.mark.anyio
async def test_memos_example_tools_keep_each_user_to_their_own(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    shared = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        blood = await tools.ok("add_memory", {"memory_content": BLOOD, "user_id": "alice-user"})
        bike = await tools.ok("add_memory", {"memory_content": BIKE, "user_id": "bob-user"})
        assert blood["namespace"] == bike["namespace"] == namespace
        recipe = await tools.ok("add_memory", {"memory_content": RECIPE, "user_id": "alice-user", "cube_id": shared})

        # search_memories without cube_ids: the user's own memories only.
        theirs = await tools.ok("search_memories", {"query": "What is my blood type?", "user_id": "bob-user"})
        assert texts(theirs) == [BIKE]
        mine = await tools.ok("search_memories", {"query": "How do I get to work?", "user_id": "alice-user"})
        assert texts(mine) == [BLOOD]
        # The user_id names the user's own memories where a namespace is expected.
        named = {"query": "blood type", "user_id": "bob-user", "cube_ids": "bob-user"}
        assert texts(await tools.ok("search_memories", named)) == [BIKE]
        # A namespace named explicitly is shared: every user of the key reads all of it.
        both = {"query": "blood type", "user_id": "bob-user", "cube_ids": namespace}
        assert set(texts(await tools.ok("search_memories", both))) == {BLOOD, BIKE}
        kitchen = {"query": "lasagne", "user_id": "bob-user", "cube_ids": [shared]}
        assert texts(await tools.ok("search_memories", kitchen)) == [RECIPE]
        assert texts(await tools.ok("search_memories", {"query": "lasagne", "user_id": "bob-user"})) == [BIKE]
        # No user_id: everything the key reads, as before.
        everyone = await tools.ok("search_memories", {"query": "blood type bike", "cube_ids": namespace})
        assert set(texts(everyone)) == {BLOOD, BIKE}

        # chat: grounded on the user's own memories only.
        asked = {"query": "What is my blood type?", "user_id": "bob-user", "add_message_on_answer": False}
        answer = await tools.ok("chat", asked)
        assert "AB negative" not in answer["response"]
        assert blood["id"] not in answer["memories"]
        assert answer["memories"] == [bike["id"]]
        own = await tools.ok("chat", {**asked, "user_id": "alice-user"})
        assert own["memories"] == [blood["id"]]
        cooking = {"query": "How do I make lasagne?", "user_id": "bob-user", "cube_ids": shared}
        assert (await tools.ok("chat", {**cooking, "add_message_on_answer": False}))["memories"] == [recipe["id"]]


@pytest.mark.anyio
async def test_memos_api_tools_keep_each_user_to_their_own(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    shared = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        first = "Hi, a question about my health."
        alices = await tools.ok(
            "add_message",
            {
                "conversation_first_message": first,
                "user_id": "alice-user",
                "messages": [{"role": "user", "content": BLOOD}],
            },
        )
        bobs = await tools.ok(
            "add_message",
            {
                "conversation_first_message": first,
                "user_id": "bob-user",
                "messages": [{"role": "user", "content": BIKE}],
            },
        )
        # The same first message from two users is two conversations.
        assert alices["conversationId"] != bobs["conversationId"]
        await tools.ok("add_memory", {"memory_content": RECIPE, "cube_id": shared})

        theirs = await tools.ok("search_memory", {"query": "What is my blood type?", "user_id": "bob-user"})
        assert memories(theirs) == [BIKE]
        mine = await tools.ok("search_memory", {"query": "How do I get to work?", "user_id": "alice-user"})
        assert memories(mine) == [BLOOD]
        # Other namespaces named in knowledgebase_ids are shared; the connection's stays the user's own.
        wider = {"query": "blood type lasagne", "user_id": "bob-user", "knowledgebase_ids": [shared]}
        assert set(memories(await tools.ok("search_memory", wider))) == {BIKE, RECIPE}
        # No user_id: the whole namespace, as before.
        assert set(memories(await tools.ok("search_memory", {"query": "blood type bike"}))) == {BLOOD, BIKE}


@pytest.mark.anyio
async def test_one_user_id_on_two_keys_is_two_users(mcp_server: McpServer) -> None:
    async with mcp_server.client("alice") as alice_client, mcp_server.client("bob") as bob_client:
        alice, bob = await Checked.of(alice_client), await Checked.of(bob_client)
        blood = await alice.ok("add_memory", {"memory_content": BLOOD, "user_id": "same-user"})
        found = await bob.ok(
            "search_memories", {"query": "What is my blood type?", "user_id": "same-user", "top_k": 50}
        )
        assert blood["id"] not in [hit["id"] for hit in found["results"]]
        answer = await bob.ok("chat", {"query": "What is my blood type?", "user_id": "same-user"})
        assert blood["id"] not in answer["memories"]
        searched = await bob.ok("search_memory", {"query": "What is my blood type?", "user_id": "same-user"})
        assert BLOOD not in memories(searched)


@pytest.mark.anyio
async def test_delete_memory_with_a_user_id_deletes_only_that_users_memories(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        blood = await tools.ok("add_memory", {"memory_content": BLOOD, "user_id": "alice-user"})
        bike = await tools.ok("add_memory", {"memory_content": BIKE, "user_id": "bob-user"})

        # bob-user cannot delete alice-user's memory, even knowing its id; his own goes.
        outcome = await tools.ok("delete_memory", {"memory_ids": [blood["id"], bike["id"]], "user_id": "bob-user"})
        assert outcome == {"deleted": [bike["id"]], "notDeleted": [blood["id"]]}
        mine = await tools.ok("search_memories", {"query": "What is my blood type?", "user_id": "alice-user"})
        assert texts(mine) == [BLOOD]
        # Without a user_id the key deletes anything it may write, as before.
        assert (await tools.ok("delete_memory", {"memory_ids": [blood["id"]]}))["deleted"] == [blood["id"]]
