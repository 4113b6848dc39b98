"""The knowledge-graph tools: one per operation of `graph.operations.OPERATIONS`, same names.

These are the Rust `mcp-memory` server's 26 graph tools plus `rename_entity`. Nine of them are
shared with the official memory server and keep its exact input schema, title, description and
annotations (they may only gain optional arguments); their results are supersets of its results.

Every handler goes through `access.operations.perform`, which checks the caller's grants; the store
validates every value again (sizes, emptiness, limits) with messages naming the exact field.

Layout: output-schema fragments, argument building blocks, then the declarations (writes, then
reads) in the order of OPERATIONS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import Field

from access.operations import perform
from graph.exporters import FORMATS
from graph.limits import limit as store_limit
from graph.operations import keyword_arguments
from graph.selectors import DEFAULT_READ_GRAPH_LIMIT, DEFAULT_RELATIONS_LIMIT, DEFAULT_SEARCH_LIMIT
from mcp_endpoint.registry import Arguments, NoArguments, Tool, ToolContext, declare
from mcp_endpoint.tools.schema import (
    BOOLEAN,
    INTEGER,
    STRING,
    STRINGS,
    array_schema,
    extend,
    nullable,
    object_schema,
    optional,
)

# --- output schemas ------------------------------------------------------------------------------

ENTITY = object_schema(
    {
        "name": {**STRING, "description": "The name of the entity"},
        "entityType": {**STRING, "description": "The type of the entity"},
        "observations": {**STRINGS, "description": "An array of observation contents associated with the entity"},
    }
)
RELATION = object_schema(
    {
        "from": {**STRING, "description": "The name of the entity where the relation starts"},
        "to": {**STRING, "description": "The name of the entity where the relation ends"},
        "relationType": {**STRING, "description": "The type of the relation"},
    }
)
ENTITIES = array_schema(ENTITY)
RELATIONS = array_schema(RELATION)
SKIPPED_ENTITY = object_schema({"name": STRING, "reason": {**STRING, "description": "Why it was not created"}})
SKIPPED_RELATION = object_schema({"relation": RELATION, "reason": {**STRING, "description": "Why it was not created"}})
ADDED_OBSERVATIONS = {**STRINGS, "description": "The observations actually added (ones already present are skipped)"}
DELETE_RESULT = object_schema(
    {"success": BOOLEAN, "message": STRING, "deleted": {**INTEGER, "description": "How many rows were deleted"}}
)
GRAPH_PAGE = object_schema({"entities": ENTITIES, "relations": RELATIONS})
HAS_MORE = {**BOOLEAN, "description": "True when there are more results than this page holds"}
NEXT_OFFSET = {"type": ["integer", "null"], "description": "The offset of the next page; null on the last page"}
TYPE_LIST = object_schema({"types": array_schema(object_schema({"name": STRING, "count": INTEGER}))})
DIRECTION = {"type": "string", "enum": ["out", "in", "both"]}
DEGREE = object_schema(
    {
        "name": STRING,
        "direction": DIRECTION,
        "degree": {**INTEGER, "description": "Relations in the requested direction"},
        "inDegree": INTEGER,
        "outDegree": INTEGER,
    }
)

# --- argument building blocks --------------------------------------------------------------------

MAX_SEARCH_LIMIT = store_limit("MAX_SEARCH_LIMIT")
MAX_NEIGHBOR_DEPTH = store_limit("MAX_NEIGHBOR_DEPTH")
MAX_PATH_DEPTH = store_limit("MAX_PATH_DEPTH")
MAX_PATHS = store_limit("MAX_PATHS")

Direction = Literal["out", "in", "both"]
ExportFormat = Literal["json", "jsonl", "mermaid", "dot"]  # graph.exporters.FORMATS (checked by the tests)


def _limit(default: int, what: str) -> Any:
    return optional(f"Maximum number of {what} to return (default {default}).", ge=1, le=MAX_SEARCH_LIMIT)


def _offset(what: str, how: str = "pass the nextOffset of the previous result") -> Any:
    return optional(f"Number of {what} to skip (default 0); to page, {how}.", ge=0)


ENTITY_NAME = "The exact name of the entity (case-sensitive)."


# A list within a list item: its first wrong item is reported, not every one (1,000 items of
# 1,000 wrong observations would be a million errors to build, then to count).
Texts = Annotated[list[str], Field(fail_fast=True)]


# Item models shared with the official server: names and descriptions are its own.
class EntityInput(Arguments):
    name: str = Field(description="The name of the entity")
    entityType: str = Field(description="The type of the entity")
    observations: Texts = Field(description="An array of observation contents associated with the entity")


class RelationInput(Arguments):
    from_: str = Field(alias="from", description="The name of the entity where the relation starts")
    to: str = Field(description="The name of the entity where the relation ends")
    relationType: str = Field(description="The type of the relation")


class ObservationAdditionInput(Arguments):
    entityName: str = Field(description="The name of the entity to add the observations to")
    contents: Texts = Field(description="An array of observation contents to add")


class ObservationDeletionInput(Arguments):
    entityName: str = Field(description="The name of the entity containing the observations")
    observations: Texts = Field(description="An array of observations to delete")


# --- handlers ------------------------------------------------------------------------------------


def _perform(operation: str) -> Callable[[ToolContext, Arguments], Any]:
    """The handler of `operation`: only the arguments the caller set are passed, so the store's
    defaults apply to the rest."""

    def handler(ctx: ToolContext, args: Arguments) -> Any:
        wire = args.model_dump(by_alias=True, exclude_unset=True)
        return perform(ctx.access, operation, namespace=ctx.namespace, **keyword_arguments(wire))

    handler.__name__ = f"perform_{operation}"
    return handler


def _declare(
    name: str,
    title: str,
    description: str,
    arguments: type[Arguments],
    output_schema: dict[str, Any],
    *,
    category: str,
    **options: Any,
) -> Tool:
    return declare(
        name, title, description, arguments, output_schema, category=category, handler=_perform(name), **options
    )


def _write(
    name: str, title: str, description: str, arguments: type[Arguments], output: dict[str, Any], **options: Any
) -> Tool:
    return _declare(name, title, description, arguments, output, category="kg-write", **options)


def _read(
    name: str, title: str, description: str, arguments: type[Arguments], output: dict[str, Any], **options: Any
) -> Tool:
    return _declare(name, title, description, arguments, output, category="kg-read", read_only=True, **options)


# The official server pretty-prints its nine tools' text; three of them send the bare array.
OFFICIAL = {"text_indent": 2}


# --- writes --------------------------------------------------------------------------------------


class CreateEntitiesArguments(Arguments):
    entities: list[EntityInput]


_write(
    "create_entities",
    "Create Entities",
    "Create multiple new entities in the knowledge graph",
    CreateEntitiesArguments,
    object_schema(
        {"entities": {**ENTITIES, "description": "The entities created"}, "skipped": array_schema(SKIPPED_ENTITY)}
    ),
    text_payload=lambda result: result["entities"],
    **OFFICIAL,
)


class CreateRelationsArguments(Arguments):
    relations: list[RelationInput]


_write(
    "create_relations",
    "Create Relations",
    "Create multiple new relations between entities in the knowledge graph. Relations should be in active voice",
    CreateRelationsArguments,
    object_schema(
        {"relations": {**RELATIONS, "description": "The relations created"}, "skipped": array_schema(SKIPPED_RELATION)}
    ),
    text_payload=lambda result: result["relations"],
    **OFFICIAL,
)


class AddObservationsArguments(Arguments):
    observations: list[ObservationAdditionInput]


_write(
    "add_observations",
    "Add Observations",
    "Add new observations to existing entities in the knowledge graph",
    AddObservationsArguments,
    object_schema(
        {"results": array_schema(object_schema({"entityName": STRING, "addedObservations": ADDED_OBSERVATIONS}))}
    ),
    text_payload=lambda result: result["results"],
    **OFFICIAL,
)


class DeleteEntitiesArguments(Arguments):
    entityNames: list[str] = Field(description="An array of entity names to delete")


_write(
    "delete_entities",
    "Delete Entities",
    "Delete multiple entities and their associated relations from the knowledge graph",
    DeleteEntitiesArguments,
    DELETE_RESULT,
    destructive=True,
    idempotent=True,
    **OFFICIAL,
)


class DeleteObservationsArguments(Arguments):
    deletions: list[ObservationDeletionInput]


_write(
    "delete_observations",
    "Delete Observations",
    "Delete specific observations from entities in the knowledge graph",
    DeleteObservationsArguments,
    DELETE_RESULT,
    destructive=True,
    idempotent=True,
    **OFFICIAL,
)


class DeleteRelationsArguments(Arguments):
    relations: list[RelationInput] = Field(description="An array of relations to delete")


_write(
    "delete_relations",
    "Delete Relations",
    "Delete multiple relations from the knowledge graph",
    DeleteRelationsArguments,
    DELETE_RESULT,
    destructive=True,
    idempotent=True,
    **OFFICIAL,
)


class UpsertEntitiesArguments(Arguments):
    entities: list[EntityInput] = Field(
        description="Entities to create, or to add the listed observations to when they already exist"
    )


_write(
    "upsert_entities",
    "Upsert Entities",
    "Create the entities that do not exist yet and append to existing ones the observations they lack. "
    "An existing entity keeps its type; returns `created` entities and, per existing one, the observations added.",
    UpsertEntitiesArguments,
    object_schema(
        {
            "created": ENTITIES,
            "updated": array_schema(object_schema({"name": STRING, "addedObservations": ADDED_OBSERVATIONS})),
        }
    ),
    idempotent=True,
)


class MergeEntitiesArguments(Arguments):
    source: str = Field(description="The entity merged away; it is deleted afterwards.")
    target: str = Field(description="The entity that receives the source's observations and relations.")


_write(
    "merge_entities",
    "Merge Entities",
    "Fold `source` into `target` (e.g. two names for the same thing): its observations move over (texts the "
    "target already has are dropped), its relations are re-pointed (duplicates and self-loops dropped), then "
    "`source` is deleted. Returns the merged entity and counts.",
    MergeEntitiesArguments,
    object_schema(
        {
            "entity": ENTITY,
            "movedObservations": INTEGER,
            "droppedDuplicateObservations": INTEGER,
            "movedRelations": INTEGER,
            "droppedRelations": INTEGER,
        }
    ),
    destructive=True,
)


class RenameEntityArguments(Arguments):
    name: str = Field(description="The entity's current name.")
    newName: str = Field(description="The new name; no other entity may have it.")


_write(
    "rename_entity",
    "Rename Entity",
    "Rename an entity, keeping its type, observations and relations. Fails if the new name is taken "
    "(use merge_entities to combine two entities). Returns the renamed entity.",
    RenameEntityArguments,
    ENTITY,
)


_write(
    "compact",
    "Compact Storage",
    "Database maintenance for the whole server (not one namespace): merge search-index segments, refresh "
    "query statistics, free unused pages and truncate the write-ahead log. Needs an operator key ('*' write).",
    NoArguments,
    object_schema(
        {
            "success": BOOLEAN,
            "message": STRING,
            "walCheckpoint": nullable(
                object_schema(
                    {"busy": INTEGER, "logPages": INTEGER, "checkpointedPages": INTEGER},
                    description="Result of the WAL checkpoint; null when it could not run inside a transaction",
                )
            ),
            "freedPages": INTEGER,
        }
    ),
    idempotent=True,
)


# --- reads ---------------------------------------------------------------------------------------


class ReadGraphArguments(Arguments):
    entityType: str | None = optional("Only entities of this exact type.")
    cursor: str | None = optional(
        "The graph is returned in pages: when a result says hasMore, pass its nextCursor here to read the next page."
    )
    offset: int | None = _offset("entities", "prefer cursor (it cannot be combined with offset)")
    limit: int | None = _limit(DEFAULT_READ_GRAPH_LIMIT, "entities per page")


_read(
    "read_graph",
    "Read Graph",
    "Read the entire knowledge graph",
    ReadGraphArguments,
    extend(
        GRAPH_PAGE,
        {
            "hasMore": HAS_MORE,
            "nextCursor": {
                "type": ["string", "null"],
                "description": "Pass as cursor to read the next page; null on the last page",
            },
        },
        description="One page of entities (oldest first) with the relations that start at them; following "
        "nextCursor until hasMore is false yields every entity and relation exactly once.",
    ),
    **OFFICIAL,
)


class SearchNodesArguments(Arguments):
    query: str = Field(description="The search query to match against entity names, types, and observation content")
    entityType: str | None = optional("Only entities of this exact type.")
    limit: int | None = _limit(DEFAULT_SEARCH_LIMIT, "entities")
    offset: int | None = _offset("entities")


_read(
    "search_nodes",
    "Search Nodes",
    "Search for nodes in the knowledge graph based on a query",
    SearchNodesArguments,
    extend(
        GRAPH_PAGE,
        {"hasMore": HAS_MORE, "nextOffset": NEXT_OFFSET},
        description="Matches best first, with the relations touching them. Bare words match as word prefixes, "
        '"quoted phrases" exactly; case and accents are ignored; Chinese, Japanese and Korean match as '
        "substrings; an empty query matches every entity. When hasMore, call again with offset=nextOffset.",
    ),
    **OFFICIAL,
)


class OpenNodesArguments(Arguments):
    names: list[str] = Field(description="An array of entity names to retrieve")


_read(
    "open_nodes",
    "Open Nodes",
    "Open specific nodes in the knowledge graph by their names",
    OpenNodesArguments,
    GRAPH_PAGE,
    **OFFICIAL,
)


class NameArguments(Arguments):
    name: str = Field(description=ENTITY_NAME)


_read(
    "get_entity",
    "Get Entity",
    "One entity by exact name, with its type and all its observations (no relations). Fails if it does not exist.",
    NameArguments,
    ENTITY,
)


class NamesArguments(Arguments):
    names: list[str] = Field(description="Exact entity names.")


_read(
    "batch_get_entities",
    "Get Entities",
    "Several entities by exact name, in the order asked, with null for each name that does not exist.",
    NamesArguments,
    object_schema(
        {"entities": {**array_schema(nullable(ENTITY)), "description": "One per name, in order; null where missing"}}
    ),
)

_read(
    "entity_exists",
    "Entities Exist",
    "Check which names exist as entities: `exists[i]` answers `names[i]`. Cheaper than reading them.",
    NamesArguments,
    object_schema({"names": STRINGS, "exists": array_schema(BOOLEAN)}),
)

_read(
    "graph_stats",
    "Graph Statistics",
    "Counts of entities, relations, observations and distinct entity/relation types in this namespace.",
    NoArguments,
    object_schema(
        {
            "entities": INTEGER,
            "relations": INTEGER,
            "observations": INTEGER,
            "memories": {**INTEGER, "description": "Free-standing memories (observations not on an entity)"},
            "entityTypes": INTEGER,
            "relationTypes": INTEGER,
        }
    ),
)

_read(
    "list_entity_types",
    "List Entity Types",
    "The entity types in use with how many entities have each, most used first. "
    "Use it to reuse existing types instead of inventing near-duplicates.",
    NoArguments,
    TYPE_LIST,
)

_read(
    "list_relation_types",
    "List Relation Types",
    "The relation types in use with how many relations have each, most used first. "
    "Use it to reuse existing types instead of inventing near-duplicates.",
    NoArguments,
    TYPE_LIST,
)


class SearchRelationsArguments(Arguments):
    from_: str | None = optional("Only relations starting at this entity.", alias="from")
    to: str | None = optional("Only relations ending at this entity.")
    relationType: str | None = optional("Only relations of this exact type.")
    limit: int | None = _limit(DEFAULT_SEARCH_LIMIT, "relations")
    offset: int | None = _offset("relations")


_read(
    "search_relations",
    "Search Relations",
    "Relations filtered by start entity, end entity and/or type (all optional, exact names), oldest first. "
    "Paged: when hasMore, call again with offset=nextOffset.",
    SearchRelationsArguments,
    object_schema({"relations": RELATIONS, "hasMore": HAS_MORE, "nextOffset": NEXT_OFFSET}),
)


class DegreeArguments(Arguments):
    name: str = Field(description=ENTITY_NAME)
    direction: Direction | None = optional("Count outgoing (out), incoming (in) or all (both, default) relations.")


_read(
    "degree",
    "Entity Degree",
    "How many relations an entity has: `degree` in the requested direction, plus inDegree and outDegree.",
    DegreeArguments,
    DEGREE,
)


class DescribeEntityArguments(Arguments):
    name: str = Field(description=ENTITY_NAME)
    limit: int | None = optional(
        f"At most this many outgoing and this many incoming relations (default {DEFAULT_RELATIONS_LIMIT}).",
        ge=1,
        le=MAX_SEARCH_LIMIT,
    )


_read(
    "describe_entity",
    "Describe Entity",
    "An entity with its degree, outgoing and incoming relations and neighbour names: use it to decide where "
    "to go next. hasMoreRelations says the relation lists were cut at `limit`.",
    DescribeEntityArguments,
    object_schema(
        {
            "entity": ENTITY,
            "degree": DEGREE,
            "outgoing": RELATIONS,
            "incoming": RELATIONS,
            "neighbors": STRINGS,
            "hasMoreRelations": BOOLEAN,
        }
    ),
)


class GetNeighborsArguments(Arguments):
    name: str = Field(description="The entity to start from.")
    direction: Direction | None = optional("Follow outgoing (out), incoming (in) or all (both, default) relations.")
    relationType: str | None = optional("Only follow relations of this exact type.")
    depth: int | None = optional("How many hops to walk (default 1).", ge=0, le=MAX_NEIGHBOR_DEPTH)


_read(
    "get_neighbors",
    "Get Neighbors",
    "Entities reachable from an entity within `depth` hops (the start is excluded), the relations walked, and "
    "each neighbour's hop distance. At most 1000 entities; `truncated` says the walk stopped there.",
    GetNeighborsArguments,
    extend(
        GRAPH_PAGE,
        {
            "distances": {
                "type": "object",
                "additionalProperties": INTEGER,
                "description": "Neighbour name -> number of hops from the start",
            },
            "truncated": BOOLEAN,
        },
    ),
)


class ExtractSubgraphArguments(Arguments):
    names: list[str] = Field(description="Seed entity names; missing ones are skipped.")
    depth: int | None = optional(
        "Include entities up to this many hops from a seed, either direction (default 1).",
        ge=0,
        le=MAX_NEIGHBOR_DEPTH,
    )


_read(
    "extract_subgraph",
    "Extract Subgraph",
    "The entities within `depth` hops of the seed names and every relation among them. "
    "At most 1000 entities; hasMore says the subgraph was cut there.",
    ExtractSubgraphArguments,
    extend(GRAPH_PAGE, {"hasMore": HAS_MORE}),
)


class FindPathArguments(Arguments):
    from_: str = Field(alias="from", description="The entity the path starts at.")
    to: str = Field(description="The entity the path ends at.")
    direction: Direction | None = optional(
        "both (default: relations are walked either way), out (follow relations forwards) or in (backwards)."
    )
    maxDepth: int | None = optional("Longest path to look for, in hops (default 16).", ge=1, le=MAX_NEIGHBOR_DEPTH)


_read(
    "find_path",
    "Find Path",
    "One shortest path between two entities: the entity names along it and the relations walked. "
    "`found` is false when none exists within maxDepth hops.",
    FindPathArguments,
    object_schema(
        {
            "found": BOOLEAN,
            "path": {**STRINGS, "description": "Entity names from start to end; empty when not found"},
            "relations": RELATIONS,
            "length": {"type": ["integer", "null"], "description": "Hops; null when not found"},
        }
    ),
)


class FindAllPathsArguments(Arguments):
    from_: str = Field(alias="from", description="The entity the paths start at.")
    to: str = Field(description="The entity the paths end at.")
    maxDepth: int | None = optional("Longest path to look for, in hops (default 6).", ge=1, le=MAX_PATH_DEPTH)
    maxPaths: int | None = optional("Return at most this many paths (default 50).", ge=1, le=MAX_PATHS)
    direction: Direction | None = optional(
        "both (default: relations are walked either way), out (follow relations forwards) or in (backwards)."
    )


_read(
    "find_all_paths",
    "Find All Paths",
    "All simple paths between two entities up to maxDepth hops, shortest first, each with the relations "
    "walked. `truncated` says more paths may exist than maxPaths.",
    FindAllPathsArguments,
    object_schema(
        {
            "paths": {**array_schema(STRINGS), "description": "Entity names along each path"},
            "relations": {**array_schema(RELATIONS), "description": "The relations of each path, same order"},
            "count": INTEGER,
            "truncated": BOOLEAN,
        }
    ),
)


class ExportGraphArguments(Arguments):
    format: ExportFormat | None = optional(
        "json (default), jsonl (the official memory server's file format), mermaid or dot (Graphviz)."
    )


_read(
    "export_graph",
    "Export Graph",
    "The whole graph of this namespace as one text document (json, jsonl, mermaid or dot), e.g. to draw or "
    "back it up. Can be large: use read_graph to page through big graphs.",
    ExportGraphArguments,
    object_schema({"format": {"type": "string", "enum": list(FORMATS)}, "content": STRING}),
)
