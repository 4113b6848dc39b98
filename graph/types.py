"""Shapes of the store's inputs and results.

They are the wire shapes of the MCP tools (camelCase, `from`/`to`), shared with the official
memory server and the Rust `mcp-memory` server, so every edge can pass them through unchanged.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class ObservationDetail(TypedDict):
    """An observation with its validity and lineage (reads given `asOf` or `includeExpired`)."""

    id: str
    text: str
    validFrom: str | None
    validTo: str | None
    current: bool
    supersedes: str | None
    supersededBy: str | None


class EntityDict(TypedDict):
    name: str
    entityType: str
    observations: list[str]
    observationDetails: NotRequired[list[ObservationDetail]]


# `from` is a Python keyword, hence the functional syntax. The validity keys are only there on
# reads given `asOf` or `includeExpired` (graph/validity.py).
RelationDict = TypedDict(
    "RelationDict",
    {
        "from": str,
        "to": str,
        "relationType": str,
        "validFrom": NotRequired[str | None],
        "validTo": NotRequired[str | None],
        "current": NotRequired[bool],
    },
)


class ObservationAddition(TypedDict):
    entityName: str
    contents: list[str]


class ObservationDeletion(TypedDict):
    entityName: str
    observations: list[str]


class AddedObservations(TypedDict):
    entityName: str
    addedObservations: list[str]


class SkippedEntity(TypedDict):
    name: str
    reason: str


class SkippedRelation(TypedDict):
    relation: RelationDict
    reason: str


class GraphPage(TypedDict):
    entities: list[EntityDict]
    relations: list[RelationDict]
    hasMore: NotRequired[bool]
    nextCursor: NotRequired[str | None]
    nextOffset: NotRequired[int | None]
