"""What the graph's writes (services, history, validity, dedupe) need to say the same thing on
both backends, chosen once at import (kernel.sql `POSTGRES`): on SQLite every helper returns the
statement text it always had, so SQLite's statements are unchanged.

PostgreSQL types strictly where SQLite does not: a JSON list's item read with `value ->> n` is
text, so it is cast to the column's type (`typed`); timestamps come back as aware datetimes and
JSON columns (jsonb) already decoded (`stored`, `loads`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from kernel.sql import POSTGRES

__all__ = ["JSON_OBJECT", "POSTGRES", "json_text", "loads", "state_time", "stored", "typed"]

# A JSON object built in SQL from pairs of key and value.
JSON_OBJECT = "json_build_object" if POSTGRES else "json_object"


def typed(expression: str, sql_type: str) -> str:
    """`expression` (a JSON item read as text, `value ->> 0`) as `sql_type` on PostgreSQL, which
    neither stores nor compares text as a number, time or jsonb; unchanged on SQLite."""
    return f"CAST({expression} AS {sql_type})" if POSTGRES else expression


def state_time(expression: str) -> str:
    """A timestamp column as the text SQLite stores (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC): how a
    history state keeps its times on both backends, so a state reads (and restores) the same."""
    if not POSTGRES:
        return expression
    return f"to_char({expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"


def json_text(expression: str) -> str:
    """A JSON column (observation tags) inside a JSON object built in SQL: SQLite stores it as
    text (`json(x)` embeds it as JSON); PostgreSQL's jsonb is JSON already."""
    return expression if POSTGRES else f"json({expression})"


def stored(value: Any) -> Any:
    """A timestamp read back as the text SQLite stores (`kernel.sql.now`'s format): PostgreSQL
    returns aware datetimes, which the writes compare and store as that text."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return str(value)
    return value


def loads(value: Any) -> Any:
    """A JSON column's value: SQLite returns its text, psycopg decodes jsonb and json itself."""
    return json.loads(value) if isinstance(value, str | bytes) else value
