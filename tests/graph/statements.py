"""The statements a block of store code runs, for tests that count them or look at them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from graph.sql import db
from kernel.sql import POSTGRES, PostgresConnection


@contextmanager
def statements() -> Iterator[list[str]]:
    """The statements the code under the block runs (not FTS5's own inner ones)."""
    seen: list[str] = []
    if POSTGRES:
        # Every statement goes through kernel.sql's connection (one round trip each).
        execute = PostgresConnection.execute

        def traced(self: PostgresConnection, statement: str, params: Any = (), **options: Any) -> Any:
            seen.append(statement)
            return execute(self, statement, params, **options)

        PostgresConnection.execute = traced
        try:
            yield seen
        finally:
            PostgresConnection.execute = execute
        return
    db().set_trace_callback(lambda sql: None if sql.startswith("--") else seen.append(sql))
    try:
        yield seen
    finally:
        db().set_trace_callback(None)
