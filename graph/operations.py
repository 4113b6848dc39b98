"""The graph operations by their public (MCP tool) names, with the permission each needs.

Declared with `access.operations`, whose runner checks grants for every surface: the REST API
(graph/api), the MCP tools, the web pages and the admin all call `access.operations.perform`, never
straight to services/selectors. The argument names here are the Python keyword names of the
service or selector (each edge maps its wire names, such as `from` or `entityNames`, to them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from access.operations import Operation, Reach, declare
from access.permissions import Permission
from graph import browse, history, overview, selectors, services

_READ, _WRITE = Permission.READ, Permission.WRITE
GRAPH = "graph"  # what the writes change, as `operation_applied` announces it


def _write(name: str, function: Any, **options: Any) -> Operation:
    return Operation(name, function, _WRITE, changes=GRAPH, **options)


def _read(name: str, function: Any) -> Operation:
    return Operation(name, function, _READ)


OPERATIONS: dict[str, Operation] = declare(
    [
        _write("create_entities", services.create_entities),
        _write("create_relations", services.create_relations),
        _write("add_observations", services.add_observations),
        _write("delete_entities", services.delete_entities),
        _write("delete_observations", services.delete_observations),
        _write("delete_relations", services.delete_relations),
        _write("upsert_entities", services.upsert_entities),
        _write("merge_entities", services.merge_entities),
        _write("rename_entity", services.rename_entity),
        _write("supersede_observation", services.supersede_observation),
        _write("declare_relation_type", services.declare_relation_type),
        _write("compact", services.compact, reach=Reach.DATABASE),
        _read("read_graph", selectors.read_graph),
        _read("search_nodes", selectors.search_nodes),
        _read("open_nodes", selectors.open_nodes),
        _read("get_entity", selectors.get_entity),
        _read("batch_get_entities", selectors.batch_get_entities),
        _read("entity_exists", selectors.entity_exists),
        _read("graph_stats", selectors.graph_stats),
        _read("list_entity_types", selectors.list_entity_types),
        _read("list_relation_types", selectors.list_relation_types),
        _read("search_relations", selectors.search_relations),
        _read("degree", selectors.degree),
        _read("describe_entity", selectors.describe_entity),
        _read("get_neighbors", selectors.get_neighbors),
        _read("extract_subgraph", selectors.extract_subgraph),
        _read("find_path", selectors.find_path),
        _read("find_all_paths", selectors.find_all_paths),
        _read("export_graph", selectors.export_graph),
        _read("entity_history", history.entity_history),
    ]
)

# Operations of the server's own pages (the console), with no MCP tool or REST route: OPERATIONS
# above is what the REST API and MCP serve, each with its contract (graph/contracts.py); these
# shapes are the pages' own. Overviews of several namespaces (graph/overview.py); bounded drawings
# and an entity's facts with their authors (graph/browse.py); an import from a file on the server
# (the console's uploads, graph/import_jobs.py), and an export read as it is sent (downloads).
PAGE_OPERATIONS: dict[str, Operation] = declare(
    [
        Operation("namespace_growth", overview.namespace_growth, _READ, reach=Reach.NAMESPACES),
        Operation("recent_changes", overview.recent_changes, _READ, reach=Reach.NAMESPACES),
        _read("graph_sample", browse.graph_sample),
        _read("graph_neighbourhood", browse.graph_neighbourhood),
        _read("entity_facts", browse.entity_facts),
        _write("import_file", services.import_file),
        _read("export_stream", selectors.export_stream),
    ]
)


# Wire (MCP and REST) argument names whose Python keyword differs; every other name is the same.
WIRE_KEYWORDS = {
    "from": "from_",
    "entityNames": "entity_names",
    "newName": "new_name",
    "entityType": "entity_type",
    "relationType": "relation_type",
    "maxDepth": "max_depth",
    "maxPaths": "max_paths",
    "entityName": "entity_name",
    "closeOlder": "close_older",
    "asOf": "as_of",
    "includeExpired": "include_expired",
}


def keyword_arguments(wire: Mapping[str, Any], names: Mapping[str, str] = WIRE_KEYWORDS) -> dict[str, Any]:
    """Map wire argument names (`from`, `entityNames`, ...) to the operations' keyword names."""
    return {names.get(name, name): value for name, value in wire.items()}
