"""Facts in time on the graph tools, against a real server: the official SDK client over HTTP and
the REST API (/v1/graph/*). Current facts by default; asOf answers each period of a history
(Acme -> Globex -> Acme, Berlin -> Paris); includeExpired marks every fact; supersede_observation
and declare_relation_type, their errors, and two keys that cannot see each other's facts.

The periods are a little over a second apart (times on the wire are to the second); the asOf
times asked about are taken inside them."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest

from tests.mcp_endpoint.conftest import McpServer
from tests.mcp_endpoint.test_vector_tools import Checked

pytestmark = pytest.mark.anyio

ORGS: list[dict[str, Any]] = [{"name": name, "entityType": "org", "observations": []} for name in ("Acme", "Globex")]
DANA = {"name": "Dana", "entityType": "person", "observations": ["lives in Berlin"]}


def works_at(target: str) -> dict[str, str]:
    return {"from": "Dana", "to": target, "relationType": "works_at"}


def triples(relations: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["from"], r["to"], r["relationType"]) for r in relations]


def pause() -> str:
    """A time inside the current period (then the next one starts a second later)."""
    time.sleep(1.1)
    inside = datetime.now(UTC).isoformat()
    time.sleep(1.1)
    return inside


async def test_the_read_tools_answer_now_the_past_and_everything(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        listed: dict[str, Any] = {}
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            listed.update((tool.name, tool) for tool in page.tools)
            if (cursor := page.next_cursor) is None:
                break
        for name in ("search_nodes", "open_nodes", "read_graph", "get_neighbors", "find_path"):
            properties = listed[name].input_schema["properties"]
            assert "ISO 8601" in properties["asOf"]["description"]
            assert properties["includeExpired"]["type"] == "boolean"

        await tools.ok("create_entities", {"entities": [DANA, *ORGS]})
        await tools.ok("create_relations", {"relations": [works_at("Acme")]})
        first = pause()
        declared = await tools.ok("declare_relation_type", {"relationType": "works_at", "functional": True})
        assert declared == {"relationType": "works_at", "functional": True, "closed": []}
        moved = await tools.ok("create_relations", {"relations": [works_at("Globex")]})
        assert triples(moved["closed"]) == [("Dana", "Acme", "works_at")]
        assert moved["closed"][0]["current"] is False
        superseded = await tools.ok(
            "supersede_observation", {"entityName": "Dana", "old": "lives in Berlin", "new": "lives in Paris"}
        )
        assert superseded["supersedes"].startswith("mem_")
        assert superseded["id"].startswith("mem_")
        second = pause()
        back = await tools.ok("create_relations", {"relations": [works_at("Acme")]})
        assert triples(back["relations"]) == [("Dana", "Acme", "works_at")]
        assert triples(back["closed"]) == [("Dana", "Globex", "works_at")]

        # Now: the official shapes, current facts only.
        now = await tools.ok("open_nodes", {"names": ["Dana"]})
        assert now["entities"] == [{"name": "Dana", "entityType": "person", "observations": ["lives in Paris"]}]
        assert now["relations"] == [works_at("Acme")]
        assert (await tools.ok("search_nodes", {"query": "Berlin"}))["entities"] == []
        assert (await tools.ok("read_graph", {}))["relations"] == [works_at("Acme")]
        neighbours = await tools.ok("get_neighbors", {"name": "Dana"})
        assert [e["name"] for e in neighbours["entities"]] == ["Acme"]
        assert (await tools.ok("find_path", {"from": "Dana", "to": "Globex"}))["found"] is False
        listed_types = await tools.ok("list_relation_types", {})
        assert listed_types["types"] == [{"name": "works_at", "count": 1, "functional": True}]

        # Each period, asked with asOf.
        for at, employer, city in ((first, "Acme", "Berlin"), (second, "Globex", "Paris")):
            page = await tools.ok("open_nodes", {"names": ["Dana"], "asOf": at})
            assert page["entities"][0]["observations"] == [f"lives in {city}"]
            assert triples(page["relations"]) == [("Dana", employer, "works_at")]
            assert page["relations"][0]["current"] is False
            found = await tools.ok("search_nodes", {"query": city, "asOf": at})
            assert [e["name"] for e in found["entities"]] == ["Dana"]
            graph = await tools.ok("read_graph", {"asOf": at})
            assert triples(graph["relations"]) == [("Dana", employer, "works_at")]
            walked = await tools.ok("get_neighbors", {"name": "Dana", "asOf": at})
            assert [e["name"] for e in walked["entities"]] == [employer]
            path = await tools.ok("find_path", {"from": "Dana", "to": "Globex", "asOf": at})
            assert path["found"] is (employer == "Globex")

        # Everything, each fact marked.
        everything = await tools.ok("open_nodes", {"names": ["Dana"], "includeExpired": True})
        assert [(r["to"], r["current"]) for r in everything["relations"]] == [
            ("Acme", False),
            ("Globex", False),
            ("Acme", True),
        ]
        details = everything["entities"][0]["observationDetails"]
        assert [(d["text"], d["current"]) for d in details] == [("lives in Berlin", False), ("lives in Paris", True)]
        assert details[0]["supersededBy"] == details[1]["id"] == superseded["id"]
        for name, arguments in (
            ("search_nodes", {"query": "Dana"}),
            ("read_graph", {}),
            ("get_neighbors", {"name": "Dana"}),
            ("find_path", {"from": "Dana", "to": "Globex"}),
        ):
            result = await tools.ok(name, {**arguments, "includeExpired": True})
            assert "Globex" in {r["to"] for r in result["relations"]}, name

        # Bad input: clear tool errors.
        for name, arguments in (
            ("search_nodes", {"query": "Dana"}),
            ("open_nodes", {"names": ["Dana"]}),
            ("read_graph", {}),
            ("get_neighbors", {"name": "Dana"}),
            ("find_path", {"from": "Dana", "to": "Acme"}),
        ):
            assert "asOf" in await tools.fails(name, {**arguments, "asOf": "last tuesday"})
        conflict = await tools.fails(
            "supersede_observation", {"entityName": "Dana", "old": "lives in Berlin", "new": "lives in Rome"}
        )
        assert superseded["id"] in conflict
        assert "no observation" in await tools.fails(
            "supersede_observation", {"entityName": "Dana", "old": "never said", "new": "x"}
        )


async def test_declare_with_duplicates_is_refused_then_close_older(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        await tools.ok("create_entities", {"entities": [DANA, *ORGS]})
        await tools.ok("create_relations", {"relations": [works_at("Acme"), works_at("Globex")]})
        refused = await tools.fails("declare_relation_type", {"relationType": "works_at", "functional": True})
        assert "Dana -works_at-> Acme" in refused
        assert "Dana -works_at-> Globex" in refused
        assert "closeOlder" in refused
        declared = await tools.ok(
            "declare_relation_type", {"relationType": "works_at", "functional": True, "closeOlder": True}
        )
        assert len(declared["closed"]) == 1
        assert len((await tools.ok("open_nodes", {"names": ["Dana"]}))["relations"]) == 1
        off = await tools.ok("declare_relation_type", {"relationType": "works_at", "functional": False})
        assert off["functional"] is False


def test_rest_reads_and_writes_with_two_keys(mcp_server: McpServer) -> None:
    alice_ns, bob_ns = mcp_server.namespace("alice"), mcp_server.namespace("bob")
    with httpx2.Client(base_url=mcp_server.base_url, timeout=30) as http:

        def post(persona: str, operation: str, body: dict[str, Any]) -> httpx2.Response:
            return http.post(f"/v1/graph/{operation}", json=body, headers=mcp_server.headers(persona))

        for persona, namespace in (("alice", alice_ns), ("bob", bob_ns)):
            assert (
                post(persona, "create_entities", {"namespace": namespace, "entities": [DANA, *ORGS]}).status_code == 200
            )
            assert (
                post(persona, "create_relations", {"namespace": namespace, "relations": [works_at("Acme")]}).status_code
                == 200
            )
        first = pause()
        declared = post(
            "alice", "declare_relation_type", {"namespace": alice_ns, "relationType": "works_at", "functional": True}
        )
        assert declared.status_code == 200, declared.text
        moved = post("alice", "create_relations", {"namespace": alice_ns, "relations": [works_at("Globex")]}).json()
        assert triples(moved["closed"]) == [("Dana", "Acme", "works_at")]
        superseded = post(
            "alice",
            "supersede_observation",
            {"namespace": alice_ns, "entityName": "Dana", "old": "lives in Berlin", "new": "lives in Paris"},
        )
        assert superseded.status_code == 200, superseded.text
        body = superseded.json()
        assert set(body) == {"entityName", "old", "new", "id", "supersedes", "validFrom"}

        now = post("alice", "open_nodes", {"namespace": alice_ns, "names": ["Dana"]}).json()
        assert now["relations"] == [works_at("Globex")]
        past = post("alice", "open_nodes", {"namespace": alice_ns, "names": ["Dana"], "asOf": first}).json()
        assert past["relations"][0]["to"] == "Acme"
        assert past["entities"][0]["observations"] == ["lives in Berlin"]
        bad = post("alice", "search_nodes", {"namespace": alice_ns, "query": "Dana", "asOf": "not a time"})
        assert bad.status_code == 400
        assert "asOf" in bad.text
        assert (
            post("alice", "open_nodes", {"namespace": alice_ns, "names": ["Dana"], "includeExpired": "yes"}).status_code
            == 400
        )

        # Bob's graph is his own: works_at is not functional there, Dana still lives in Berlin.
        bobs = post("bob", "create_relations", {"namespace": bob_ns, "relations": [works_at("Globex")]}).json()
        assert "closed" not in bobs
        bob_now = post("bob", "open_nodes", {"namespace": bob_ns, "names": ["Dana"], "includeExpired": True}).json()
        assert [d["text"] for d in bob_now["entities"][0]["observationDetails"]] == ["lives in Berlin"]
        assert all(r["current"] for r in bob_now["relations"])
        # Neither key reaches the other's namespace with the new operations.
        for persona, namespace in (("bob", alice_ns), ("alice", bob_ns)):
            assert (
                post(
                    persona,
                    "supersede_observation",
                    {"namespace": namespace, "entityName": "Dana", "old": "lives in Paris", "new": "x"},
                ).status_code
                == 403
            )
            assert (
                post(
                    persona,
                    "declare_relation_type",
                    {"namespace": namespace, "relationType": "works_at", "functional": False},
                ).status_code
                == 403
            )
            assert (
                post(
                    persona, "open_nodes", {"namespace": namespace, "names": ["Dana"], "includeExpired": True}
                ).status_code
                == 403
            )
        # Bob's own supersession of a text only Alice's Dana has: not found.
        missing = post(
            "bob",
            "supersede_observation",
            {"namespace": bob_ns, "entityName": "Dana", "old": "lives in Paris", "new": "x"},
        )
        assert missing.status_code == 404
