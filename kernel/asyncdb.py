"""Database calls from async code (Channels consumers, the stdio / TCP loops) on one thread
that keeps its SQLite connection.

Channels' `database_sync_to_async` closes the thread's connection around every call when
CONN_MAX_AGE is 0. For SQLite that is costly: a fresh connection runs the pragmas, and closing a
process's last connection checkpoints the WAL with an fsync, once per MCP message. These calls run
on asgiref's one shared thread for thread-sensitive code (the consumers and the line loops are
not inside a Django request), so that thread opens one connection and keeps it.

Only the MCP transports use this; Django's own views keep Django's per-request connections.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async

P = ParamSpec("P")
R = TypeVar("R")


def db_sync_to_async(function: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    return sync_to_async(function, thread_sensitive=True)
