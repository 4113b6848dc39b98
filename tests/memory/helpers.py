"""The memory operations as tests call them: through the runner (`access.operations.perform`),
as every surface does, with the keyword names of the operations."""

from __future__ import annotations

from typing import Any

from access.operations import perform
from access.permissions import Access
from memory import operations
from memory.selectors import SearchResult
from memory.services import ClearResult, DeleteResult, NewMemory, WrittenMemory

__all__ = ["NewMemory", "clear_memories", "delete_memory", "search_memories", "write_memories", "write_memory"]


def write_memories(access: Access, *, namespace: str | None, memories: list[NewMemory]) -> list[WrittenMemory]:
    written: list[WrittenMemory] = perform(access, operations.WRITE, namespace=namespace, memories=memories)
    return written


def write_memory(
    access: Access,
    *,
    namespace: str | None,
    text: Any,
    actor_id: Any = None,
    tags: Any = None,
    ttl_ms: Any = None,
) -> WrittenMemory:
    memory = NewMemory(text=text, actor_id=actor_id, tags=tags, ttl_ms=ttl_ms)
    return write_memories(access, namespace=namespace, memories=[memory])[0]


def search_memories(access: Access, *, namespace: str | list[str] | None = None, **arguments: Any) -> SearchResult:
    found: SearchResult = perform(access, operations.SEARCH, namespace=namespace, **arguments)
    return found


def delete_memory(access: Access, *, id: Any) -> DeleteResult:
    deleted: DeleteResult = perform(access, operations.DELETE, id=id)
    return deleted


def clear_memories(access: Access, *, namespace: str | None, actor_id: Any = None) -> ClearResult:
    cleared: ClearResult = perform(access, operations.CLEAR, namespace=namespace, actor_id=actor_id)
    return cleared
