"""Writes of free-text memories: write, delete by id, clear. The one implementation behind the REST
memory API (`/v1/memory/*`), the MCP memory tools, the MemOS API and chat, which reach it through
the runner (`access.operations.perform`, declared in memory/operations.py): the functions here get
the namespaces the caller's grants allow, never the caller.

A memory is an observation without an entity (DESIGN.md); the graph owns the rows
(`graph.services.insert_memories`, `delete_memory`, `clear_memories` are its table primitives).
What makes them memories is decided here: the checks of text, actor, tags and ttl, the expiry
time, the embedding ahead of the write, the ids and the shape on the wire.

The write pipeline is `write_memories`, in order: check every memory, embed the texts (before the
transaction: the model does not hold SQLite's one write lock), insert the rows in one transaction
(the graph's triggers keep FTS5 and the counters, the vectors app stores the vectors in it), answer
with ids and times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from django.utils import timezone

from graph import limits as store_limits
from graph import services as graph_services
from kernel.errors import InvalidArgument
from kernel.sql import stored_time
from memory import limits
from memory.wire import iso, memory_id, parse_memory_id
from vectors.embedding import embedded_ahead


class WrittenMemory(TypedDict):
    id: str
    namespace: str
    createdAt: str | None
    expiresAt: str | None


@dataclass(frozen=True)
class NewMemory:
    """One memory to write, its values as the caller received them: `write_memories` checks them."""

    text: Any
    actor_id: Any = ""
    tags: Any = ()
    ttl_ms: Any = None


def write_memories(*, namespace: str, memories: Sequence[NewMemory]) -> list[WrittenMemory]:
    """Store memories in `namespace`, embedded before this returns, in one transaction; nothing
    is written when any of them is refused."""
    store_limits.items(memories, field="memories")
    stamp = timezone.now()
    rows: list[graph_services.MemoryInput] = []
    for index, memory in enumerate(memories):
        actor = limits.actor(memory.actor_id)
        tags = limits.tags(memory.tags)
        text = memory.text
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgument(
                "text must be a non-empty string", field="text" if len(memories) == 1 else f"[{index}]"
            )
        ttl = limits.ttl(memory.ttl_ms)
        rows.append(
            {
                "body": store_limits.observation(text, field="text"),
                "actor_id": actor,
                "tags": tags,
                "expires_at": stored_time(stamp + ttl) if ttl else None,
            }
        )
    with embedded_ahead(row["body"] for row in rows):
        written = graph_services.insert_memories(namespace=namespace, memories=rows, created_at=stored_time(stamp))
    return [
        {"id": memory_id(owner), "namespace": namespace, "createdAt": iso(created), "expiresAt": iso(row["expires_at"])}
        for (owner, created), row in zip(written, rows, strict=True)
    ]


class DeleteResult(TypedDict):
    deleted: bool
    id: str


def delete_memory(
    *, namespaces: Mapping[int, str], id: Any, actor_in: Mapping[str, str] | None = None, purge: Any = False
) -> DeleteResult:
    """Delete one free memory of `namespaces` ({id: name}: those the caller may write), in the
    namespaces of `actor_in` ({namespace: actor}) only if it is that actor's (a user's own, see
    memory.scopes). (Search also returns knowledge-graph observations, with their `entityName`;
    those belong to their entity and are deleted with the graph tools, so their ids answer
    `deleted: false` here.)

    An id that does not exist and one outside the reach get the same answer, `deleted: false`, so
    ids reveal nothing about other tenants. A malformed id is refused (InvalidArgument).

    A deleted memory can be restored (memory.history) for MEMORYHUB_HISTORY_RETENTION_DAYS. With
    `purge` it is erased with all of its versions at once (also one deleted earlier), for
    erasure requests: nothing of it is left to restore."""
    owner = parse_memory_id(id)
    if not isinstance(purge, bool):
        raise InvalidArgument("purge must be true or false", field="purge")
    actors = {ns_id: (actor_in or {})[name] for ns_id, name in namespaces.items() if name in (actor_in or {})}
    deleted = (
        bool(namespaces)
        and graph_services.delete_memory(namespace_ids=list(namespaces), memory_id=owner, actors=actors, purge=purge)
        is not None
    )
    return {"deleted": deleted, "id": memory_id(owner)}


class ClearResult(TypedDict):
    cleared: int
    namespace: str


def clear_memories(*, namespace: str, actor_id: Any = None) -> ClearResult:
    """Delete the free memories of `namespace`, or only one actor's. Knowledge-graph observations
    are left alone: they belong to their entities."""
    actor = limits.actor(actor_id) if actor_id is not None else None
    cleared = graph_services.clear_memories(namespace=namespace, actor_id=actor)
    return {"cleared": cleared, "namespace": namespace}
