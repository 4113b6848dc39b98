# Chinese text is written with its own full-width punctuation.
# ruff: noqa: RUF001
"""The memory tools (category `memory`, the MemOS MCP servers' names and arguments) against a real
server with the official SDK, over Streamable HTTP and once over stdio: memories written in English
and Chinese found by paraphrase and across languages, a conversation recorded with add_message and
found with search_memory, deletion honoured by the next search, grants and namespace isolation.
Every structured result is checked against the tool's listed outputSchema."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from access.permissions import Access, Grant, Permission
from mcp_endpoint import registry
from mcp_endpoint.registry import ToolContext
from mcp_endpoint.tools import memory as memory_tools  # importing registers the tools
from tests.mcp_endpoint.conftest import MEMORY_TOOLS, McpServer, check_declaration
from tests.mcp_endpoint.test_stdio import all_tools, stdio_client
from tests.mcp_endpoint.test_streamable_http import all_tool_names
from tests.mcp_endpoint.test_vector_tools import Checked

SOFIA = "My daughter Sofia is allergic to peanuts, so we never buy satay sauce."
RUNNING = "我每天早上六点去公园跑步，然后喝一杯豆浆。"  # I run in the park at six every morning, then drink soy milk.
GUITAR = "I started learning the classical guitar last winter."

FIRST = "Hi! Can you help me plan my trip to Japan?"
TRIP = [
    {"role": "user", "content": FIRST, "chat_time": "2026-03-01 09:00:00.000"},
    {"role": "assistant", "content": "Of course! When are you going, and where will you stay?"},
    {"role": "user", "content": "I land in Tokyo on March 3rd and booked a hotel in Shinjuku for a week."},
    {"role": "assistant", "content": "   "},  # empty: skipped
    {"role": "assistant", "content": "Shinjuku is a great base: the JR Yamanote line stops there."},
]


def ids(result: dict[str, Any], key: str = "results") -> list[str]:
    return [hit["id"] for hit in result[key]]


def texts(result: dict[str, Any]) -> list[str]:
    return [hit["memory"] for hit in result["memories"]]


# --- declarations --------------------------------------------------------------------------------


def test_memory_declarations():
    declared = {tool.name: tool for tool in registry.tools(("memory",))}
    assert list(declared) == [
        "add_memory",
        "search_memories",
        "chat",
        "add_message",
        "search_memory",
        "delete_memory",
        "memory_history",
        "update_memory",
        "restore_memory",
        "supersede_memory",
    ]
    assert set(declared) == MEMORY_TOOLS
    for tool in declared.values():
        assert tool.category == memory_tools.CATEGORY == "memory"
        check_declaration(tool)
    hints = {
        name: (
            tool.annotations["readOnlyHint"],
            tool.annotations["destructiveHint"],
            tool.annotations["idempotentHint"],
        )
        for name, tool in declared.items()
    }
    assert hints == {
        "add_memory": (False, False, False),
        "search_memories": (True, False, True),
        "chat": (False, False, False),
        "add_message": (False, False, False),
        "search_memory": (True, False, True),
        "delete_memory": (False, True, True),
        "memory_history": (True, False, True),
        "update_memory": (False, True, True),
        "restore_memory": (False, True, False),
        "supersede_memory": (False, True, False),
    }


def test_memos_argument_names():
    def properties(name: str) -> tuple[set[str], list[str]]:
        tool = registry.get(name)
        assert tool is not None
        return set(tool.input_schema["properties"]), tool.input_schema.get("required", [])

    # MemOS examples/mem_mcp/simple_fastmcp_serve.py, plus tags and ttl_ms.
    # Plus dedupe (ours): false stores a text that repeats a current memory; validFrom/validTo
    # and asOf/includeExpired: facts in time; infer (ours): extract its facts.
    assert properties("add_memory") == (
        {"memory_content", "user_id", "cube_id", "tags", "ttl_ms", "dedupe", "validFrom", "validTo", "infer"},
        ["memory_content"],
    )
    assert properties("search_memories") == (
        {"query", "user_id", "cube_ids", "top_k", "asOf", "includeExpired"},
        ["query"],
    )
    cube_ids = registry.get("search_memories").input_schema["properties"]["cube_ids"]
    assert cube_ids["anyOf"] == [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
    # @memtensor/memos-api-mcp.
    # Plus user_id, MEMOS_USER_ID as an argument: one key may serve several users.
    assert properties("add_message") == (
        {"conversation_first_message", "messages", "user_id", "dedupe", "infer"},
        ["conversation_first_message", "messages"],
    )
    message = registry.get("add_message").input_schema["properties"]["messages"]["items"]
    assert set(message["properties"]) == {"role", "content", "chat_time"}
    assert message["required"] == ["role", "content"]
    assert properties("search_memory") == (
        {
            "query",
            "conversation_first_message",
            "memory_limit_number",
            "relativity",
            "filter",
            "knowledgebase_ids",
            "user_id",
            "asOf",
            "includeExpired",
        },
        ["query"],
    )
    limit = registry.get("search_memory").input_schema["properties"]["memory_limit_number"]
    assert (limit["minimum"], limit["maximum"]) == (1, 25)
    # Plus purge (erase with the history).
    assert properties("delete_memory") == ({"memory_ids", "user_id", "purge"}, ["memory_ids"])


def test_the_rest_of_memos_search_arguments_are_ignored():
    tool = registry.get("search_memory")
    assert tool is not None
    parsed = tool.arguments.model_validate(
        {"query": "x", "include_preference": True, "preference_limit_number": 3, "include_tool_memory": False}
    )
    assert parsed.model_dump(exclude_unset=True) == {"query": "x"}


def test_conversation_ids_follow_memos_but_use_the_key():
    user = Access(grants=(Grant("*", Permission.READ),), user_id=7, key_id=70)
    key_only = Access(grants=(), key_id=70)
    local = Access(grants=())
    assert memory_tools.conversation_id(user, FIRST) == hashlib.md5(f"user:7\n{FIRST}".encode()).hexdigest()[:12]
    assert memory_tools.conversation_id(key_only, FIRST) == hashlib.md5(f"key:70\n{FIRST}".encode()).hexdigest()[:12]
    assert memory_tools.conversation_id(local, FIRST) == hashlib.md5(f"local\n{FIRST}".encode()).hexdigest()[:12]
    assert memory_tools.conversation_id(user, FIRST) != memory_tools.conversation_id(user, FIRST + "?")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            {"tags": ["a"], "created_at": {"gt": "2026"}},
            "filter supports only the keys 'tags' and 'role', not 'created_at'",
        ),
        ({"tags": [1]}, "filter.tags must be a tag or a list of tags"),
        ({"role": ""}, "filter.role must be a role"),
    ],
)
def test_unsupported_filters_are_refused(value, message):
    tool = registry.get("search_memory")
    assert tool is not None
    ctx = ToolContext(Access(grants=(Grant("*", Permission.WRITE),), default_namespace="default"), None)
    with pytest.raises(Exception, match=re.escape(message)):
        tool.handler(ctx, tool.arguments.model_validate({"query": "x", "filter": value}))


# --- over the wire -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_category_lists_exactly_the_memory_tools(mcp_server: McpServer) -> None:
    async with mcp_server.client("alice", namespace=mcp_server.namespace("alice"), tools="memory") as client:
        listed = await all_tool_names(client)
        assert listed == [
            "add_memory",
            "search_memories",
            "chat",
            "add_message",
            "search_memory",
            "delete_memory",
            "memory_history",
            "update_memory",
            "restore_memory",
            "supersede_memory",
        ]
    async with mcp_server.client("alice", tools="memory,vectors", mode="legacy") as client:
        assert len(await all_tool_names(client)) == 22


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_memories_are_found_by_meaning_across_languages(mcp_server: McpServer, mode: str) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace, mode=mode) as client:
        tools = await Checked.of(client)
        sofia = await tools.ok("add_memory", {"memory_content": SOFIA, "user_id": "parent-1", "tags": ["health"]})
        assert re.fullmatch(r"mem_[1-9][0-9]*", sofia["id"])
        assert sofia["namespace"] == namespace
        assert sofia["createdAt"].endswith("Z")
        assert sofia["expiresAt"] is None
        running = await tools.ok("add_memory", {"memory_content": RUNNING, "cube_id": namespace})
        guitar = await tools.ok("add_memory", {"memory_content": GUITAR, "ttl_ms": 3_600_000})
        assert guitar["expiresAt"] is not None

        # search_memories (MemOS): paraphrases, both ways across languages.
        food = await tools.ok("search_memories", {"query": "Which foods must my child avoid?", "cube_ids": namespace})
        assert ids(food)[0] == sofia["id"]
        top = food["results"][0]
        assert (top["text"], top["namespace"], top["tags"], top["actorId"], top["entityName"]) == (
            SOFIA,
            namespace,
            ["health"],
            "parent-1",
            None,
        )
        assert 0 < top["score"] <= 1
        chinese_to_english = await tools.ok("search_memories", {"query": "我女儿对什么过敏？", "cube_ids": [namespace]})
        assert ids(chinese_to_english)[0] == sofia["id"]
        english_to_chinese = await tools.ok(
            "search_memories", {"query": "What is my morning exercise routine?", "cube_ids": namespace, "top_k": 1}
        )
        assert ids(english_to_chinese) == [running["id"]]
        chinese = await tools.ok("search_memories", {"query": "我早上做什么运动？", "cube_ids": namespace})
        assert ids(chinese)[0] == running["id"]
        # No cube_ids: every namespace alice can read, this one included.
        everywhere = await tools.ok("search_memories", {"query": "peanut allergy of my daughter", "top_k": 50})
        assert sofia["id"] in ids(everywhere)
        # user_id without cube_ids: only the memories recorded with that user_id (tests/mcp_endpoint/test_memos_users.py).
        by_parent = await tools.ok("search_memories", {"query": "peanuts", "user_id": "parent-1"})
        assert ids(by_parent) == [sofia["id"]]
        assert (await tools.ok("search_memories", {"query": "peanuts", "user_id": "someone-else"}))["results"] == []

        # search_memory (memos-api-mcp): this connection's namespace.
        found = await tools.ok(
            "search_memory", {"query": "Does my kid have any food allergies?", "conversation_first_message": "hello"}
        )
        assert found["query"] == "Does my kid have any food allergies?"
        assert found["memories"][0] == {
            "id": sofia["id"],
            "memory": SOFIA,
            "score": found["memories"][0]["score"],
            "createdAt": sofia["createdAt"],
            "tags": ["health"],
            "namespace": namespace,
            "entityName": None,
            "mentionCount": 1,
            "lastSeen": sofia["createdAt"],
            "validFrom": sofia["createdAt"],
            "validTo": None,
            "current": True,
            "supersedes": None,
            "supersededBy": None,
            "sourceId": None,
            "extractedBy": None,
        }
        assert len(found["memories"]) == 3  # fewer memories than the default limit of 6
        across = await tools.ok("search_memory", {"query": "孩子不能吃什么？"})
        assert texts(across)[0] == SOFIA
        hobby = await tools.ok("search_memory", {"query": "Which instrument am I learning?", "memory_limit_number": 1})
        assert texts(hobby) == [GUITAR]
        strict = await tools.ok("search_memory", {"query": "Which instrument am I learning?", "relativity": 0.99})
        assert strict["memories"] == []

        # Knowledge-graph observations are memories too; search tells which entity they belong to.
        await tools.ok(
            "create_entities",
            {"entities": [{"name": "Sofia", "entityType": "person", "observations": ["plays football on Saturdays"]}]},
        )
        sport = await tools.ok("search_memory", {"query": "What sport does my daughter play?"})
        assert (sport["memories"][0]["memory"], sport["memories"][0]["entityName"]) == (
            "plays football on Saturdays",
            "Sofia",
        )

        # Bad arguments are tool errors.
        empty = await tools.fails("add_memory", {"memory_content": ""})
        assert empty.startswith("Input validation error")
        assert "memory_content" in empty
        too_many = await tools.fails("search_memories", {"query": "x", "top_k": 51})
        assert too_many.startswith("Input validation error")
        assert "namespace 'not a namespace' is not valid" in await tools.fails(
            "add_memory", {"memory_content": "x", "cube_id": "not a namespace"}
        )
        assert "filter supports only" in await tools.fails("search_memory", {"query": "x", "filter": {"and": []}})

    assert tools.called >= {"add_memory", "search_memories", "search_memory"}


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_conversation_recorded_searched_and_deleted(mcp_server: McpServer, mode: str) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace, mode=mode) as client:
        tools = await Checked.of(client)
        recorded = await tools.ok("add_message", {"conversation_first_message": FIRST, "messages": TRIP})
        assert recorded["added"] == 4  # the blank message is skipped
        assert len(recorded["memoryIds"]) == 4
        assert recorded["namespace"] == namespace
        conversation = recorded["conversationId"]
        assert re.fullmatch(r"[0-9a-f]{12}", conversation)
        # The same first message names the same conversation.
        more = await tools.ok(
            "add_message",
            {
                "conversation_first_message": FIRST,
                "messages": [{"role": "user", "content": "Also, I am vegetarian, so I need restaurant tips."}],
            },
        )
        assert more["conversationId"] == conversation
        assert (await tools.ok("add_message", {"conversation_first_message": FIRST, "messages": [TRIP[3]]}))[
            "added"
        ] == 0

        found = await tools.ok(
            "search_memory", {"query": "Which hotel area did I book in Tokyo?", "conversation_first_message": FIRST}
        )
        hotel = found["memories"][0]
        assert hotel["memory"] == TRIP[2]["content"]
        assert hotel["id"] == recorded["memoryIds"][2]
        assert hotel["tags"] == ["role:user", f"conversation:{conversation}"]
        assert hotel["namespace"] == namespace
        # The filter subset: a role, or tags.
        said_by_assistant = await tools.ok(
            "search_memory", {"query": "Which hotel area did I book in Tokyo?", "filter": {"role": "assistant"}}
        )
        assert texts(said_by_assistant)[0] == TRIP[4]["content"]
        assert all("role:assistant" in memory["tags"] for memory in said_by_assistant["memories"])
        assert len(said_by_assistant["memories"]) == 2
        tagged = await tools.ok(
            "search_memory",
            {"query": "food", "filter": {"tags": f"conversation:{conversation}"}, "memory_limit_number": 25},
        )
        assert len(tagged["memories"]) == 5
        assert (await tools.ok("search_memory", {"query": "food", "filter": {"tags": ["conversation:000000000000"]}}))[
            "memories"
        ] == []
        # The same in Chinese.
        zh = await tools.ok("search_memory", {"query": "我订了一周的酒店在哪里？"})
        assert texts(zh)[0] == TRIP[2]["content"]

        # delete_memory: gone from the very next search.
        deleted = await tools.ok(
            "delete_memory", {"memory_ids": [hotel["id"], "mem_999999999999", "hotel", hotel["id"]]}
        )
        assert deleted == {"deleted": [hotel["id"]], "notDeleted": ["mem_999999999999", "hotel"]}
        after = await tools.ok(
            "search_memory", {"query": "Which hotel area did I book in Tokyo?", "memory_limit_number": 25}
        )
        assert hotel["id"] not in [memory["id"] for memory in after["memories"]]
        assert TRIP[2]["content"] not in texts(after)
        everywhere = await tools.ok("search_memories", {"query": "hotel in Shinjuku for a week", "top_k": 50})
        assert hotel["id"] not in ids(everywhere)
        # Idempotent: deleting again reports it as not deleted.
        assert await tools.ok("delete_memory", {"memory_ids": [hotel["id"]]}) == {
            "deleted": [],
            "notDeleted": [hotel["id"]],
        }
        assert await tools.ok("delete_memory", {"memory_ids": []}) == {"deleted": [], "notDeleted": []}

        # A knowledge-graph observation is not a free memory: delete_memory leaves it.
        await tools.ok(
            "create_entities",
            {"entities": [{"name": "Shinjuku", "entityType": "place", "observations": ["busy station"]}]},
        )
        station = (await tools.ok("search_memory", {"query": "busy station"}))["memories"][0]
        assert station["entityName"] == "Shinjuku"
        assert await tools.ok("delete_memory", {"memory_ids": [station["id"]]}) == {
            "deleted": [],
            "notDeleted": [station["id"]],
        }

        missing = await tools.fails(
            "add_message", {"conversation_first_message": FIRST, "messages": [{"role": "user"}]}
        )
        assert missing.startswith("Input validation error")
        assert "messages.0.content" in missing

    assert tools.called >= {"add_message", "search_memory", "delete_memory", "search_memories"}


@pytest.mark.anyio
async def test_memories_stay_in_their_namespace(mcp_server: McpServer) -> None:
    alice_space = mcp_server.namespace("alice")
    secret = "The launch code for project Kestrel is hidden under the blue vase."
    async with mcp_server.client("alice", namespace=alice_space) as alice_client:
        alice = await Checked.of(alice_client)
        written = await alice.ok("add_memory", {"memory_content": secret})
        message = await alice.ok(
            "add_message",
            {
                "conversation_first_message": "secrets",
                "messages": [{"role": "user", "content": "Kestrel ships in May."}],
            },
        )
        alice_conversation = message["conversationId"]
        assert (await alice.ok("search_memory", {"query": "where is the launch code hidden?"}))["memories"][0][
            "id"
        ] == written["id"]

    no_read = f"This API key has no read grant for namespace {alice_space!r}."
    no_write = f"This API key has no write grant for namespace {alice_space!r}."
    async with mcp_server.client("bob") as bob_client:  # bob's default namespace
        bob = await Checked.of(bob_client)
        # Every namespace bob can read: none of alice's.
        everywhere = await bob.ok("search_memories", {"query": "where is the launch code hidden?", "top_k": 50})
        assert all(hit["namespace"].startswith("org:bob:") for hit in everywhere["results"])
        assert written["id"] not in ids(everywhere)
        own = await bob.ok("search_memory", {"query": "where is the launch code hidden?", "knowledgebase_ids": ["all"]})
        assert secret not in texts(own)
        assert await bob.fails("search_memories", {"query": "launch code", "cube_ids": alice_space}) == no_read
        assert await bob.fails(
            "search_memories", {"query": "launch code", "cube_ids": ["org:bob:notes", alice_space]}
        ) == (no_read)
        assert await bob.fails("search_memory", {"query": "launch code", "knowledgebase_ids": [alice_space]}) == no_read
        assert await bob.fails("add_memory", {"memory_content": "planted", "cube_id": alice_space}) == no_write
        # Bob cannot delete alice's memory; the answer does not say whether it exists.
        assert await bob.ok("delete_memory", {"memory_ids": [written["id"]]}) == {
            "deleted": [],
            "notDeleted": [written["id"]],
        }
        # The same first message is a different conversation for a different key owner.
        bobs = await bob.ok(
            "add_message", {"conversation_first_message": "secrets", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert bobs["conversationId"] != alice_conversation
        assert bobs["namespace"] == "org:bob:notes"

    async with mcp_server.client("bob", namespace=alice_space) as bob_client:
        bob = await Checked.of(bob_client)
        assert await bob.fails("search_memory", {"query": "launch code"}) == no_read
        assert await bob.fails("add_memory", {"memory_content": "planted"}) == no_write
        assert (
            await bob.fails(
                "add_message", {"conversation_first_message": "x", "messages": [{"role": "user", "content": "planted"}]}
            )
            == no_write
        )

    async with mcp_server.client("carol", namespace=alice_space) as carol_client:
        carol = await Checked.of(carol_client)
        # Carol reads alice's namespaces...
        assert (
            ids(
                await carol.ok(
                    "search_memories", {"query": "where is the launch code hidden?", "cube_ids": alice_space}
                )
            )[0]
            == written["id"]
        )
        assert texts(await carol.ok("search_memory", {"query": "where is the launch code hidden?"}))[0] == secret
        # ...and writes nothing there.
        assert await carol.fails("add_memory", {"memory_content": "carol was here"}) == no_write
        assert await carol.fails("add_memory", {"memory_content": "carol was here", "cube_id": alice_space}) == no_write
        assert (
            await carol.fails(
                "add_message", {"conversation_first_message": "x", "messages": [{"role": "user", "content": " "}]}
            )
            == no_write
        )
        assert await carol.ok("delete_memory", {"memory_ids": [written["id"]]}) == {
            "deleted": [],
            "notDeleted": [written["id"]],
        }

    async with mcp_server.client("alice", namespace=alice_space) as alice_client:
        alice = await Checked.of(alice_client)
        still = await alice.ok("search_memory", {"query": "where is the launch code hidden?"})
        assert texts(still)[0] == secret
        assert "planted" not in texts(still)
        assert "carol was here" not in texts(still)


@pytest.mark.anyio
async def test_memory_tools_over_stdio(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("root")
    async with stdio_client(mcp_server, "--namespace", namespace, "--tools", "memory") as client:
        listed = await all_tools(client)
        assert [tool.name for tool in listed] == [
            "add_memory",
            "search_memories",
            "chat",
            "add_message",
            "search_memory",
            "delete_memory",
            "memory_history",
            "update_memory",
            "restore_memory",
            "supersede_memory",
        ]
        tools = await Checked.of(client)
        recorded = await tools.ok("add_message", {"conversation_first_message": FIRST, "messages": TRIP})
        assert recorded["namespace"] == namespace
        # A keyless stdio session is the local operator.
        assert recorded["conversationId"] == hashlib.md5(f"local\n{FIRST}".encode()).hexdigest()[:12]
        found = await tools.ok("search_memory", {"query": "Which hotel area did I book in Tokyo?"})
        assert found["memories"][0]["id"] == recorded["memoryIds"][2]
        added = await tools.ok("add_memory", {"memory_content": RUNNING})
        assert (await tools.ok("search_memories", {"query": "morning jog", "cube_ids": namespace}))["results"][0][
            "id"
        ] == added["id"]
        deleted = await tools.ok("delete_memory", {"memory_ids": [added["id"], *recorded["memoryIds"]]})
        assert deleted == {"deleted": [added["id"], *recorded["memoryIds"]], "notDeleted": []}
        assert (await tools.ok("search_memory", {"query": "Which hotel area did I book in Tokyo?"}))["memories"] == []


# --- chat (MemOS example server), answered through agents.chat ------------------------------------


def test_chat_follows_the_memos_example_server():
    tool = registry.get("chat")
    assert tool is not None
    check_declaration(tool)
    # MemOS: chat(query, user_id); plus cube_ids, top_k and add_message_on_answer.
    assert set(tool.input_schema["properties"]) == {"query", "user_id", "cube_ids", "top_k", "add_message_on_answer"}
    assert tool.input_schema["required"] == ["query"]
    assert set(tool.output_schema["properties"]) == {"response", "reasoning", "memories", "recorded", "notRecorded"}


@pytest.mark.anyio
async def test_chat_answers_from_memory_and_records_no_question_without_a_model(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    question = "What is my daughter allergic to?"
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        sofia = await tools.ok("add_memory", {"memory_content": SOFIA})
        await tools.ok("add_memory", {"memory_content": GUITAR})
        # No model is configured on this server: the extractive provider lists the memories found.
        answer = await tools.ok("chat", {"query": question, "user_id": "parent-1", "cube_ids": namespace, "top_k": 2})
        assert answer["response"].startswith("No language model is configured on this server")
        assert answer["response"].splitlines()[1] == f"- {SOFIA}"
        assert answer["reasoning"] == ""
        assert answer["memories"][0] == sofia["id"]
        assert len(answer["memories"]) == 2
        # Nothing is recorded: not the recitation (memories stored already), not the question (a
        # question is not a fact: it would come back as a remembered one).
        assert answer["recorded"] == []
        assert answer["notRecorded"].startswith("no language model is configured on this server")
        mine = await tools.ok("search_memories", {"query": question, "cube_ids": namespace})
        assert question not in [hit["text"] for hit in mine["results"]]
        quiet = await tools.ok("chat", {"query": "Which instrument?", "add_message_on_answer": False})
        assert (quiet["recorded"], quiet["notRecorded"]) == ([], "")
        assert "Input validation error" in await tools.fails("chat", {"query": "x", "top_k": 51})
        assert "Input validation error" in await tools.fails("chat", {"query": ""})

    no_read = f"This API key has no read grant for namespace {namespace!r}."
    no_write = f"This API key has no write grant for namespace {namespace!r}."
    async with mcp_server.client("bob") as bob_client:
        bob = await Checked.of(bob_client)
        theirs = await bob.ok("chat", {"query": question})
        assert SOFIA not in theirs["response"]
        assert sofia["id"] not in theirs["memories"]
        assert await bob.fails("chat", {"query": question, "cube_ids": [namespace]}) == no_read
    async with mcp_server.client("carol", namespace=namespace) as carol_client:
        carol = await Checked.of(carol_client)
        # Carol reads alice's namespace: she may ask, but not record there.
        assert await carol.fails("chat", {"query": question}) == no_write
        # Asked in this namespace: carol reads every org:alice namespace, and other tests of this
        # server left the same text in theirs.
        read_only = await carol.ok("chat", {"query": question, "cube_ids": namespace, "add_message_on_answer": False})
        assert read_only["memories"][0] == sofia["id"]
    assert tools.called >= {"chat"}


@pytest.mark.django_db
def test_chat_with_a_model_and_when_it_fails(alice_key, llm) -> None:
    from tests.mcp_endpoint.test_protocol import ready, request, send
    from tests.memory import helpers as memories

    memories.write_memory(alice_key.key.to_access(), namespace=alice_key.namespace, text=SOFIA, actor_id="parent-1")
    connection = ready(alice_key)

    def call(arguments: dict[str, Any]) -> dict[str, Any]:
        reply = send(connection, request("tools/call", {"name": "chat", "arguments": arguments}))
        assert reply is not None
        return reply["result"]

    llm.answer = "<think>The memory mentions peanuts.</think>Peanuts."
    answered = call({"query": "What is my daughter allergic to?", "user_id": "parent-1"})
    assert not answered["isError"]
    value = answered["structuredContent"]
    assert (value["response"], value["reasoning"]) == ("Peanuts.", "The memory mentions peanuts.")
    assert len(value["recorded"]) == 2  # the question and the answer
    assert SOFIA in llm.requests[-1]["messages"][0]["content"]

    llm.fail_status, llm.fail_times = 500, 1
    failed = call({"query": "Again?"})
    assert failed["isError"] is True
    assert "LLM provider" in failed["content"][0]["text"]
