"""The drop-in scenario, against the REAL official memory server (`@modelcontextprotocol/server-memory`,
pinned in package.json and installed by `make test`).

A user has been running the official server: a small graph is written through it (unicode, CJK and
emoji names, relations, added and deleted observations), so it leaves its JSONL file behind. That
file is imported with `manage.py import_memory`, and then both servers are asked the same questions
through the official Python SDK (the official server over stdio, ours over Streamable HTTP) and
must give the same answers. Where the two differ by design (search is word-prefix full text here,
substring there) the test says so explicitly instead of avoiding the case.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from tests.mcp_endpoint.conftest import OFFICIAL_TOOLS, ROOT, McpServer

pytestmark = pytest.mark.anyio

OFFICIAL_SERVER = ROOT / "node_modules" / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"

ENTITIES: list[dict[str, Any]] = [
    {
        "name": "Alice Martin",
        "entityType": "person",
        "observations": ["Works at Café Crème as head barista", "Speaks French and Japanese", "Prefers oat milk"],
    },
    {
        "name": "Café Crème",
        "entityType": "organization",
        "observations": ["Coffee shop in Lyon", "Opened in 2019", "Serves CAFÉ AU LAIT all day"],
    },
    {"name": "Lyon", "entityType": "city", "observations": ["Third largest city in France"]},
    {"name": "東京", "entityType": "city", "observations": ["Capital of Japan", "人口は約1400万人"]},
    {
        "name": "Project Phoenix 🚀",
        "entityType": "project",
        "observations": ["Rewrite of the billing system", "Deadline: 2026-03-31", "Uses PostgreSQL 16"],
    },
    {"name": "Bob O'Neil", "entityType": "person", "observations": ["Backend engineer", "Lives in London"]},
    {"name": "Zoë Kowalska", "entityType": "person", "observations": ["Engineering manager 👩‍💼"]},
]
RELATIONS: list[dict[str, str]] = [
    {"from": "Alice Martin", "to": "Café Crème", "relationType": "works_at"},
    {"from": "Café Crème", "to": "Lyon", "relationType": "located_in"},
    {"from": "Alice Martin", "to": "東京", "relationType": "visited"},
    {"from": "Alice Martin", "to": "Project Phoenix 🚀", "relationType": "works_on"},
    {"from": "Bob O'Neil", "to": "Project Phoenix 🚀", "relationType": "works_on"},
    {"from": "Zoë Kowalska", "to": "Project Phoenix 🚀", "relationType": "manages"},
    {"from": "Zoë Kowalska", "to": "Bob O'Neil", "relationType": "manages"},
    {"from": "Bob O'Neil", "to": "Lyon", "relationType": "visited"},
]


def official_server_script() -> Path:
    if shutil.which("node") is None or not OFFICIAL_SERVER.is_file():
        pytest.fail(
            f"the official memory server is not installed ({OFFICIAL_SERVER.relative_to(ROOT)} or node is "
            "missing): run `make test`, which installs the pinned node packages (npm ci) before the suite"
        )
    return OFFICIAL_SERVER


@pytest.fixture(scope="module", autouse=True)
def _node_is_installed() -> None:
    """Missing node packages fail every test here (with how to fix it), never skip them."""
    official_server_script()


@asynccontextmanager
async def official(memory_file: Path) -> AsyncIterator[Client]:
    """The official server on `memory_file`, through the official SDK's stdio client. It re-reads
    the file on every call, so each connection sees what earlier ones wrote."""
    script = official_server_script()
    params = StdioServerParameters(
        command=str(shutil.which("node")),
        args=[str(script)],
        env={**os.environ, "MEMORY_FILE_PATH": str(memory_file)},
        cwd=memory_file.parent,
    )
    with (memory_file.parent / "official-server.log").open("a") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            yield client


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, (tool, result.content)
    return result.structured_content


async def write_through_the_official_server(memory_file: Path) -> None:
    async with official(memory_file) as client:
        assert client.server_info is not None
        assert client.server_info.name == "memory-server"
        created = await call(client, "create_entities", {"entities": ENTITIES})
        assert created == {"entities": ENTITIES}
        await call(client, "create_relations", {"relations": RELATIONS})
        added = await call(
            client,
            "add_observations",
            {
                "observations": [
                    {"entityName": "Alice Martin", "contents": ["Moved to Lyon in 2020", "Prefers oat milk"]},
                    {"entityName": "東京", "contents": ["Visited by Alice in spring 🌸"]},
                ]
            },
        )
        assert added == {
            "results": [
                {"entityName": "Alice Martin", "addedObservations": ["Moved to Lyon in 2020"]},
                {"entityName": "東京", "addedObservations": ["Visited by Alice in spring 🌸"]},
            ]
        }
        await call(
            client,
            "delete_observations",
            {"deletions": [{"entityName": "Café Crème", "observations": ["Opened in 2019"]}]},
        )
        await call(
            client,
            "delete_relations",
            {"relations": [{"from": "Bob O'Neil", "to": "Lyon", "relationType": "visited"}]},
        )


@pytest.fixture(scope="module")
def official_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The official server's JSONL file after a realistic session."""
    memory_file = tmp_path_factory.mktemp("official") / "memory.jsonl"
    anyio.run(write_through_the_official_server, memory_file)
    lines = [json.loads(line) for line in memory_file.read_text(encoding="utf-8").splitlines()]
    assert [line["type"] for line in lines] == ["entity"] * len(ENTITIES) + ["relation"] * (len(RELATIONS) - 1)
    return memory_file


