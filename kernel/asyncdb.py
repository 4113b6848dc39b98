"""Database calls from async code (Channels consumers, the stdio / TCP loops) on one thread
that keeps its connection.

Channels' `database_sync_to_async` closes the thread's connection around every call when
CONN_MAX_AGE is 0. For SQLite that is costly: a fresh connection runs the pragmas, and closing a
process's last connection checkpoints the WAL with an fsync, once per MCP message. These calls run
on asgiref's one shared thread for thread-sensitive code (the consumers and the line loops are
not inside a Django request), so that thread opens one connection and keeps it.

A kept PostgreSQL connection can be lost while idle (the server restarted, a failover, an
administrator's pg_terminate_backend): each call first looks whether the server hung up on it
and then opens a new one, instead of failing that call, and every later one for the life of the
process.

Only the MCP transports use this; Django's own views keep Django's per-request connections
(on PostgreSQL borrowed from the process's pool, kernel/database.py).
"""

from __future__ import annotations

import functools
import select
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connection
from psycopg.pq import TransactionStatus

P = ParamSpec("P")
R = TypeVar("R")


def close_if_lost() -> None:
    """Close this thread's PostgreSQL connection if it is gone, so the next statement connects
    anew: psycopg saw it fail (`closed`, `broken`), or the server has written to it while it was
    idle, which it does only to end it (the termination notice, then end of file: nothing here
    LISTENs). A poll of the socket, not a round trip."""
    raw = connection.connection
    if connection.vendor != "postgresql" or raw is None:
        return
    if raw.closed or raw.broken or _hung_up(raw):
        connection.close()


def _hung_up(raw: Any) -> bool:
    if raw.info.transaction_status != TransactionStatus.IDLE:
        return False  # a statement or transaction under way owns the socket
    readable, _, _ = select.select([raw.fileno()], [], [], 0)
    return bool(readable)


def db_sync_to_async(function: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    @functools.wraps(function)
    def on_a_live_connection(*args: P.args, **kwargs: P.kwargs) -> R:
        close_if_lost()
        return function(*args, **kwargs)

    return sync_to_async(on_a_live_connection, thread_sensitive=True)
