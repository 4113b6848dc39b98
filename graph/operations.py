"""Every graph operation by its public name, with the permission it needs.

This is the one place where a caller's grants are checked against a graph call: the REST API
(graph/api) and the MCP tools both go through `perform`, never straight to services/selectors.
Names are the MCP tool names; the argument names here are the Python keyword names of the
service or selector (each edge maps its wire names, such as `from` or `entityNames`, to them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from access import namespaces
from access.permissions import Access, Permission
from graph import selectors, services
from graph.signals import graph_changed


@dataclass(frozen=True)
class Operation:
    name: str
    function: Callable[..., Any]
    permission: Permission
    # Database-wide operations (compact) take no namespace and need an operator key ('*' write).
    database_wide: bool = False
    # Whether a successful call announces `graph_changed` (vector writes change no graph data).
    changes_graph: bool = True

    @property
    def read_only(self) -> bool:
        return self.permission is Permission.READ


_READ, _WRITE = Permission.READ, Permission.WRITE

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in [
        Operation("create_entities", services.create_entities, _WRITE),
        Operation("create_relations", services.create_relations, _WRITE),
        Operation("add_observations", services.add_observations, _WRITE),
        Operation("delete_entities", services.delete_entities, _WRITE),
        Operation("delete_observations", services.delete_observations, _WRITE),
        Operation("delete_relations", services.delete_relations, _WRITE),
        Operation("upsert_entities", services.upsert_entities, _WRITE),
        Operation("merge_entities", services.merge_entities, _WRITE),
        Operation("rename_entity", services.rename_entity, _WRITE),
        Operation("compact", services.compact, _WRITE, database_wide=True),
        Operation("read_graph", selectors.read_graph, _READ),
        Operation("search_nodes", selectors.search_nodes, _READ),
        Operation("open_nodes", selectors.open_nodes, _READ),
        Operation("get_entity", selectors.get_entity, _READ),
        Operation("batch_get_entities", selectors.batch_get_entities, _READ),
        Operation("entity_exists", selectors.entity_exists, _READ),
        Operation("graph_stats", selectors.graph_stats, _READ),
        Operation("list_entity_types", selectors.list_entity_types, _READ),
        Operation("list_relation_types", selectors.list_relation_types, _READ),
        Operation("search_relations", selectors.search_relations, _READ),
        Operation("degree", selectors.degree, _READ),
        Operation("describe_entity", selectors.describe_entity, _READ),
        Operation("get_neighbors", selectors.get_neighbors, _READ),
        Operation("extract_subgraph", selectors.extract_subgraph, _READ),
        Operation("find_path", selectors.find_path, _READ),
        Operation("find_all_paths", selectors.find_all_paths, _READ),
        Operation("export_graph", selectors.export_graph, _READ),
    ]
}


# Wire (MCP and REST) argument names whose Python keyword differs; every other name is the same.
WIRE_KEYWORDS = {
    "from": "from_",
    "entityNames": "entity_names",
    "newName": "new_name",
    "entityType": "entity_type",
    "relationType": "relation_type",
    "maxDepth": "max_depth",
    "maxPaths": "max_paths",
}


def keyword_arguments(wire: Mapping[str, Any], names: Mapping[str, str] = WIRE_KEYWORDS) -> dict[str, Any]:
    """Map wire argument names (`from`, `entityNames`, ...) to the operations' keyword names."""
    return {names.get(name, name): value for name, value in wire.items()}


# Entered around every write operation before its service opens a transaction, with the
# operation's name and arguments: work that can be done ahead (vectors: embedding the new texts)
# then does not hold SQLite's one write lock. Registered by other apps (vectors/apps.py).
WritePreparer = Callable[[str, dict[str, Any]], AbstractContextManager[None]]
_write_preparers: list[WritePreparer] = []


def prepare_writes_with(preparer: WritePreparer) -> None:
    if preparer not in _write_preparers:
        _write_preparers.append(preparer)


def perform(access: Access, name: str, /, *, namespace: str | None, **arguments: Any) -> Any:
    """Run graph operation `name` for `access` in `namespace` (None: the key's default namespace)."""
    return run(OPERATIONS[name], access, namespace=namespace, **arguments)


def run(operation: Operation, access: Access, /, *, namespace: str | None, **arguments: Any) -> Any:
    """Run `operation` for `access` in `namespace` (None: the key's default namespace).

    Raises NamespaceRequired, NamespaceForbidden or OperatorOnly before anything is read or
    written; domain errors of the operation itself pass through unchanged. Other apps' operation
    tables (vectors.operations) run through here too, so grants are checked in one place."""
    if operation.database_wide:
        access.require_operator(operation.name)
        return operation.function(**arguments)
    target = namespaces.validate(access.resolve_namespace(namespace))
    access.require(target, operation.permission)
    with contextlib.ExitStack() as prepared:
        if not operation.read_only:
            for prepare in _write_preparers:
                prepared.enter_context(prepare(operation.name, arguments))
        result = operation.function(namespace=target, **arguments)
    if not operation.read_only and operation.changes_graph:
        name = operation.name
        transaction.on_commit(lambda: graph_changed.send(sender=Operation, namespace=target, operation=name))
    return result
