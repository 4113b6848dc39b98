"""Database functions whose SQL differs between SQLite and PostgreSQL, for models and indexes."""

from __future__ import annotations

from typing import Any

from django.db import models


class JsonText(models.Func):
    """The text at a top-level key of a JSON column.

    SQLite: `JSON_EXTRACT("column", '$.key')`, the expression the raw reads repeat (graph/history.py)
    so that an index on it serves them. PostgreSQL: `("column" ->> 'key')` on the jsonb column."""

    function = "JSON_EXTRACT"
    output_field = models.TextField()

    def __init__(self, column: str, key: str) -> None:
        if not key.isidentifier():
            raise ValueError(f"JsonText takes a plain key, not {key!r}")
        self.key = key
        super().__init__(models.F(column), models.Value(f"$.{key}"))

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, list[Any]]:
        column_sql, params = compiler.compile(self.source_expressions[0])
        return f"({column_sql} ->> '{self.key}')", list(params)
