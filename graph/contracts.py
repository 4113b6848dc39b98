"""The contract of every graph operation: its arguments and its result, declared once.

`CONTRACTS[name]` serves both surfaces: the MCP tool `name` (mcp_endpoint/tools/graph.py) takes
its `inputSchema` and argument validation from `arguments` and its `outputSchema` from `result`;
`POST /v1/graph/<name>` (graph/api) validates its body with the same model and documents body and
answer in /openapi.json from the same declarations. Wire names are the MCP argument names
(`entityNames`, `relationType`, `from`, ...); graph.operations maps them to keyword names.

Nine operations are shared with the official memory server: their argument models keep its exact
names, types and descriptions (they may only gain optional arguments), and their results are
supersets of its results. Where the REST API reads an argument differently (it predates this
file, and its answers are pinned), a `Rest` marker says so (kernel/contracts.py).

Layout: the base of every argument model, result-schema fragments, argument building blocks,
then the contracts (writes, then reads) in the order of graph.operations.OPERATIONS.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, ClassVar, Literal

from annotated_types import MaxLen
from pydantic import BaseModel, ConfigDict, Field, model_validator

from graph import history, limits
from graph.exporters import FORMATS
from graph.selectors import DEFAULT_READ_GRAPH_LIMIT, DEFAULT_RELATIONS_LIMIT, DEFAULT_SEARCH_LIMIT
from kernel.contracts import (
    BOOLEAN,
    INTEGER,
    STRING,
    STRINGS,
    Contract,
    Rest,
    array_schema,
    extend,
    nullable,
    object_schema,
    optional,
)

# --- the base of every argument model -----------------------------------------------------------


class Arguments(BaseModel):
    """Base of every operation's (and MCP tool's) argument model.

    Unknown arguments are ignored (as the official server's zod objects do), so a model that adds
    a stray key still gets its call through; every declared argument is validated."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    # Lists allowed more items than MAX_ITEMS_PER_REQUEST (a vector's components), by argument name.
    long_lists: ClassVar[dict[str, int | None]] = {}

    @model_validator(mode="before")
    @classmethod
    def _short_lists(cls, data: Any) -> Any:
        # A list over its item limit is refused by its length (LimitExceeded, a tool error), before
        # pydantic validates, and reports, every one of its items. Arguments declared with a
        # max_length are left to pydantic, which checks the length first too.
        return limits.short_lists(data, longer=_list_limits(cls))


@functools.cache
def _list_limits(model: type[Arguments]) -> dict[str, int | None]:
    """The model's `long_lists`, and None for each argument (by name and alias) whose length
    pydantic checks (max_length). Once per model: it runs on every call."""
    declared: dict[str, int | None] = {}
    for name, info in model.model_fields.items():
        if any(isinstance(constraint, MaxLen) for constraint in info.metadata):
            declared[name] = declared[info.alias or name] = None
    return {**declared, **model.long_lists}


class NoArguments(Arguments):
    pass


# --- result schemas ------------------------------------------------------------------------------

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

# Validity time (graph/validity.py): reads given `asOf` or `includeExpired` mark each fact with
# it. These properties are only present then, so the default answers keep the official shapes.
VALIDITY = {
    "validFrom": {**STRING, "description": "ISO 8601 UTC time from which the fact holds"},
    "validTo": {
        "type": ["string", "null"],
        "description": "ISO 8601 UTC time at which it stopped holding; null: still",
    },
    "current": {**BOOLEAN, "description": "Whether it holds now"},
}
OBSERVATION_DETAIL = object_schema(
    {
        "id": {**STRING, "description": "The observation's id (mem_<n>)"},
        "text": STRING,
        **VALIDITY,
        "supersedes": {"type": ["string", "null"], "description": "The id of the observation it replaced"},
        "supersededBy": {"type": ["string", "null"], "description": "The id of the observation that replaced it"},
    }
)
TIMED_ENTITY = {
    **ENTITY,
    "properties": {
        **ENTITY["properties"],
        "observationDetails": {
            **array_schema(OBSERVATION_DETAIL),
            "description": "Only with asOf or includeExpired: the observations with their validity and lineage",
        },
    },
}
TIMED_RELATION = {
    **RELATION,
    "properties": {
        **RELATION["properties"],
        **{
            key: {**value, "description": f"Only with asOf or includeExpired. {value['description']}"}
            for key, value in VALIDITY.items()
        },
    },
}
TIMED_ENTITIES = array_schema(TIMED_ENTITY)
TIMED_RELATIONS = array_schema(TIMED_RELATION)
SKIPPED_ENTITY = object_schema({"name": STRING, "reason": {**STRING, "description": "Why it was not created"}})
SKIPPED_RELATION = object_schema({"relation": RELATION, "reason": {**STRING, "description": "Why it was not created"}})
ADDED_OBSERVATIONS = {**STRINGS, "description": "The observations actually added (ones already present are skipped)"}
DELETE_RESULT = object_schema(
    {"success": BOOLEAN, "message": STRING, "deleted": {**INTEGER, "description": "How many rows were deleted"}}
)
GRAPH_PAGE = object_schema({"entities": ENTITIES, "relations": RELATIONS})
TIMED_PAGE = object_schema({"entities": TIMED_ENTITIES, "relations": TIMED_RELATIONS})
HAS_MORE = {**BOOLEAN, "description": "True when there are more results than this page holds"}
NEXT_OFFSET = {"type": ["integer", "null"], "description": "The offset of the next page; null on the last page"}
TYPE_LIST = object_schema({"types": array_schema(object_schema({"name": STRING, "count": INTEGER}))})
RELATION_TYPE_LIST = object_schema(
    {
        "types": array_schema(
            {
                **object_schema({"name": STRING, "count": {**INTEGER, "description": "Current relations of it"}}),
                "properties": {
                    "name": STRING,
                    "count": {**INTEGER, "description": "Current relations of it"},
                    "functional": {
                        **BOOLEAN,
                        "description": "Only on functional types (declare_relation_type): true",
                    },
                },
            }
        )
    }
)
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

MAX_SEARCH_LIMIT = limits.limit("MAX_SEARCH_LIMIT")
MAX_NEIGHBOR_DEPTH = limits.limit("MAX_NEIGHBOR_DEPTH")
MAX_PATH_DEPTH = limits.limit("MAX_PATH_DEPTH")
MAX_PATHS = limits.limit("MAX_PATHS")

Direction = Literal["out", "in", "both"]
ExportFormat = Literal["json", "jsonl", "mermaid", "dot"]  # graph.exporters.FORMATS (checked by the tests)


def _limit(default: int, what: str) -> Any:
    return optional(f"Maximum number of {what} to return (default {default}).", ge=1, le=MAX_SEARCH_LIMIT)


def _offset(what: str, how: str = "pass the nextOffset of the previous result") -> Any:
    return optional(f"Number of {what} to skip (default 0); to page, {how}.", ge=0)


ENTITY_NAME = "The exact name of the entity (case-sensitive)."

AS_OF = (
    "Ask about the past: an ISO 8601 time (e.g. 2025-03-01 or 2025-03-01T12:00:00Z); returns the facts "
    "(observations, relations) that were valid then, each marked with validFrom/validTo. Default: what holds now."
)
INCLUDE_EXPIRED = (
    "true: return every fact, current and past (closed or superseded ones too), each marked with validFrom, "
    "validTo and current. Default false: only what holds now (or at asOf)."
)


# A list within a list item: its first wrong item is reported, not every one (1,000 items of
# 1,000 wrong observations would be a million errors to build, then to count).
Texts = Annotated[list[str], Field(fail_fast=True)]


# Item models shared with the official server: names and descriptions are its own.
class EntityInput(Arguments):
    name: str = Field(description="The name of the entity")
    entityType: str = Field(description="The type of the entity")
    # The official schema requires it; the store (and so the REST API) defaults it to none.
    observations: Annotated[Texts, Rest(optional=True)] = Field(
        description="An array of observation contents associated with the entity"
    )


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


# --- the contracts, by operation name ------------------------------------------------------------

CONTRACTS: dict[str, Contract[Arguments]] = {}


def _contract(name: str, arguments: type[Arguments], result: dict[str, Any]) -> None:
    CONTRACTS[name] = Contract(arguments, result)


# --- writes --------------------------------------------------------------------------------------


class CreateEntitiesArguments(Arguments):
    entities: list[EntityInput]


_contract(
    "create_entities",
    CreateEntitiesArguments,
    object_schema(
        {"entities": {**ENTITIES, "description": "The entities created"}, "skipped": array_schema(SKIPPED_ENTITY)}
    ),
)


class CreateRelationsArguments(Arguments):
    relations: list[RelationInput]


_contract(
    "create_relations",
    CreateRelationsArguments,
    {
        **object_schema(
            {
                "relations": {**RELATIONS, "description": "The relations created"},
                "skipped": array_schema(SKIPPED_RELATION),
            }
        ),
        # Not required: only there when something was closed.
        "properties": {
            "relations": {**RELATIONS, "description": "The relations created"},
            "skipped": array_schema(SKIPPED_RELATION),
            "closed": {
                **TIMED_RELATIONS,
                "description": "Only when some were: current relations closed because a new relation of a "
                "functional type replaced them (declare_relation_type)",
            },
        },
    },
)


# The optional `dedupe` argument of the writes that add observations to entities.
DEDUPE = (
    "false: store every new observation even when it says the same as one the entity already has in other words "
    "(default true: such a repeat is not stored, the observation it repeats is mentioned instead; exact repeats "
    "are never stored twice)."
)


class AddObservationsArguments(Arguments):
    # No `dedupe` here: the official tool's arguments stay as they are on MCP (REST adds it, graph/api).
    observations: list[ObservationAdditionInput]


_contract(
    "add_observations",
    AddObservationsArguments,
    object_schema(
        {"results": array_schema(object_schema({"entityName": STRING, "addedObservations": ADDED_OBSERVATIONS}))}
    ),
)


class DeleteEntitiesArguments(Arguments):
    entityNames: list[str] = Field(description="An array of entity names to delete")


_contract("delete_entities", DeleteEntitiesArguments, DELETE_RESULT)


class DeleteObservationsArguments(Arguments):
    deletions: list[ObservationDeletionInput]


_contract("delete_observations", DeleteObservationsArguments, DELETE_RESULT)


class DeleteRelationsArguments(Arguments):
    relations: list[RelationInput] = Field(description="An array of relations to delete")


_contract("delete_relations", DeleteRelationsArguments, DELETE_RESULT)


class UpsertEntitiesArguments(Arguments):
    entities: list[EntityInput] = Field(
        description="Entities to create, or to add the listed observations to when they already exist"
    )
    dedupe: bool | None = optional(DEDUPE)


_contract(
    "upsert_entities",
    UpsertEntitiesArguments,
    object_schema(
        {
            "created": ENTITIES,
            "updated": array_schema(object_schema({"name": STRING, "addedObservations": ADDED_OBSERVATIONS})),
        }
    ),
)


class MergeEntitiesArguments(Arguments):
    source: str = Field(description="The entity merged away; it is deleted afterwards.")
    target: str = Field(description="The entity that receives the source's observations and relations.")


_contract(
    "merge_entities",
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
)


class RenameEntityArguments(Arguments):
    name: str = Field(description="The entity's current name.")
    newName: str = Field(description="The new name; no other entity may have it.")


_contract("rename_entity", RenameEntityArguments, ENTITY)


class SupersedeObservationArguments(Arguments):
    entityName: str = Field(description=ENTITY_NAME)
    old: str = Field(description="The exact text of the entity's current observation that is no longer true.")
    new: str = Field(description="The text that is true from now on.")


_contract(
    "supersede_observation",
    SupersedeObservationArguments,
    object_schema(
        {
            "entityName": STRING,
            "old": STRING,
            "new": STRING,
            "id": {**STRING, "description": "The id of the new observation (mem_<n>)"},
            "supersedes": {**STRING, "description": "The id of the observation it replaced (now closed)"},
            "validFrom": {**STRING, "description": "ISO 8601 UTC: when the old one stopped and the new one began"},
        }
    ),
)


class DeclareRelationTypeArguments(Arguments):
    relationType: str = Field(description="The relation type, e.g. works_at.")
    functional: bool = Field(
        description="true: an entity has at most one current relation of this type (a new one closes the old "
        "one); false: any number (the default of every type)."
    )
    closeOlder: bool | None = optional(
        "When some entity already has several current relations of this type: true keeps the newest per entity "
        "and closes the others (default false: the declaration is refused, listing them)."
    )


_contract(
    "declare_relation_type",
    DeclareRelationTypeArguments,
    object_schema(
        {
            "relationType": STRING,
            "functional": BOOLEAN,
            "closed": {**TIMED_RELATIONS, "description": "The relations closeOlder closed (else empty)"},
        }
    ),
)

_contract(
    "compact",
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
)


# --- reads ---------------------------------------------------------------------------------------


class ReadGraphArguments(Arguments):
    entityType: str | None = optional("Only entities of this exact type.")
    cursor: Annotated[str | None, Rest(trim=True)] = optional(
        "The graph is returned in pages: when a result says hasMore, pass its nextCursor here to read the next page."
    )
    offset: int | None = _offset("entities", "prefer cursor (it cannot be combined with offset)")
    limit: int | None = _limit(DEFAULT_READ_GRAPH_LIMIT, "entities per page")

    asOf: str | None = optional(AS_OF)
    includeExpired: bool | None = optional(INCLUDE_EXPIRED)


_contract(
    "read_graph",
    ReadGraphArguments,
    extend(
        TIMED_PAGE,
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
)


class SearchNodesArguments(Arguments):
    query: Annotated[str, Rest(blank=True)] = Field(
        description="The search query to match against entity names, types, and observation content"
    )
    entityType: str | None = optional("Only entities of this exact type.")
    limit: int | None = _limit(DEFAULT_SEARCH_LIMIT, "entities")
    offset: int | None = _offset("entities")

    asOf: str | None = optional(AS_OF)
    includeExpired: bool | None = optional(INCLUDE_EXPIRED)


_contract(
    "search_nodes",
    SearchNodesArguments,
    extend(
        TIMED_PAGE,
        {"hasMore": HAS_MORE, "nextOffset": NEXT_OFFSET},
        description="Matches best first, with the relations touching them. Bare words match as word prefixes, "
        '"quoted phrases" exactly; case and accents are ignored; Chinese, Japanese and Korean match as '
        "substrings; an empty query matches every entity. When hasMore, call again with offset=nextOffset.",
    ),
)


class OpenNodesArguments(Arguments):
    names: list[str] = Field(description="An array of entity names to retrieve")

    asOf: str | None = optional(AS_OF)
    includeExpired: bool | None = optional(INCLUDE_EXPIRED)


_contract("open_nodes", OpenNodesArguments, TIMED_PAGE)


class NameArguments(Arguments):
    name: str = Field(description=ENTITY_NAME)


_contract("get_entity", NameArguments, ENTITY)


class NamesArguments(Arguments):
    names: list[str] = Field(description="Exact entity names.")


_contract(
    "batch_get_entities",
    NamesArguments,
    object_schema(
        {"entities": {**array_schema(nullable(ENTITY)), "description": "One per name, in order; null where missing"}}
    ),
)
_contract("entity_exists", NamesArguments, object_schema({"names": STRINGS, "exists": array_schema(BOOLEAN)}))
_contract(
    "graph_stats",
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
_contract("list_entity_types", NoArguments, TYPE_LIST)
_contract("list_relation_types", NoArguments, RELATION_TYPE_LIST)


class SearchRelationsArguments(Arguments):
    from_: str | None = optional("Only relations starting at this entity.", alias="from")
    to: str | None = optional("Only relations ending at this entity.")
    relationType: str | None = optional("Only relations of this exact type.")
    limit: int | None = _limit(DEFAULT_SEARCH_LIMIT, "relations")
    offset: int | None = _offset("relations")


_contract(
    "search_relations",
    SearchRelationsArguments,
    object_schema({"relations": RELATIONS, "hasMore": HAS_MORE, "nextOffset": NEXT_OFFSET}),
)


class DegreeArguments(Arguments):
    name: str = Field(description=ENTITY_NAME)
    direction: Direction | None = optional("Count outgoing (out), incoming (in) or all (both, default) relations.")


_contract("degree", DegreeArguments, DEGREE)


class DescribeEntityArguments(Arguments):
    name: str = Field(description=ENTITY_NAME)
    limit: int | None = optional(
        f"At most this many outgoing and this many incoming relations (default {DEFAULT_RELATIONS_LIMIT}).",
        ge=1,
        le=MAX_SEARCH_LIMIT,
    )


_contract(
    "describe_entity",
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

    asOf: str | None = optional(AS_OF)
    includeExpired: bool | None = optional(INCLUDE_EXPIRED)


_contract(
    "get_neighbors",
    GetNeighborsArguments,
    extend(
        TIMED_PAGE,
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


_contract("extract_subgraph", ExtractSubgraphArguments, extend(GRAPH_PAGE, {"hasMore": HAS_MORE}))


class FindPathArguments(Arguments):
    from_: str = Field(alias="from", description="The entity the path starts at.")
    to: str = Field(description="The entity the path ends at.")
    direction: Direction | None = optional(
        "both (default: relations are walked either way), out (follow relations forwards) or in (backwards)."
    )
    maxDepth: int | None = optional("Longest path to look for, in hops (default 16).", ge=1, le=MAX_NEIGHBOR_DEPTH)

    asOf: str | None = optional(AS_OF)
    includeExpired: bool | None = optional(INCLUDE_EXPIRED)


_contract(
    "find_path",
    FindPathArguments,
    object_schema(
        {
            "found": BOOLEAN,
            "path": {**STRINGS, "description": "Entity names from start to end; empty when not found"},
            "relations": TIMED_RELATIONS,
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


_contract(
    "find_all_paths",
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


_contract(
    "export_graph",
    ExportGraphArguments,
    object_schema({"format": {"type": "string", "enum": list(FORMATS)}, "content": STRING}),
)


# --- history -------------------------------------------------------------------------------------

_STATE = {
    "type": ["object", "null"],
    "description": "The fields of the object: observation/memory {text, entityId, entityName, actorId, tags, "
    "createdAt, expiresAt, mentionCount}; entity {name, entityType}; relation {from, to, relationType, fromId, "
    "toId}; a mention {mentionCount, lastSeen}. null: the object did not exist (before a create) or was removed "
    "(after a delete, an expiry or a merge that dropped it)",
}
VERSION = object_schema(
    {
        "id": {**STRING, "description": "The object's id: mem_<n> (memory or observation), ent_<n>, rel_<n>"},
        "kind": {"type": "string", "enum": ["observation", "entity", "relation"]},
        "namespace": STRING,
        "version": {**INTEGER, "description": "1, 2, ... per object"},
        "action": {
            "type": "string",
            # graph.history.ACTIONS: "close" ends a fact's validity (graph/validity.py).
            "enum": list(history.ACTIONS),
        },
        "before": _STATE,
        "after": _STATE,
        "changedAt": {**STRING, "description": "ISO 8601 UTC, e.g. 2026-05-01T09:30:00Z"},
        "key": {**STRING, "description": "The API key that made the change (key:<prefix>); empty when none"},
        "userId": {"type": ["integer", "null"], "description": "The key's owner; null when none"},
        "actorId": {**STRING, "description": "The memory's actor (user_id); empty when none"},
        "surface": {
            "type": "string",
            "description": "Where the change came from: mcp, rest, memos, console, admin, import or system",
        },
        "operation": {**STRING, "description": "The operation that made the change, e.g. delete_entities"},
    }
)
VERSIONS = {**array_schema(VERSION), "description": "Newest first (at most 1,000)"}


class EntityHistoryArguments(Arguments):
    name: str = Field(
        description="The entity's name: its current name, or a name it had before a rename or when it was deleted."
    )


_contract(
    "entity_history",
    EntityHistoryArguments,
    object_schema(
        {
            "name": STRING,
            "entities": {**STRINGS, "description": "Ids (ent_<n>) of the entities that have or had this name"},
            "versions": VERSIONS,
        }
    ),
)
