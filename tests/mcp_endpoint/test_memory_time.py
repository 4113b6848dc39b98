"""Memories in time against a real server, driven by the official MCP SDK (and real HTTP for the
REST side): a current search hides a superseded memory, asOf finds the one valid then,
includeExpired both, marked; supersede_memory's conflict names the successor; two supersessions
of one memory at once (two MCP clients, two REST clients) leave exactly one current successor;
bad times are refused naming the field; two keys (and two user_ids of one key) never reach each
other's memories. Every structured result is checked against the tool's listed outputSchema."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx2
import pytest

from tests.mcp_endpoint.conftest import McpServer
from tests.mcp_endpoint.test_vector_tools import Checked

pytestmark = pytest.mark.anyio

PRIYA = "Dana's team lead is Priya"
MARCO = "Dana's team lead is Marco"
# The old fact was true from here (written with an explicit validFrom), the new one from now.
SINCE = "2024-01-15T00:00:00Z"
THEN = "2024-06-01"


def _ids(hits: list[dict[str, Any]]) -> list[str]:
    return [hit["id"] for hit in hits]


async def test_superseded_memories_in_current_past_and_every_search(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        written = await tools.ok("add_memory", {"memory_content": PRIYA, "validFrom": SINCE})
        assert (written["validFrom"], written["validTo"]) == (SINCE, None)
        old = written["id"]
        done = await tools.ok("supersede_memory", {"id": old, "text": MARCO})
        new = done["id"]
        assert (done["supersedes"], done["namespace"]) == (old, namespace)

        now = await tools.ok("search_memories", {"query": "who is Dana's team lead", "cube_ids": [namespace]})
        assert _ids(now["results"]) == [new]
        (hit,) = now["results"]
        assert (hit["current"], hit["validTo"], hit["supersedes"], hit["supersededBy"]) == (True, None, old, None)
        assert hit["validFrom"] == done["validFrom"]
        assert (hit["sourceId"], hit["extractedBy"]) == (None, None)

        then = await tools.ok(
            "search_memories", {"query": "who is Dana's team lead", "cube_ids": [namespace], "asOf": THEN}
        )
        assert _ids(then["results"]) == [old]
        (past,) = then["results"]
        assert (past["current"], past["validFrom"], past["validTo"]) == (False, SINCE, done["validFrom"])
        assert past["supersededBy"] == new

        every = await tools.ok(
            "search_memories", {"query": "who is Dana's team lead", "cube_ids": [namespace], "includeExpired": True}
        )
        marked = {hit["id"]: hit["current"] for hit in every["results"]}
        assert marked == {old: False, new: True}

        # memos-api-mcp's search_memory: the same, in its shape.
        found = await tools.ok("search_memory", {"query": "team lead of Dana"})
        assert _ids(found["memories"]) == [new]
        found = await tools.ok("search_memory", {"query": "team lead of Dana", "asOf": "2024-03-01T12:00:00+01:00"})
        assert _ids(found["memories"]) == [old]
        assert found["memories"][0]["supersededBy"] == new
        found = await tools.ok("search_memory", {"query": "team lead of Dana", "includeExpired": True})
        assert sorted(_ids(found["memories"])) == sorted([old, new])

        # A past fact is not corrected in place; its history shows the close.
        refused = await tools.fails("update_memory", {"id": old, "text": "Dana's team lead was Pria"})
        assert "past fact" in refused
        assert new in refused
        actions = [v["action"] for v in (await tools.ok("memory_history", {"id": old}))["versions"]]
        assert actions == ["close", "create"]
        # Restoring the version where it was current would make two current facts: refused.
        refused = await tools.fails("restore_memory", {"id": old, "version": 1})
        assert new in refused
        # Written again, the old text is a new fact, not a repeat of the past one.
        again = await tools.ok("add_memory", {"memory_content": PRIYA})
        assert again["duplicateOf"] is None
        assert again["id"] not in (old, new)


async def test_a_second_supersession_names_the_current_successor(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        old = (await tools.ok("add_memory", {"memory_content": "the office is in Berlin"}))["id"]
        new = (await tools.ok("supersede_memory", {"id": old, "text": "the office is in Lisbon"}))["id"]
        refused = await tools.fails("supersede_memory", {"id": old, "text": "the office is in Porto"})
        assert f"already superseded by {new}" in refused
        newer = await tools.ok("supersede_memory", {"id": new, "text": "the office is in Porto"})
        assert newer["supersedes"] == new
        assert "no memory" in await tools.fails("supersede_memory", {"id": "mem_999999999", "text": "x"})
        assert "non-empty" in await tools.fails("supersede_memory", {"id": newer["id"], "text": " "})


async def test_two_supersessions_at_once_over_mcp_leave_one_successor(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with (
        mcp_server.client("alice", namespace=namespace) as first,
        mcp_server.client("alice", namespace=namespace) as second,
    ):
        tools = await Checked.of(first)
        old = (await tools.ok("add_memory", {"memory_content": "the deploy freeze starts Friday"}))["id"]
        results = await asyncio.gather(
            first.call_tool("supersede_memory", {"id": old, "text": "the deploy freeze starts Thursday"}),
            second.call_tool("supersede_memory", {"id": old, "text": "the deploy freeze starts Monday"}),
        )
        won = [result for result in results if not result.is_error]
        lost = [result for result in results if result.is_error]
        assert len(won) == len(lost) == 1
        successor = won[0].structured_content["id"]
        assert f"already superseded by {successor}" in lost[0].content[0].text
        every = await tools.ok(
            "search_memories", {"query": "deploy freeze", "cube_ids": [namespace], "includeExpired": True}
        )
        current = [hit["id"] for hit in every["results"] if hit["current"]]
        assert current == [successor]


def test_two_supersessions_at_once_over_rest_leave_one_successor(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    headers = mcp_server.headers("alice")
    with httpx2.Client(base_url=mcp_server.base_url, headers=headers, timeout=30) as http:
        old = http.post("/v1/memory/write", json={"namespace": namespace, "text": "the rota owner is Kim"}).json()
        barrier = threading.Barrier(2)
        answers: list[Any] = [None, None]

        def supersede(index: int, text: str) -> None:
            # Two clients (two connections), released together.
            with httpx2.Client(base_url=mcp_server.base_url, headers=headers, timeout=30) as own:
                barrier.wait()
                answers[index] = own.post("/v1/memory/supersede", json={"id": old["id"], "text": text})

        threads = [
            threading.Thread(target=supersede, args=(0, "the rota owner is Lee")),
            threading.Thread(target=supersede, args=(1, "the rota owner is Ana")),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 409], [answer.text for answer in answers]
        (won,) = [answer.json() for answer in answers if answer.status_code == 200]
        (lost,) = [answer.json() for answer in answers if answer.status_code == 409]
        assert won["supersedes"] == old["id"]
        assert won["id"] in str(lost)
        found = http.post(
            "/v1/memory/search", json={"namespace": namespace, "query": "rota owner", "includeExpired": True}
        ).json()["results"]
        assert [hit["id"] for hit in found if hit["current"]] == [won["id"]]
        assert {hit["id"] for hit in found} == {old["id"], won["id"]}


def test_rest_write_with_validity_and_search_as_of(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    with httpx2.Client(base_url=mcp_server.base_url, headers=mcp_server.headers("alice"), timeout=30) as http:
        past = http.post(
            "/v1/memory/write",
            json={
                "namespace": namespace,
                "text": "Dana works at Acme",
                "validFrom": "2023-01-01",
                "validTo": "2024-01-01",
            },
        )
        assert past.status_code == 200, past.text
        assert (past.json()["validFrom"], past.json()["validTo"]) == ("2023-01-01T00:00:00Z", "2024-01-01T00:00:00Z")
        now = http.post("/v1/memory/write", json={"namespace": namespace, "text": "Dana works at Globex"}).json()

        def search(**extra: Any) -> list[str]:
            answer = http.post("/v1/memory/search", json={"namespace": namespace, "query": "where Dana works", **extra})
            assert answer.status_code == 200, answer.text
            return [hit["id"] for hit in answer.json()["results"]]

        assert search() == [now["id"]]
        assert search(asOf="2023-06-30T00:00:00Z") == [past.json()["id"]]
        assert sorted(search(includeExpired=True)) == sorted([past.json()["id"], now["id"]])

        # Bad input: 400 naming the field, nothing written.
        for body, field in (
            ({"text": "x", "validFrom": "yesterday"}, "validFrom"),
            ({"text": "x", "validFrom": "2025-01-02", "validTo": "2025-01-01"}, "validTo"),
        ):
            refused = http.post("/v1/memory/write", json={"namespace": namespace, **body})
            assert refused.status_code == 400, refused.text
            assert field in refused.text
        refused = http.post("/v1/memory/search", json={"namespace": namespace, "query": "x", "asOf": "last week"})
        assert refused.status_code == 400
        assert "asOf" in refused.text
        assert search() == [now["id"]]


async def test_bad_times_are_tool_errors_naming_the_field(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        assert "asOf" in await tools.fails("search_memories", {"query": "x", "asOf": "not a time"})
        assert "asOf" in await tools.fails("search_memory", {"query": "x", "asOf": "2025-13-45"})
        assert "validFrom" in await tools.fails("add_memory", {"memory_content": "x", "validFrom": "soon"})
        assert "validTo" in await tools.fails(
            "add_memory", {"memory_content": "x", "validFrom": "2025-02-01", "validTo": "2025-01-01"}
        )
        assert "chat_time" in await tools.fails(
            "add_message",
            {
                "conversation_first_message": "hi",
                "messages": [{"role": "user", "content": "hello", "chat_time": "tea time"}],
            },
        )
        # add_message: the message's chat_time is the memory's validFrom.
        added = await tools.ok(
            "add_message",
            {
                "conversation_first_message": "hi",
                "messages": [{"role": "user", "content": "I moved to Oslo", "chat_time": "2025-03-04T05:06:07Z"}],
            },
        )
        found = await tools.ok("search_memory", {"query": "moved to Oslo"})
        (hit,) = [hit for hit in found["memories"] if hit["id"] == added["memoryIds"][0]]
        assert hit["validFrom"] == "2025-03-04T05:06:07Z"


async def test_two_keys_and_two_user_ids_never_reach_each_others_memories(mcp_server: McpServer) -> None:
    alice_space = mcp_server.namespace("alice")
    bob_space = mcp_server.namespace("bob")
    async with (
        mcp_server.client("alice", namespace=alice_space) as alice,
        mcp_server.client("bob", namespace=bob_space) as bob,
    ):
        alice_tools, bob_tools = await Checked.of(alice), await Checked.of(bob)
        mine = (await alice_tools.ok("add_memory", {"memory_content": PRIYA, "validFrom": SINCE}))["id"]
        # Bob's key: alice's id answers as an id that does not exist.
        unknown = await bob_tools.fails("supersede_memory", {"id": "mem_999999999", "text": MARCO})
        foreign = await bob_tools.fails("supersede_memory", {"id": mine, "text": MARCO})
        assert foreign == unknown.replace("mem_999999999", mine)
        for arguments in ({"asOf": THEN}, {"includeExpired": True}):
            found = await bob_tools.ok("search_memory", {"query": "Dana's team lead", **arguments})
            assert found["memories"] == []
        # One key, two user_ids: u2 cannot supersede u1's memory, nor find it in the past.
        theirs = (await alice_tools.ok("add_memory", {"memory_content": "u1's desk is 4B", "user_id": "u1"}))["id"]
        assert "no memory" in await alice_tools.fails(
            "supersede_memory", {"id": theirs, "text": "u1's desk is 5C", "user_id": "u2"}
        )
        done = await alice_tools.ok("supersede_memory", {"id": theirs, "text": "u1's desk is 5C", "user_id": "u1"})
        for user, expected in (("u2", []), ("u1", sorted([theirs, done["id"]]))):
            found = await alice_tools.ok("search_memories", {"query": "desk", "user_id": user, "includeExpired": True})
            assert sorted(_ids(found["results"])) == expected
        # The original is untouched by bob's attempt.
        still = await alice_tools.ok("search_memories", {"query": "team lead", "cube_ids": [alice_space]})
        assert [hit["current"] for hit in still["results"] if hit["id"] == mine] == [True]
