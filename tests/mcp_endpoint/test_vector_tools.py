"""The 12 vector tools (category `vectors`, the Rust `mcp-memory` names and arguments) over
Streamable HTTP against a real server, driven by the official SDK: client vectors in a small
"toy" space, text embedded on the server, hybrid search, bad vectors, partial batches, grants and
namespace isolation. Every structured result is checked against the tool's listed outputSchema."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx2
import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev dependencies
import mcp_types as types
import pytest
from mcp import Client

from graph.operations import OPERATIONS as GRAPH_OPERATIONS
from mcp_endpoint import registry
from mcp_endpoint.tools import vectors as vector_tools  # importing registers the tools
from tests.mcp_endpoint.conftest import MEMORY_TOOLS, VECTOR_TOOLS, McpServer, check_declaration
from tests.mcp_endpoint.test_streamable_http import Raw, all_tool_names, modern_headers, modern_message
from tests.mcp_endpoint.test_tool_declarations import closed
from vectors.operations import OPERATIONS

TOY = "toy"


# --- helpers -------------------------------------------------------------------------------------


def text_of(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


class Checked:
    """Calls tools through an SDK client and checks every successful result against the
    outputSchema the server lists for that tool (closed: every key a result has is declared)."""

    def __init__(self, client: Client, schemas: dict[str, dict[str, Any]]) -> None:
        self.client = client
        self.schemas = schemas
        self.called: set[str] = set()

    @classmethod
    async def of(cls, client: Client) -> Checked:
        schemas: dict[str, dict[str, Any]] = {}
        cursor = None
        while True:
            page = await client.list_tools(cursor=cursor)
            for tool in page.tools:
                assert tool.output_schema is not None, tool.name
                schemas[tool.name] = tool.output_schema
            cursor = page.next_cursor
            if cursor is None:
                return cls(client, schemas)

    async def ok(self, name: str, arguments: dict[str, Any]) -> Any:
        result = await self.client.call_tool(name, arguments)
        assert not result.is_error, text_of(result)
        value = result.structured_content
        assert value is not None
        if name in VECTOR_TOOLS | MEMORY_TOOLS:
            # The text block carries the same JSON, compact (cheaper in a model's context).
            assert text_of(result) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        jsonschema.Draft202012Validator(closed(self.schemas[name])).validate(value)
        self.called.add(name)
        return value

    async def fails(self, name: str, arguments: dict[str, Any]) -> str:
        result = await self.client.call_tool(name, arguments)
        assert result.is_error, result
        assert result.structured_content is None
        return text_of(result)


def hits(result: dict[str, Any]) -> list[str]:
    return [hit["entityName"] for hit in result["results"]]


def entity(name: str, kind: str = "thing", *observations: str) -> dict[str, Any]:
    return {"name": name, "entityType": kind, "observations": list(observations)}


@pytest.fixture
def raw(mcp_server: McpServer) -> Iterator[Raw]:
    with httpx2.Client(timeout=30) as http:
        yield Raw(mcp_server, http)


# --- declarations --------------------------------------------------------------------------------


def test_one_tool_per_vector_operation():
    declared = registry.tools(("vectors",))
    assert vector_tools.CATEGORY == "vectors"
    assert sorted(tool.name for tool in declared) == sorted(OPERATIONS) == sorted(VECTOR_TOOLS)
    assert not set(OPERATIONS) & set(GRAPH_OPERATIONS)
    for tool in declared:
        operation = OPERATIONS[tool.name]
        assert tool.read_only is operation.read_only, tool.name
        check_declaration(tool)
        for prop, schema in tool.input_schema["properties"].items():
            assert "anyOf" not in schema, f"{tool.name}.{prop}"  # optional arguments show their plain type


def test_vector_annotations():
    hints = {
        tool.name: (
            tool.annotations["readOnlyHint"],
            tool.annotations["destructiveHint"],
            tool.annotations["idempotentHint"],
        )
        for tool in registry.tools(("vectors",))
    }
    reads = {name for name, (read_only, _, _) in hints.items() if read_only}
    assert reads == {
        "vector_get_embedding",
        "vector_search_entities",
        "vector_search_by_entity",
        "vector_recommend",
        "vector_mmr_search",
        "hybrid_search",
        "vector_refresh_graph_cache",
        "vector_store_stats",
    }
    assert hints["vector_delete_embedding"] == (False, True, True)
    assert hints["vector_upsert_embedding"] == (False, False, True)
    assert hints["vector_batch_upsert"] == (False, False, True)
    assert hints["vector_reindex"] == (False, False, True)


def test_rust_argument_names():
    properties = {tool.name: set(tool.input_schema["properties"]) for tool in registry.tools(("vectors",))}
    # The Rust server's arguments, plus text alternatives to client vectors and `model` everywhere.
    assert properties["vector_search_entities"] == {"embedding", "query", "topK", "entityType", "model"}
    assert properties["vector_search_by_entity"] == {"entityName", "topK", "entityType", "excludeSelf", "model"}
    assert properties["vector_recommend"] == {"positive", "negative", "topK", "entityType", "model"}
    assert properties["vector_mmr_search"] == {"embedding", "query", "topK", "fetchK", "lambda", "entityType", "model"}
    assert properties["hybrid_search"] == {
        "queryText",
        "query",
        "queryEmbedding",
        "textWeight",
        "vecWeight",
        "topK",
        "centrality",
        "model",
    }
    assert properties["vector_upsert_embedding"] == {"entityName", "embedding", "text", "model"}
    assert properties["vector_batch_upsert"] == {"items"}
    assert properties["vector_get_embedding"] == {"entityName", "model"}
    assert properties["vector_delete_embedding"] == {"entityName", "model"}
    for name in ("vector_reindex", "vector_refresh_graph_cache", "vector_store_stats"):
        assert properties[name] == set()
    item = registry.get("vector_batch_upsert").input_schema["properties"]["items"]
    assert item["maxItems"] == 1024
    assert set(item["items"]["properties"]) == {"entityName", "embedding", "text", "model"}
    assert item["items"]["required"] == ["entityName"]


# --- over the wire -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_category_lists_exactly_the_vector_tools(mcp_server: McpServer) -> None:
    async with mcp_server.client("alice", namespace=mcp_server.namespace("alice"), tools="vectors") as client:
        listed = await all_tool_names(client)
        assert len(listed) == 12
        assert set(listed) == VECTOR_TOOLS
        page = await client.list_tools()
        assert all(tool.annotations is not None for tool in page.tools)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_client_vectors(mcp_server: McpServer, mode: str) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace, mode=mode) as client:
        tools = await Checked.of(client)
        made = await tools.ok(
            "create_entities",
            {"entities": [entity("North"), entity("NorthEast"), entity("East"), entity("Up", "other")]},
        )
        assert len(made["entities"]) == 4

        upserted = await tools.ok(
            "vector_upsert_embedding", {"entityName": "North", "embedding": [1, 0, 0, 0], "model": TOY}
        )
        assert upserted == {"entityName": "North", "model": TOY, "dims": 4, "upserted": True}
        batch = await tools.ok(
            "vector_batch_upsert",
            {
                "items": [
                    {"entityName": "NorthEast", "embedding": [0.9, 0.1, 0, 0], "model": TOY},
                    {"entityName": "East", "embedding": [0, 1, 0, 0], "model": TOY},
                    {"entityName": "Up", "embedding": [0, 0, 2, 0], "model": TOY},
                ]
            },
        )
        assert batch == {"upserted": 3, "errors": []}

        stored = await tools.ok("vector_get_embedding", {"entityName": "Up", "model": TOY})
        assert stored["found"] is True
        assert (stored["model"], stored["dims"]) == (TOY, 4)
        assert stored["embedding"] == [0.0, 0.0, 1.0, 0.0]  # stored at unit length

        nearest = await tools.ok("vector_search_entities", {"embedding": [1, 0, 0, 0], "model": TOY, "topK": 2})
        assert nearest["model"] == TOY
        assert hits(nearest) == ["North", "NorthEast"]
        assert math.isclose(nearest["results"][0]["score"], 1.0, abs_tol=1e-5)
        assert nearest["results"][0]["entityType"] == "thing"
        typed = await tools.ok(
            "vector_search_entities", {"embedding": [1, 0, 0, 0], "model": TOY, "entityType": "other"}
        )
        assert hits(typed) == ["Up"]
        assert math.isclose(typed["results"][0]["score"], 0.0, abs_tol=1e-5)

        similar = await tools.ok("vector_search_by_entity", {"entityName": "North", "model": TOY, "topK": 2})
        assert hits(similar) == ["NorthEast", "East"]
        with_self = await tools.ok(
            "vector_search_by_entity", {"entityName": "North", "model": TOY, "topK": 1, "excludeSelf": False}
        )
        assert hits(with_self) == ["North"]

        liked = await tools.ok(
            "vector_recommend", {"positive": ["NorthEast"], "negative": ["East"], "model": TOY, "topK": 2}
        )
        assert hits(liked)[0] == "North"
        assert "NorthEast" not in hits(liked)
        assert "East" not in hits(liked)

        diverse = await tools.ok(
            "vector_mmr_search", {"embedding": [1, 0.05, 0, 0], "model": TOY, "topK": 2, "lambda": 0.3}
        )
        assert hits(diverse)[0] == "North"
        assert "NorthEast" not in hits(diverse)  # a near-duplicate of North
        relevant = await tools.ok(
            "vector_mmr_search", {"embedding": [1, 0.05, 0, 0], "model": TOY, "topK": 2, "lambda": 1, "fetchK": 4}
        )
        assert hits(relevant) == ["North", "NorthEast"]

        stats = await tools.ok("vector_store_stats", {})
        assert stats["namespace"] == namespace
        assert {"kind": "entity", "model": TOY, "count": 4, "dims": 4} in stats["vectors"]
        assert stats["clientModelDefault"] == "client"
        assert stats["embedder"]["dims"] > 0
        refreshed = await tools.ok("vector_refresh_graph_cache", {})
        assert refreshed["refreshed"] is True
        assert refreshed["entities"] == 4
        reindexed = await tools.ok("vector_reindex", {})
        assert {"kind": "entity", "model": TOY, "vectors": 4, "dims": 4} in [
            {k: v for k, v in index.items() if k != "index"} for index in reindexed["indexes"]
        ]
        # Still searchable after the rebuild.
        again = await tools.ok("vector_search_entities", {"embedding": [0, 1, 0, 0], "model": TOY, "topK": 1})
        assert hits(again) == ["East"]

        deleted = await tools.ok("vector_delete_embedding", {"entityName": "North", "model": TOY})
        assert deleted == {"entityName": "North", "deleted": 1}
        gone = await tools.ok("vector_get_embedding", {"entityName": "North", "model": TOY})
        assert gone == {"found": False, "entityName": "North"}
        after = await tools.ok("vector_search_entities", {"embedding": [1, 0, 0, 0], "model": TOY})
        assert "North" not in hits(after)
        assert hits(after)[0] == "NorthEast"
        # Deleting again is harmless (idempotent); the entity itself is still there.
        assert await tools.ok("vector_delete_embedding", {"entityName": "North"}) == {
            "entityName": "North",
            "deleted": 0,
        }
        assert "has no vector in model 'toy'" in await tools.fails(
            "vector_search_by_entity", {"entityName": "North", "model": TOY}
        )
        assert (
            await tools.fails("vector_get_embedding", {"entityName": "Nobody"}) == "Entity with name Nobody not found"
        )

        assert tools.called >= VECTOR_TOOLS - {"hybrid_search"}


@pytest.mark.anyio
async def test_text_is_embedded_on_the_server(mcp_server: McpServer) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        await tools.ok(
            "create_entities",
            {
                "entities": [
                    entity(
                        "Postgres",
                        "service",
                        "the primary database, on host db-prod-07 port 5433",
                        "stores customer orders and invoices",
                    ),
                    entity("Redis", "service", "in-memory cache that keeps user sessions"),
                    entity("Lisbon trip", "event", "family holiday in Portugal in August"),
                    entity("Kafka", "service"),
                ]
            },
        )
        # Kafka has no observations: it gets a vector from a text.
        upserted = await tools.ok(
            "vector_upsert_embedding", {"entityName": "Kafka", "text": "message broker for streaming events"}
        )
        server_model = upserted["model"]
        assert server_model != "client"
        stored = await tools.ok("vector_get_embedding", {"entityName": "Kafka"})
        assert stored["model"] == server_model
        assert stored["dims"] == upserted["dims"] == len(stored["embedding"])

        streaming = await tools.ok("vector_search_entities", {"query": "event streaming platform", "topK": 2})
        assert streaming["model"] == server_model
        assert hits(streaming)[0] == "Kafka"
        # Entities are found through their observations, without any upsert; across languages too.
        vacation = await tools.ok("vector_search_entities", {"query": "vacation abroad with the kids"})
        assert hits(vacation)[0] == "Lisbon trip"
        chinese = await tools.ok("vector_search_entities", {"query": "去葡萄牙度假", "topK": 1})
        assert hits(chinese) == ["Lisbon trip"]
        services_only = await tools.ok(
            "vector_search_entities", {"query": "vacation abroad with the kids", "entityType": "service"}
        )
        assert "Lisbon trip" not in hits(services_only)
        diverse = await tools.ok("vector_mmr_search", {"query": "where is data stored", "topK": 3})
        assert len(diverse["results"]) == 3
        assert len(set(hits(diverse))) == 3

        # hybrid_search: an exact identifier, then a paraphrase.
        exact = await tools.ok("hybrid_search", {"queryText": "db-prod-07", "topK": 3})
        assert hits(exact)[0] == "Postgres"
        top = exact["results"][0]
        assert top["textScore"] > 0.5
        assert top["score"] >= top["vectorScore"]
        port = await tools.ok("hybrid_search", {"queryText": "what runs on port 5433?"})
        assert hits(port)[0] == "Postgres"
        paraphrase = await tools.ok("hybrid_search", {"queryText": "where are login sessions kept", "topK": 2})
        assert hits(paraphrase)[0] == "Redis"
        # `query`, as for the other searches, is the same argument; both must then agree.
        assert await tools.ok("hybrid_search", {"query": "where are login sessions kept", "topK": 2}) == paraphrase
        same = {"query": "db-prod-07", "queryText": "db-prod-07", "topK": 3}
        assert await tools.ok("hybrid_search", same) == exact
        different = await tools.fails("hybrid_search", {"query": "db-prod-07", "queryText": "port 5433"})
        assert "queryText and query differ" in different, different
        assert "give queryText (or query)" in await tools.fails("hybrid_search", {"topK": 3})
        weighted = await tools.ok(
            "hybrid_search",
            {"queryText": "where are login sessions kept", "textWeight": 0, "vecWeight": 1, "centrality": 0.5},
        )
        assert hits(weighted)[0] == "Redis"
        assert all(0 <= hit["score"] <= 1 for hit in weighted["results"])

        # Similar to an entity through the mean of its observations' vectors.
        similar = await tools.ok("vector_search_by_entity", {"entityName": "Redis", "topK": 3})
        assert similar["model"] == server_model
        assert "Redis" not in hits(similar)
        liked = await tools.ok("vector_recommend", {"positive": ["Redis"], "topK": 2})
        assert "Redis" not in hits(liked)

        # A text for a client model is refused: only the server's model embeds text.
        refused = await tools.fails("vector_upsert_embedding", {"entityName": "Kafka", "text": "x", "model": TOY})
        assert "needs an embedding" in refused
        both = await tools.fails("vector_search_entities", {"query": "x", "embedding": [1, 0]})
        assert "exactly one of embedding" in both
        neither = await tools.fails("vector_search_entities", {})
        assert "exactly one of embedding" in neither


@pytest.mark.anyio
async def test_bad_vectors_are_tool_errors(mcp_server: McpServer, raw: Raw) -> None:
    namespace = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=namespace) as client:
        tools = await Checked.of(client)
        await tools.ok("create_entities", {"entities": [entity("A"), entity("B"), entity("C")]})
        await tools.ok("vector_upsert_embedding", {"entityName": "A", "embedding": [1, 2, 3, 4], "model": TOY})

        mismatch = await tools.fails(
            "vector_upsert_embedding", {"entityName": "B", "embedding": [1, 2, 3, 4, 5], "model": TOY}
        )
        assert mismatch == "Expected a vector of 4 dimensions, got 5"
        query_mismatch = await tools.fails("vector_search_entities", {"embedding": [1, 2], "model": TOY})
        assert query_mismatch == "Expected a vector of 4 dimensions, got 2"
        assert await tools.fails("vector_upsert_embedding", {"entityName": "B", "embedding": [], "model": TOY}) == (
            "A vector must not be empty"
        )
        zeros = await tools.fails("vector_upsert_embedding", {"entityName": "B", "embedding": [0, 0, 0, 0]})
        assert "all zeros" in zeros

        # A string, or a boolean, is not a number (even "1.5").
        for bad in ("abc", "1.5", True):
            message = await tools.fails(
                "vector_upsert_embedding", {"entityName": "B", "embedding": [1, bad, 3, 4], "model": TOY}
            )
            assert message.startswith("Input validation error"), message
            assert "embedding.1: Input should be a valid number" in message

        # The SDK cannot send a non-finite number: JSON has none, and its encoder writes null instead.
        sdk_inf = await tools.fails(
            "vector_upsert_embedding", {"entityName": "B", "embedding": [1, math.inf, 3, 4], "model": TOY}
        )
        assert "embedding.1: Input should be a valid number" in sdk_inf

        # A raw client can send 1e309, which parses to infinity: the vector check refuses it.
        # NaN / Infinity are not JSON at all: a parse error before any tool runs.
        for literal in ("1e309", "-1e309", "NaN", "Infinity"):
            body = json.dumps(
                modern_message(
                    "tools/call",
                    {
                        "name": "vector_upsert_embedding",
                        "arguments": {"entityName": "B", "embedding": [1, "@@", 3, 4], "model": TOY},
                    },
                )
            ).replace('"@@"', literal)
            response = raw.post(
                body.encode(),
                persona=None,
                headers=modern_headers(mcp_server, "tools/call", "vector_upsert_embedding"),
                url=mcp_server.endpoint(namespace=namespace),
            )
            if literal.endswith("e309"):
                assert response.status_code == 200, response.text
                result = response.json()["result"]
                assert result["isError"] is True
                message = result["content"][0]["text"]
                assert message.startswith("A vector must hold only finite numbers; element 1 is "), message
            else:
                assert response.status_code == 400, response.text
                assert response.json()["error"]["code"] == -32700
                assert f"{literal} is not valid JSON" in response.json()["error"]["message"]

        # Nothing was written by any of the failures.
        assert await tools.ok("vector_get_embedding", {"entityName": "B"}) == {"found": False, "entityName": "B"}

        # A batch reports its bad items and writes the others.
        batch = await tools.ok(
            "vector_batch_upsert",
            {
                "items": [
                    {"entityName": "B", "embedding": [0, 1, 0, 0], "model": TOY},
                    {"entityName": "Ghost", "embedding": [0, 0, 1, 0], "model": TOY},
                    {"entityName": "C", "embedding": [1, 2, 3, 4, 5], "model": TOY},
                    {"entityName": "C", "embedding": [0, 0, 0, 1], "model": TOY},
                    {"entityName": "A", "model": TOY},
                ]
            },
        )
        assert batch["upserted"] == 2
        assert [(error["index"], error["entityName"]) for error in batch["errors"]] == [
            (1, "Ghost"),
            (2, "C"),
            (4, "A"),
        ]
        assert batch["errors"][0]["error"] == "Entity with name Ghost not found"
        assert batch["errors"][1]["error"] == "Expected a vector of 4 dimensions, got 5"
        assert "exactly one of embedding" in batch["errors"][2]["error"]
        for name, expected in (("B", [0.0, 1.0, 0.0, 0.0]), ("C", [0.0, 0.0, 0.0, 1.0])):
            stored = await tools.ok("vector_get_embedding", {"entityName": name, "model": TOY})
            assert stored["embedding"] == expected
        stats = await tools.ok("vector_store_stats", {})
        assert {"kind": "entity", "model": TOY, "count": 3, "dims": 4} in stats["vectors"]

        # Arguments outside the declared ranges never reach the store.
        for name, arguments in (
            ("vector_search_entities", {"embedding": [1, 0, 0, 0], "model": TOY, "topK": 101}),
            ("vector_search_entities", {"embedding": [1, 0, 0, 0], "model": TOY, "topK": 0}),
            ("vector_mmr_search", {"embedding": [1, 0, 0, 0], "model": TOY, "lambda": 1.5}),
            ("vector_recommend", {"positive": []}),
            ("hybrid_search", {"topK": 3}),
            ("vector_batch_upsert", {"items": [{"entityName": "A", "embedding": [1, 0, 0, 0]}] * 1025}),
        ):
            message = await tools.fails(name, arguments)
            assert message.startswith("Input validation error"), (name, message)
        assert "fetchK must be at least topK" in await tools.fails(
            "vector_mmr_search", {"embedding": [1, 0, 0, 0], "model": TOY, "topK": 5, "fetchK": 2}
        )


@pytest.mark.anyio
async def test_vectors_stay_in_their_namespace(mcp_server: McpServer) -> None:
    alice_space = mcp_server.namespace("alice")
    async with mcp_server.client("alice", namespace=alice_space) as alice_client:
        alice = await Checked.of(alice_client)
        await alice.ok("create_entities", {"entities": [entity("Secret plan", "plan", "launch the rocket at dawn")]})
        await alice.ok("vector_upsert_embedding", {"entityName": "Secret plan", "embedding": [1, 0, 0], "model": TOY})
        found = await alice.ok("vector_search_entities", {"query": "rocket launch schedule"})
        assert hits(found)[0] == "Secret plan"

    async with mcp_server.client("bob") as bob_client:  # bob's default namespace
        bob = await Checked.of(bob_client)
        mine = await bob.ok("vector_search_entities", {"query": "rocket launch schedule"})
        assert "Secret plan" not in hits(mine)
        client_space = await bob.ok("vector_search_entities", {"embedding": [1, 0, 0], "model": TOY})
        assert "Secret plan" not in hits(client_space)
        hybrid = await bob.ok("hybrid_search", {"queryText": "rocket dawn"})
        assert "Secret plan" not in hits(hybrid)
        stats = await bob.ok("vector_store_stats", {})
        assert stats["namespace"] == "org:bob:notes"

    # Bob pointing his connection at alice's namespace is refused, reads and writes alike.
    async with mcp_server.client("bob", namespace=alice_space) as bob_client:
        bob = await Checked.of(bob_client)
        no_read = f"This API key has no read grant for namespace {alice_space!r}."
        no_write = f"This API key has no write grant for namespace {alice_space!r}."
        assert await bob.fails("vector_search_entities", {"query": "rocket"}) == no_read
        assert await bob.fails("vector_get_embedding", {"entityName": "Secret plan"}) == no_read
        assert await bob.fails("vector_store_stats", {}) == no_read
        assert await bob.fails("vector_delete_embedding", {"entityName": "Secret plan"}) == no_write
        assert (
            await bob.fails("vector_upsert_embedding", {"entityName": "Secret plan", "embedding": [0, 1, 0]})
            == no_write
        )

    # Carol may read alice's namespaces, not write them.
    async with mcp_server.client("carol", namespace=alice_space) as carol_client:
        carol = await Checked.of(carol_client)
        assert hits(await carol.ok("vector_search_entities", {"embedding": [1, 0, 0], "model": TOY})) == ["Secret plan"]
        assert (await carol.ok("vector_get_embedding", {"entityName": "Secret plan", "model": TOY}))["found"] is True
        no_write = f"This API key has no write grant for namespace {alice_space!r}."
        assert await carol.fails("vector_delete_embedding", {"entityName": "Secret plan"}) == no_write
        assert await carol.fails("vector_reindex", {}) == no_write
        assert (
            await carol.fails("vector_batch_upsert", {"items": [{"entityName": "Secret plan", "embedding": [0, 1, 0]}]})
            == no_write
        )

    async with mcp_server.client("alice", namespace=alice_space) as alice_client:
        alice = await Checked.of(alice_client)
        stored = await alice.ok("vector_get_embedding", {"entityName": "Secret plan", "model": TOY})
        assert stored["embedding"] == [1.0, 0.0, 0.0]
