"""The knowledge-graph tools: one per operation of `graph.operations.OPERATIONS`, same names.

These are the Rust `mcp-memory` server's 26 graph tools plus `rename_entity`, and the two tools of
facts in time: `supersede_observation` and `declare_relation_type`. Nine of them are
shared with the official memory server and keep its exact input schema, title, description and
annotations (they may only gain optional arguments); their results are supersets of its results.

Each tool's arguments and result schema are its operation's contract (graph/contracts.py), which
the REST API (`/v1/graph/<name>`) reads too; what is declared here is only what MCP adds: the
title and description written for a model, the annotations and how the result is rendered as text.

Every handler goes through `access.operations.perform`, which checks the caller's grants; the store
validates every value again (sizes, emptiness, limits) with messages naming the exact field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from access.operations import perform
from graph.contracts import CONTRACTS
from graph.operations import keyword_arguments
from mcp_endpoint.registry import Arguments, Tool, ToolContext, declare

# --- handlers ------------------------------------------------------------------------------------


def _perform(operation: str) -> Callable[[ToolContext, Arguments], Any]:
    """The handler of `operation`: only the arguments the caller set are passed, so the store's
    defaults apply to the rest."""

    def handler(ctx: ToolContext, args: Arguments) -> Any:
        wire = args.model_dump(by_alias=True, exclude_unset=True)
        return perform(ctx.access, operation, namespace=ctx.namespace, **keyword_arguments(wire))

    handler.__name__ = f"perform_{operation}"
    return handler


def _declare(name: str, title: str, description: str, *, category: str, **options: Any) -> Tool:
    contract = CONTRACTS[name]
    return declare(
        name,
        title,
        description,
        contract.arguments,
        contract.result,
        category=category,
        handler=_perform(name),
        **options,
    )


def _write(name: str, title: str, description: str, **options: Any) -> Tool:
    return _declare(name, title, description, category="kg-write", **options)


def _read(name: str, title: str, description: str, **options: Any) -> Tool:
    return _declare(name, title, description, category="kg-read", read_only=True, **options)


# The official server pretty-prints its nine tools' text; three of them send the bare array.
OFFICIAL = {"text_indent": 2}


# --- writes --------------------------------------------------------------------------------------

_write(
    "create_entities",
    "Create Entities",
    "Create multiple new entities in the knowledge graph",
    text_payload=lambda result: result["entities"],
    **OFFICIAL,
)
_write(
    "create_relations",
    "Create Relations",
    "Create multiple new relations between entities in the knowledge graph. Relations should be in active voice",
    text_payload=lambda result: result["relations"],
    **OFFICIAL,
)
_write(
    "add_observations",
    "Add Observations",
    "Add new observations to existing entities in the knowledge graph",
    text_payload=lambda result: result["results"],
    **OFFICIAL,
)
_write(
    "delete_entities",
    "Delete Entities",
    "Delete multiple entities and their associated relations from the knowledge graph",
    destructive=True,
    idempotent=True,
    **OFFICIAL,
)
_write(
    "delete_observations",
    "Delete Observations",
    "Delete specific observations from entities in the knowledge graph",
    destructive=True,
    idempotent=True,
    **OFFICIAL,
)
_write(
    "delete_relations",
    "Delete Relations",
    "Delete multiple relations from the knowledge graph",
    destructive=True,
    idempotent=True,
    **OFFICIAL,
)
_write(
    "upsert_entities",
    "Upsert Entities",
    "Create the entities that do not exist yet and append to existing ones the observations they lack. "
    "An existing entity keeps its type; returns `created` entities and, per existing one, the observations added.",
    idempotent=True,
)
_write(
    "merge_entities",
    "Merge Entities",
    "Fold `source` into `target` (e.g. two names for the same thing): its observations move over (texts the "
    "target already has are dropped), its relations are re-pointed (duplicates and self-loops dropped), then "
    "`source` is deleted. Returns the merged entity and counts.",
    destructive=True,
)
_write(
    "rename_entity",
    "Rename Entity",
    "Rename an entity, keeping its type, observations and relations. Fails if the new name is taken "
    "(use merge_entities to combine two entities). Returns the renamed entity.",
)
_write(
    "supersede_observation",
    "Supersede Observation",
    "A fact about an entity changed: replace its current observation `old` with `new` (e.g. old 'team lead is "
    "Priya', new 'team lead is Marco'). The old one is closed, not deleted: read_graph, search_nodes, open_nodes, "
    "get_neighbors and find_path with asOf (a past time) still return it. Fails if the entity has no observation "
    "`old`, or if `old` was already superseded (the error names its successor).",
)
_write(
    "declare_relation_type",
    "Declare Relation Type",
    "Declare a relation type functional (functional: true): an entity has at most one current relation of it, "
    "e.g. works_at or lives_in. Afterwards create_relations of that type closes the entity's previous one (kept "
    "for asOf reads, listed under `closed`). Refused while an entity has several current relations of the type "
    "(the error lists them) unless closeOlder: true, which keeps the newest. functional: false turns it off.",
    idempotent=True,
)
_write(
    "compact",
    "Compact Storage",
    "Database maintenance for the whole server (not one namespace): merge search-index segments, refresh "
    "query statistics, free unused pages and truncate the write-ahead log. Needs an operator key ('*' write).",
    idempotent=True,
)

# --- reads ---------------------------------------------------------------------------------------

_read("read_graph", "Read Graph", "Read the entire knowledge graph", **OFFICIAL)
_read("search_nodes", "Search Nodes", "Search for nodes in the knowledge graph based on a query", **OFFICIAL)
_read("open_nodes", "Open Nodes", "Open specific nodes in the knowledge graph by their names", **OFFICIAL)
_read(
    "get_entity",
    "Get Entity",
    "One entity by exact name, with its type and all its observations (no relations). Fails if it does not exist.",
)
_read(
    "batch_get_entities",
    "Get Entities",
    "Several entities by exact name, in the order asked, with null for each name that does not exist.",
)
_read(
    "entity_exists",
    "Entities Exist",
    "Check which names exist as entities: `exists[i]` answers `names[i]`. Cheaper than reading them.",
)
_read(
    "graph_stats",
    "Graph Statistics",
    "Counts of entities, relations, observations and distinct entity/relation types in this namespace.",
)
_read(
    "list_entity_types",
    "List Entity Types",
    "The entity types in use with how many entities have each, most used first. "
    "Use it to reuse existing types instead of inventing near-duplicates.",
)
_read(
    "list_relation_types",
    "List Relation Types",
    "The relation types in use with how many relations have each, most used first. "
    "Use it to reuse existing types instead of inventing near-duplicates.",
)
_read(
    "search_relations",
    "Search Relations",
    "Relations filtered by start entity, end entity and/or type (all optional, exact names), oldest first. "
    "Paged: when hasMore, call again with offset=nextOffset.",
)
_read(
    "degree",
    "Entity Degree",
    "How many relations an entity has: `degree` in the requested direction, plus inDegree and outDegree.",
)
_read(
    "describe_entity",
    "Describe Entity",
    "An entity with its degree, outgoing and incoming relations and neighbour names: use it to decide where "
    "to go next. hasMoreRelations says the relation lists were cut at `limit`.",
)
_read(
    "get_neighbors",
    "Get Neighbors",
    "Entities reachable from an entity within `depth` hops (the start is excluded), the relations walked, and "
    "each neighbour's hop distance. At most 1000 entities; `truncated` says the walk stopped there. "
    "Walks the relations that hold now; asOf (ISO 8601 time) walks those valid then, includeExpired all.",
)
_read(
    "extract_subgraph",
    "Extract Subgraph",
    "The entities within `depth` hops of the seed names and every relation among them. "
    "At most 1000 entities; hasMore says the subgraph was cut there.",
)
_read(
    "find_path",
    "Find Path",
    "One shortest path between two entities: the entity names along it and the relations walked. "
    "`found` is false when none exists within maxDepth hops. Uses the relations that hold now; asOf "
    "(ISO 8601 time) uses those valid then, includeExpired all.",
)
_read(
    "find_all_paths",
    "Find All Paths",
    "All simple paths between two entities up to maxDepth hops, shortest first, each with the relations "
    "walked. `truncated` says more paths may exist than maxPaths.",
)
_read(
    "export_graph",
    "Export Graph",
    "The whole graph of this namespace as one text document (json, jsonl, mermaid or dot), e.g. to draw or "
    "back it up. Can be large: use read_graph to page through big graphs.",
)
_read(
    "entity_history",
    "Entity History",
    "What happened to an entity, newest first: its creation, renames, merges, deletion and restores, and every "
    "change to its observations and relations, each with the fields before and after, when, which key, user and "
    "surface. Finds deleted and renamed entities by a name they had; their ids (ent_...) can be given to "
    "restore_memory.",
)
