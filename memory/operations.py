"""The memory operations, declared with the runner (`access.operations`), which checks the
caller's grants for every surface: the REST memory API (memory/api), the MCP memory tools, the
MemOS API (compat) and chat (agents/chat.py) all call `access.operations.perform(access, name,
...)`, never the services and selectors here directly.

Writes and clears reach one namespace (the one named, else the key's default). Search, listing
and reads by id reach the namespaces named (each must be granted) or every namespace the key can
read; a delete, an update or a restore by id reaches every namespace the key can write (and a
history read every one it can read), or those named, so an id outside the reach answers like an
id that does not exist. A supersession is by id too, like an update.
"""

from __future__ import annotations

from access.operations import Operation, Reach, declare
from access.permissions import Permission
from memory import history, selectors, services

MEMORIES = "memories"  # what the writes change, as `operation_applied` announces it

WRITE = "memory_write"
SEARCH = "memory_search"
LIST = "memory_list"
GET = "memory_get"
DELETE = "memory_delete"
CLEAR = "memory_clear"
HISTORY = "memory_history"
UPDATE = "memory_update"
RESTORE = "memory_restore"
SUPERSEDE = "memory_supersede"
AUTHORS = "memory_authors"

OPERATIONS: dict[str, Operation] = declare(
    [
        Operation(WRITE, services.write_memories, Permission.WRITE, changes=MEMORIES),
        Operation(SEARCH, selectors.search_memories, Permission.READ, reach=Reach.NAMESPACES),
        Operation(LIST, selectors.list_memories, Permission.READ, reach=Reach.NAMESPACES),
        Operation(GET, selectors.get_memory, Permission.READ, reach=Reach.NAMESPACES),
        Operation(DELETE, services.delete_memory, Permission.WRITE, reach=Reach.NAMESPACES, changes=MEMORIES),
        Operation(CLEAR, services.clear_memories, Permission.WRITE, changes=MEMORIES),
        # By id, like delete: reading a history needs read, changing or restoring needs write.
        Operation(HISTORY, history.memory_history, Permission.READ, reach=Reach.NAMESPACES),
        # Who wrote each of a page of memories (their first versions): the console's search hits.
        Operation(AUTHORS, history.memory_authors, Permission.READ, reach=Reach.NAMESPACES),
        Operation(UPDATE, history.update_memory, Permission.WRITE, reach=Reach.NAMESPACES, changes=MEMORIES),
        Operation(RESTORE, history.restore_memory, Permission.WRITE, reach=Reach.NAMESPACES, changes=MEMORIES),
        # By id, like update: the memory is looked up in every namespace the key can write.
        Operation(SUPERSEDE, services.supersede_memory, Permission.WRITE, reach=Reach.NAMESPACES, changes=MEMORIES),
    ]
)
