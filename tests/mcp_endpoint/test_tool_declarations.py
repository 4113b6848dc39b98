"""The knowledge-graph tool declarations: one per store operation, the official server's schemas
kept for the nine shared tools, valid self-contained schemas, and results that match each tool's
declared outputSchema on real data (including empty graphs, missing names and partial pages)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, get_args

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev dependencies
import pytest

from access.exceptions import NamespaceForbidden, OperatorOnly
from graph import contracts, services, traversal
from graph.exporters import FORMATS
from graph.operations import OPERATIONS
from kernel.sql import POSTGRES
from mcp_endpoint import registry
from mcp_endpoint.registry import ToolContext
from mcp_endpoint.tools import graph as graph_tools  # noqa: F401 (importing registers the tools)

# `tools/list` of the official memory server 2026.8.31 (serverInfo 0.6.3), captured with the
# official SDK; test_official_compat.py compares against the live server as well.
OFFICIAL = {tool["name"]: tool for tool in json.loads((Path(__file__).parent / "official_tools.json").read_text())}
GRAPH_TOOLS = [tool for tool in registry.tools() if tool.name in OPERATIONS]


def tool(name: str) -> registry.Tool:
    found = registry.get(name)
    assert found is not None, name
    return found


def walk(node: Any):
    """Every dict in a JSON document."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def closed(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every described object closed, so validation also proves that the schema
    names every key a result carries (the declared schemas stay open for future fields)."""
    strict = copy.deepcopy(schema)
    for node in walk(strict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
    return strict


def conforms(result: Any, schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(closed(schema)).validate(result)


# --- declarations --------------------------------------------------------------------------------


def test_every_operation_has_exactly_one_tool():
    names = [t.name for t in registry.tools(("kg-read", "kg-write"))]
    assert sorted(names) == sorted(OPERATIONS)
    assert len(names) == len(set(names)) == 30


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_tool_matches_its_operation(name):
    declared, operation = tool(name), OPERATIONS[name]
    assert declared.category == ("kg-read" if operation.read_only else "kg-write")
    assert declared.read_only is operation.read_only
    assert declared.title.strip()
    assert declared.description.strip()
    official_properties = OFFICIAL.get(name, {}).get("inputSchema", {}).get("properties", {})
    for prop, schema in declared.input_schema["properties"].items():
        # The official server leaves a few top-level arrays undescribed; everything else says what it is.
        if prop in official_properties and "description" not in official_properties[prop]:
            continue
        assert schema.get("description", "").strip(), f"{name}.{prop} has no description"


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_tools_keep_the_official_declaration(name):
    official, ours = OFFICIAL[name], tool(name).describe()
    assert name in OPERATIONS
    assert ours["title"] == official["title"]
    assert ours["description"] == official["description"]
    assert ours["annotations"] == official["annotations"]

    expected = {k: v for k, v in official["inputSchema"].items() if k != "$schema"}
    schema = ours["inputSchema"]
    assert "$schema" not in schema
    # Same keys besides the properties (type, required, ...), same required list.
    assert {k: v for k, v in schema.items() if k != "properties"} == {
        k: v for k, v in expected.items() if k != "properties"
    }
    assert schema.get("required", []) == expected.get("required", [])
    # Every official property exactly as it is (nesting, item properties and descriptions too).
    for prop, prop_schema in expected["properties"].items():
        assert schema["properties"][prop] == prop_schema, prop
    # Anything added is optional.
    added = set(schema["properties"]) - set(expected["properties"])
    assert not added & set(schema.get("required", []))


def test_only_read_graph_and_search_nodes_gain_arguments():
    gained = {
        name: sorted(set(tool(name).input_schema["properties"]) - set(OFFICIAL[name]["inputSchema"]["properties"]))
        for name in OFFICIAL
    }
    assert {name: props for name, props in gained.items() if props} == {
        "read_graph": ["asOf", "cursor", "entityType", "includeExpired", "limit", "offset"],
        "search_nodes": ["asOf", "entityType", "includeExpired", "limit", "offset"],
        "open_nodes": ["asOf", "includeExpired"],
    }


@pytest.mark.parametrize("declared", GRAPH_TOOLS, ids=lambda t: t.name)
def test_schemas_are_valid_and_self_contained(declared):
    jsonschema.Draft202012Validator.check_schema(declared.input_schema)
    jsonschema.Draft202012Validator.check_schema(declared.output_schema)
    for schema in (declared.input_schema, declared.output_schema):
        assert schema["type"] == "object"
        for node in walk(schema):
            assert "$ref" not in node
            assert "$defs" not in node
    # Results may gain fields later: the top level stays open, and says what is always there.
    assert "additionalProperties" not in declared.output_schema
    assert set(declared.output_schema["required"]) <= set(declared.output_schema["properties"])


@pytest.mark.parametrize(
    ("name", "indent", "payload_key"),
    [
        ("create_entities", 2, "entities"),
        ("create_relations", 2, "relations"),
        ("add_observations", 2, "results"),
        ("delete_entities", 2, None),
        ("delete_observations", 2, None),
        ("delete_relations", 2, None),
        ("read_graph", 2, None),
        ("search_nodes", 2, None),
        ("open_nodes", 2, None),
        ("get_entity", None, None),
        ("compact", None, None),
    ],
)
def test_text_rendering_options(name, indent, payload_key):
    declared = tool(name)
    assert declared.text_indent == indent
    if payload_key is None:
        assert declared.text_payload is None
    else:
        assert declared.text_payload is not None
        result = {payload_key: [{"a": 1}], "skipped": [{"b": 2}]}
        assert declared.text_payload(result) == [{"a": 1}]


@pytest.mark.parametrize(
    ("name", "annotations"),
    [
        ("upsert_entities", (False, False, True)),
        ("merge_entities", (False, True, False)),
        ("rename_entity", (False, False, False)),
        ("compact", (False, False, True)),
        ("get_neighbors", (True, False, True)),
    ],
)
def test_annotations_of_the_other_tools(name, annotations):
    hints = tool(name).annotations
    assert (hints["readOnlyHint"], hints["destructiveHint"], hints["idempotentHint"]) == annotations
    assert hints["openWorldHint"] is False


def test_enums_match_the_store():
    assert set(get_args(contracts.ExportFormat)) == set(FORMATS)
    assert set(get_args(contracts.Direction)) == {d.value for d in traversal.Direction}


def test_wire_names_and_aliases():
    find_path = tool("find_path").arguments.model_validate({"from": "A", "to": "B", "maxDepth": 3})
    assert find_path.model_dump(by_alias=True, exclude_unset=True) == {"from": "A", "to": "B", "maxDepth": 3}
    relations = tool("create_relations").arguments.model_validate(
        {"relations": [{"from": "A", "to": "B", "relationType": "knows", "stray": 1}]}
    )
    assert relations.model_dump(by_alias=True, exclude_unset=True) == {
        "relations": [{"from": "A", "to": "B", "relationType": "knows"}]
    }


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("get_neighbors", {"name": "A", "direction": "sideways"}),
        ("export_graph", {"format": "pdf"}),
        ("read_graph", {"limit": 0}),
        ("find_all_paths", {"from": "A", "to": "B", "maxPaths": 10_000}),
        ("create_entities", {"entities": [{"name": "A", "entityType": "x"}]}),
        ("search_nodes", {}),
    ],
)
def test_arguments_outside_the_schema_are_rejected(name, arguments):
    declared = tool(name)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(arguments, declared.input_schema)
    with pytest.raises(ValueError, match="validation error"):
        declared.arguments.model_validate(arguments)


# --- results against outputSchema, on real data -------------------------------------------------


def person(name: str, *observations: str, kind: str = "person") -> dict[str, Any]:
    return {"name": name, "entityType": kind, "observations": list(observations)}


def rel(source: str, target: str, kind: str = "knows") -> dict[str, str]:
    return {"from": source, "to": target, "relationType": kind}


@pytest.fixture
def ctx(alice_key) -> ToolContext:
    # No namespace on the connection: the key's default, org:alice:notes.
    return ToolContext(access=alice_key.key.to_access(), namespace=None)


@pytest.fixture
def root_ctx(root_key) -> ToolContext:
    return ToolContext(access=root_key.key.to_access(), namespace=None)


@pytest.fixture
def small_graph(ctx, alice):
    """Alice -knows-> Bob -knows-> Carol, Alice -works_with-> Carol, Dave (a project), Eve alone."""
    services.create_entities(
        namespace=alice,
        entities=[
            person("Alice", "likes green tea", "lives in Lisbon"),
            person("Bob", "plays chess"),
            person("Carol", "writes Rust"),
            person("Dave", "due in May", kind="project"),
            person("Eve"),
        ],
    )
    services.create_relations(
        namespace=alice, relations=[rel("Alice", "Bob"), rel("Bob", "Carol"), rel("Alice", "Carol", "works_with")]
    )
    return alice


def call(ctx: ToolContext, name: str, arguments: dict[str, Any]) -> Any:
    declared = tool(name)
    jsonschema.validate(arguments, declared.input_schema)
    result = declared.handler(ctx, declared.arguments.model_validate(arguments))
    conforms(result, declared.output_schema)
    # What the protocol layer sends must be plain JSON.
    assert json.loads(json.dumps(result)) == result
    return result


# (tool, arguments, a check of the result) on small_graph, in alice's namespace.
ON_GRAPH: list[tuple[str, dict[str, Any], Any]] = [
    (
        "create_entities",
        {"entities": [person("Frank", "new"), person("Alice", "dup"), person("Frank")]},
        lambda r: [e["name"] for e in r["entities"]] == ["Frank"] and len(r["skipped"]) == 2,
    ),
    (
        "create_relations",
        {"relations": [rel("Eve", "Dave", "owns"), rel("Alice", "Bob"), rel("Eve", "Nobody")]},
        lambda r: r["relations"] == [rel("Eve", "Dave", "owns")] and len(r["skipped"]) == 2,
    ),
    (
        "add_observations",
        {"observations": [{"entityName": "Bob", "contents": ["plays chess", "runs"]}]},
        lambda r: r["results"] == [{"entityName": "Bob", "addedObservations": ["runs"]}],
    ),
    ("delete_entities", {"entityNames": ["Bob", "Nobody"]}, lambda r: r["deleted"] == 1 and r["success"]),
    (
        "delete_observations",
        {"deletions": [{"entityName": "Alice", "observations": ["likes green tea", "never said"]}]},
        lambda r: r["deleted"] == 1,
    ),
    ("delete_relations", {"relations": [rel("Alice", "Bob"), rel("Bob", "Alice")]}, lambda r: r["deleted"] == 1),
    (
        "upsert_entities",
        {"entities": [person("Alice", "likes green tea", "cycles"), person("Zed", "new", kind="robot")]},
        lambda r: (
            [e["name"] for e in r["created"]] == ["Zed"]
            and r["updated"] == [{"name": "Alice", "addedObservations": ["cycles"]}]
        ),
    ),
    (
        "merge_entities",
        {"source": "Carol", "target": "Bob"},
        lambda r: r["entity"]["name"] == "Bob" and r["movedObservations"] == 1 and r["droppedRelations"] == 1,
    ),
    ("rename_entity", {"name": "Eve", "newName": "Eve Smith"}, lambda r: r["name"] == "Eve Smith"),
    (
        "supersede_observation",
        {"entityName": "Bob", "old": "plays chess", "new": "plays go"},
        lambda r: r["new"] == "plays go" and r["supersedes"].startswith("mem_"),
    ),
    (
        "declare_relation_type",
        {"relationType": "works_with", "functional": True},
        lambda r: r == {"relationType": "works_with", "functional": True, "closed": []},
    ),
    ("read_graph", {}, lambda r: len(r["entities"]) == 5 and len(r["relations"]) == 3 and not r["hasMore"]),
    (
        "read_graph",
        {"limit": 2},
        lambda r: [e["name"] for e in r["entities"]] == ["Alice", "Bob"] and r["hasMore"] and r["nextCursor"],
    ),
    ("read_graph", {"entityType": "project"}, lambda r: [e["name"] for e in r["entities"]] == ["Dave"]),
    ("read_graph", {"offset": 4}, lambda r: [e["name"] for e in r["entities"]] == ["Eve"]),
    ("search_nodes", {"query": "tea"}, lambda r: [e["name"] for e in r["entities"]] == ["Alice"]),
    (
        "search_nodes",
        {"query": "", "limit": 2, "offset": 1},
        lambda r: len(r["entities"]) == 2 and r["hasMore"] and r["nextOffset"] == 3,
    ),
    ("search_nodes", {"query": "rust", "entityType": "project"}, lambda r: r["entities"] == []),
    (
        "open_nodes",
        {"names": ["Bob", "Nobody"]},
        lambda r: [e["name"] for e in r["entities"]] == ["Bob"] and len(r["relations"]) == 2,
    ),
    ("get_entity", {"name": "Alice"}, lambda r: r == person("Alice", "likes green tea", "lives in Lisbon")),
    (
        "batch_get_entities",
        {"names": ["Eve", "Nobody", "Bob"]},
        lambda r: r["entities"][1] is None and r["entities"][0] == person("Eve"),
    ),
    ("entity_exists", {"names": ["Eve", "Nobody"]}, lambda r: r["exists"] == [True, False]),
    (
        "graph_stats",
        {},
        lambda r: (r["entities"], r["relations"], r["observations"], r["entityTypes"]) == (5, 3, 5, 2),
    ),
    (
        "list_entity_types",
        {},
        lambda r: r["types"] == [{"name": "person", "count": 4}, {"name": "project", "count": 1}],
    ),
    ("list_relation_types", {}, lambda r: [t["name"] for t in r["types"]] == ["knows", "works_with"]),
    ("search_relations", {"from": "Alice"}, lambda r: len(r["relations"]) == 2 and r["nextOffset"] is None),
    (
        "search_relations",
        {"relationType": "knows", "limit": 1},
        lambda r: r["relations"] == [rel("Alice", "Bob")] and r["hasMore"] and r["nextOffset"] == 1,
    ),
    ("search_relations", {"to": "Nobody"}, lambda r: r["relations"] == [] and not r["hasMore"]),
    (
        "degree",
        {"name": "Carol", "direction": "in"},
        lambda r: (r["degree"], r["inDegree"], r["outDegree"], r["direction"]) == (2, 2, 0, "in"),
    ),
    ("degree", {"name": "Alice"}, lambda r: r["degree"] == 2 and r["direction"] == "both"),
    (
        "describe_entity",
        {"name": "Alice", "limit": 1},
        lambda r: len(r["outgoing"]) == 1 and r["incoming"] == [] and r["hasMoreRelations"],
    ),
    (
        "get_neighbors",
        {"name": "Alice", "direction": "out", "relationType": "knows", "depth": 2},
        lambda r: r["distances"] == {"Bob": 1, "Carol": 2} and not r["truncated"],
    ),
    ("get_neighbors", {"name": "Alice", "relationType": "unknown"}, lambda r: r["entities"] == []),
    (
        "extract_subgraph",
        {"names": ["Bob", "Nobody"], "depth": 1},
        lambda r: {e["name"] for e in r["entities"]} == {"Alice", "Bob", "Carol"} and len(r["relations"]) == 3,
    ),
    (
        "find_path",
        {"from": "Alice", "to": "Carol", "direction": "out"},
        lambda r: r["found"] and r["path"] == ["Alice", "Carol"] and r["length"] == 1,
    ),
    ("find_path", {"from": "Alice", "to": "Eve", "maxDepth": 2}, lambda r: not r["found"] and r["length"] is None),
    (
        "find_all_paths",
        {"from": "Alice", "to": "Carol", "maxDepth": 3, "maxPaths": 5},
        lambda r: r["paths"] == [["Alice", "Carol"], ["Alice", "Bob", "Carol"]] and r["count"] == 2,
    ),
    ("find_all_paths", {"from": "Alice", "to": "Carol", "maxPaths": 1}, lambda r: r["count"] == 1 and r["truncated"]),
    ("export_graph", {}, lambda r: r["format"] == "json" and "Alice" in r["content"]),
    ("export_graph", {"format": "jsonl"}, lambda r: len(r["content"].splitlines()) == 8),
    ("export_graph", {"format": "mermaid"}, lambda r: "Alice" in r["content"]),
    ("export_graph", {"format": "dot"}, lambda r: r["content"].startswith("digraph")),
    (
        "entity_history",
        {"name": "Alice"},
        lambda r: r["name"] == "Alice" and r["versions"][-1]["action"] == "create" and len(r["entities"]) == 1,
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "arguments", "check"), ON_GRAPH, ids=[f"{c[0]}-{i}" for i, c in enumerate(ON_GRAPH)])
def test_results_conform_to_output_schema(ctx, small_graph, name, arguments, check):
    assert check(call(ctx, name, arguments))


# Namespace never written to: every read answers with its "empty" shape.
ON_EMPTY: list[tuple[str, dict[str, Any], Any]] = [
    ("read_graph", {}, lambda r: r == {"entities": [], "relations": [], "hasMore": False, "nextCursor": None}),
    ("search_nodes", {"query": "anything"}, lambda r: r["entities"] == [] and r["nextOffset"] is None),
    ("open_nodes", {"names": ["A"]}, lambda r: r == {"entities": [], "relations": []}),
    ("batch_get_entities", {"names": ["A", "B"]}, lambda r: r == {"entities": [None, None]}),
    ("entity_exists", {"names": ["A"]}, lambda r: r == {"names": ["A"], "exists": [False]}),
    ("graph_stats", {}, lambda r: set(r.values()) == {0}),
    ("list_entity_types", {}, lambda r: r == {"types": []}),
    ("list_relation_types", {}, lambda r: r == {"types": []}),
    ("search_relations", {}, lambda r: r == {"relations": [], "hasMore": False, "nextOffset": None}),
    ("extract_subgraph", {"names": ["A"]}, lambda r: r == {"entities": [], "relations": [], "hasMore": False}),
    ("export_graph", {"format": "mermaid"}, lambda r: r["format"] == "mermaid"),
    ("delete_entities", {"entityNames": ["A"]}, lambda r: r["deleted"] == 0),
    ("delete_observations", {"deletions": [{"entityName": "A", "observations": ["x"]}]}, lambda r: r["deleted"] == 0),
    ("delete_relations", {"relations": [rel("A", "B")]}, lambda r: r["deleted"] == 0),
    ("add_observations", {"observations": []}, lambda r: r == {"results": []}),
    ("create_relations", {"relations": [rel("A", "B")]}, lambda r: r["relations"] == [] and len(r["skipped"]) == 1),
    ("upsert_entities", {"entities": []}, lambda r: r == {"created": [], "updated": []}),
    ("create_entities", {"entities": [person("A")]}, lambda r: r == {"entities": [person("A")], "skipped": []}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "arguments", "check"), ON_EMPTY, ids=[f"{c[0]}-{i}" for i, c in enumerate(ON_EMPTY)])
def test_empty_results_conform_to_output_schema(ctx, name, arguments, check):
    assert check(call(ctx, name, arguments))


def test_every_tool_is_exercised():
    exercised = {case[0] for case in ON_GRAPH + ON_EMPTY} | {"compact"}
    assert exercised == set(OPERATIONS)


@pytest.mark.django_db
def test_compact_conforms_inside_a_transaction(root_ctx, small_graph):
    # Inside the test's transaction the WAL checkpoint cannot run: walCheckpoint is null.
    result = call(root_ctx, "compact", {})
    assert result["success"] is True
    assert result["walCheckpoint"] is None


@pytest.mark.django_db(transaction=True)
def test_compact_conforms_with_a_checkpoint(root_ctx):
    result = call(root_ctx, "compact", {})
    if POSTGRES:  # VACUUM (ANALYZE): the server owns its WAL, and no pages are handed back
        assert result == {"success": True, "message": "Compaction finished", "walCheckpoint": None, "freedPages": 0}
    else:
        assert set(result["walCheckpoint"]) == {"busy", "logPages", "checkpointedPages"}


@pytest.mark.django_db
def test_compact_needs_an_operator(ctx):
    with pytest.raises(OperatorOnly):
        call(ctx, "compact", {})


@pytest.mark.django_db
def test_explicit_null_means_not_given(ctx, small_graph):
    # Not advertised in the schema, but clients that send null for unset optional arguments work.
    declared = tool("search_nodes")
    arguments = declared.arguments.model_validate({"query": "", "limit": None, "entityType": None, "offset": None})
    result = declared.handler(ctx, arguments)
    conforms(result, declared.output_schema)
    assert len(result["entities"]) == 5


@pytest.mark.django_db
def test_read_graph_pages_follow_next_cursor(ctx, small_graph):
    seen: list[str] = []
    relations = 0
    arguments: dict[str, Any] = {"limit": 2}
    while True:
        page = call(ctx, "read_graph", arguments)
        seen += [e["name"] for e in page["entities"]]
        relations += len(page["relations"])
        if not page["hasMore"]:
            assert page["nextCursor"] is None
            break
        arguments = {"limit": 2, "cursor": page["nextCursor"]}
    assert seen == ["Alice", "Bob", "Carol", "Dave", "Eve"]
    assert relations == 3


@pytest.mark.django_db
def test_handlers_check_grants(carol_key, small_graph):
    reader = ToolContext(access=carol_key.key.to_access(), namespace=None)
    assert call(reader, "get_entity", {"name": "Bob"})["name"] == "Bob"
    with pytest.raises(NamespaceForbidden):
        call(reader, "create_entities", {"entities": [person("X")]})
    with pytest.raises(NamespaceForbidden):
        call(ToolContext(access=reader.access, namespace="org:bob:notes"), "read_graph", {})


@pytest.mark.django_db
def test_connection_namespace_is_used(ctx, small_graph):
    other = ToolContext(access=ctx.access, namespace="org:alice:other")
    assert call(other, "read_graph", {})["entities"] == []
    call(other, "create_entities", {"entities": [person("Elsewhere")]})
    assert call(ctx, "entity_exists", {"names": ["Elsewhere"]})["exists"] == [False]
    assert call(other, "entity_exists", {"names": ["Elsewhere"]})["exists"] == [True]