@pytest.fixture(scope="module")
def imported(mcp_server: McpServer, official_file: Path) -> str:
    """A namespace of ours holding the imported file."""
    namespace = mcp_server.namespace("alice")
    done = mcp_server.manage("import_memory", str(official_file), "--namespace", namespace, "--no-progress")
    assert f"{len(ENTITIES)} entities created" in done.stdout
    assert f"{len(RELATIONS) - 1} relations created" in done.stdout
    return namespace


@pytest.fixture
def ours(mcp_server: McpServer, imported: str):
    return lambda: mcp_server.client("alice", namespace=imported)


def entities_by_name(result: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """name → (entityType, observations in order); names must be unique."""
    names = [entity["name"] for entity in result["entities"]]
    assert len(names) == len(set(names)), names
    return {entity["name"]: (entity["entityType"], entity["observations"]) for entity in result["entities"]}


def relation_set(result: dict[str, Any]) -> set[tuple[str, str, str]]:
    triples = [(r["from"], r["to"], r["relationType"]) for r in result["relations"]]
    assert len(triples) == len(set(triples)), triples
    return set(triples)


def same_graph(official_result: dict[str, Any], our_result: dict[str, Any]) -> None:
    assert entities_by_name(our_result) == entities_by_name(official_result)
    assert relation_set(our_result) == relation_set(official_result)


# --- reads ---------------------------------------------------------------------------------------


async def test_read_graph_is_the_same(official_file: Path, ours) -> None:
    async with official(official_file) as theirs:
        expected = await call(theirs, "read_graph", {})
    async with ours() as client:
        got = await call(client, "read_graph", {})
    same_graph(expected, got)
    # Ours adds paging keys, and keeps the file's entity order.
    assert got["hasMore"] is False
    assert got["nextCursor"] is None
    assert [e["name"] for e in got["entities"]] == [e["name"] for e in expected["entities"]]
    assert entities_by_name(got)["Alice Martin"][1] == [
        "Works at Café Crème as head barista",
        "Speaks French and Japanese",
        "Prefers oat milk",
        "Moved to Lyon in 2020",
    ]
    assert "Opened in 2019" not in entities_by_name(got)["Café Crème"][1]
    assert ("Bob O'Neil", "Lyon", "visited") not in relation_set(got)


@pytest.mark.parametrize(
    "names",
    [
        ["東京", "Nobody", "Zoë Kowalska", "Project Phoenix 🚀"],
        ["Lyon"],
        ["Nobody", "nobody"],
        ["alice martin"],  # names are case-sensitive in both
        ["Café Crème", "Café Crème"],
    ],
)
async def test_open_nodes_is_the_same(official_file: Path, ours, names: list[str]) -> None:
    async with official(official_file) as theirs:
        expected = await call(theirs, "open_nodes", {"names": names})
    async with ours() as client:
        got = await call(client, "open_nodes", {"names": names})
    same_graph(expected, got)


# Queries on which a case-insensitive substring search and a word-prefix full-text search agree:
# whole words and word prefixes, other case, accented capitals, CJK, a contiguous phrase, words
# from different entities (no hit in either), the empty query (everything), a miss and emoji.
AGREEING_QUERIES = [
    "café",
    "CAFÉ",
    "Café Crème",
    "crème",
    "japan",
    "JAPANESE",
    "phoen",
    "Lyon",
    "東京",
    "京",
    "人口",
    "person",
    "CITY",
    "capital of japan",
    "oat milk",
    "2026-03-31",
    "postgres",
    "Zoë",
    "Lyon Japan",
    "",
    "xyzzy",
    # Text FTS cannot index (emoji) is matched as a substring, as the official server does.
    "🚀",
    "👩‍💼",
]


@pytest.mark.parametrize("query", AGREEING_QUERIES)
async def test_search_nodes_agrees_on_words_and_prefixes(official_file: Path, ours, query: str) -> None:
    async with official(official_file) as theirs:
        expected = await call(theirs, "search_nodes", {"query": query})
    async with ours() as client:
        got = await call(client, "search_nodes", {"query": query})
    # Same hits and relations; the order is not compared (ours ranks, theirs is file order).
    same_graph(expected, got)
    if query not in ("Lyon Japan", "xyzzy"):
        assert got["entities"], query


async def test_search_nodes_differs_where_documented(official_file: Path, ours) -> None:
    """Documented difference (docs/reference/graph-tools.md, search): the official search is one case-insensitive
    substring match of the whole query; ours is word-prefix full text that ignores accents and
    ANDs the words of a query. So an infix ('ondon' is inside 'London' but starts no word) finds
    nothing here, an unaccented word ('cafe' is no substring of 'café') finds the accented one, and
    two non-adjacent words of one observation match here but not there."""
    queries = ["ondon", "cafe", "Works Café", "capital japan"]
    async with official(official_file) as theirs:
        official_hits = {
            q: sorted(e["name"] for e in (await call(theirs, "search_nodes", {"query": q}))["entities"])
            for q in queries
        }
    async with ours() as client:
        our_hits = {
            q: sorted(e["name"] for e in (await call(client, "search_nodes", {"query": q}))["entities"])
            for q in queries
        }
    assert official_hits == {"ondon": ["Bob O'Neil"], "cafe": [], "Works Café": [], "capital japan": []}
    assert our_hits == {
        "ondon": [],
        "cafe": ["Alice Martin", "Café Crème"],
        "Works Café": ["Alice Martin"],
        "capital japan": ["東京"],
    }


# --- declarations and result text ------------------------------------------------------------------


async def list_all_tools(client: Client) -> dict[str, Any]:
    tools: dict[str, Any] = {}
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.update((tool.name, tool.model_dump(mode="json", by_alias=True, exclude_none=True)) for tool in page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


async def test_the_nine_shared_tools_are_declared_like_the_official_ones(mcp_server: McpServer, tmp_path: Path) -> None:
    async with official(tmp_path / "memory.jsonl") as theirs:
        official_tools = await list_all_tools(theirs)
    async with mcp_server.client("alice", namespace=mcp_server.namespace("alice")) as client:
        our_tools = await list_all_tools(client)
    assert sorted(official_tools) == sorted(OFFICIAL_TOOLS)
    assert set(OFFICIAL_TOOLS) <= set(our_tools)
    for name in OFFICIAL_TOOLS:
        official_tool, our_tool = official_tools[name], our_tools[name]
        for key in ("title", "description", "annotations"):
            assert our_tool.get(key) == official_tool.get(key), (name, key)
        official_schema, our_schema = official_tool["inputSchema"], our_tool["inputSchema"]
        assert our_schema["type"] == official_schema["type"] == "object"
        assert our_schema.get("required", []) == official_schema.get("required", []), name
        for prop, schema in official_schema["properties"].items():
            assert our_schema["properties"][prop] == schema, (name, prop)
        added = set(our_schema["properties"]) - set(official_schema["properties"])
        assert not added & set(our_schema.get("required", [])), name
        assert "outputSchema" in official_tool
        assert "outputSchema" in our_tool, name


async def test_create_entities_text_is_the_bare_array_pretty_printed(mcp_server: McpServer, tmp_path: Path) -> None:
    batch = [
        {"name": "Ünïcödé ✓", "entityType": "test", "observations": ["日本語テキスト", 'emoji 🎉 and "quotes"']},
        {"name": "Plain", "entityType": "test", "observations": []},
    ]
    async with official(tmp_path / "memory.jsonl") as theirs:
        official_result = await theirs.call_tool("create_entities", {"entities": batch})
    async with mcp_server.client("alice", namespace=mcp_server.namespace("alice")) as client:
        our_result = await client.call_tool("create_entities", {"entities": batch})
    for result in (official_result, our_result):
        assert not result.is_error
        assert len(result.content) == 1
        assert result.content[0].type == "text"
        # JSON.stringify(entities, null, 2): the bare array, 2-space indent, non-ASCII kept as is.
        assert result.content[0].text == json.dumps(batch, indent=2, ensure_ascii=False)
        assert result.structured_content is not None
        assert result.structured_content["entities"] == batch
    assert our_result.content[0].text == official_result.content[0].text


async def test_add_observations_on_a_missing_entity_fails_the_same_way(mcp_server: McpServer, tmp_path: Path) -> None:
    seed = {"entities": [{"name": "Here", "entityType": "test", "observations": []}]}
    arguments = {
        "observations": [
            {"entityName": "Here", "contents": ["should not be saved"]},
            {"entityName": "Not Here ❓", "contents": ["x"]},
        ]
    }
    memory_file = tmp_path / "memory.jsonl"
    async with official(memory_file) as theirs:
        await call(theirs, "create_entities", seed)
        official_result = await theirs.call_tool("add_observations", arguments)
        official_after = await call(theirs, "open_nodes", {"names": ["Here"]})
    async with mcp_server.client("alice", namespace=mcp_server.namespace("alice")) as client:
        await call(client, "create_entities", seed)
        our_result = await client.call_tool("add_observations", arguments)
        our_after = await call(client, "open_nodes", {"names": ["Here"]})
    for result in (official_result, our_result):
        assert result.is_error
        assert [block.text for block in result.content if block.type == "text"] == [
            "Entity with name Not Here ❓ not found"
        ]
        assert result.structured_content is None
    # All or nothing in both: the valid item was not applied either.
    assert official_after["entities"][0]["observations"] == our_after["entities"][0]["observations"] == []


def test_the_official_file_round_trips_through_the_importer(official_file: Path, mcp_server: McpServer) -> None:
    """Importing the same file again changes nothing (the importer is idempotent)."""
    namespace = mcp_server.namespace("alice")
    first = mcp_server.manage("import_memory", str(official_file), "--namespace", namespace, "--no-progress")
    again = mcp_server.manage("import_memory", str(official_file), "--namespace", namespace, "--no-progress")
    assert f"{len(ENTITIES)} entities created" in first.stdout
    assert "0 entities created, 0 observations added, 0 relations created" in again.stdout
