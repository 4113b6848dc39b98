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
    # A whole second has no fraction in SQLite's text (str of a datetime).
    return f"regexp_replace(to_char({expression} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), '[.]000000$', '')"


def json_text(expression: str) -> str:
    """A JSON column (observation tags) inside a JSON object built in SQL: SQLite stores it as
    text (`json(x)` embeds it as JSON); PostgreSQL's jsonb is JSON already."""
    return expression if POSTGRES else f"json({expression})"


def _stored_sqlite(value: Any) -> Any:
    return str(value)  # text already, or a datetime from the ORM (shown as str shows it)


def _stored_postgres(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return str(value)
    if isinstance(value, str) and len(value) == 26 and value.endswith(".000000"):
        return value[:19]  # to_char's form of a whole second (graph/sql.py `stored`, `state_time`)
    return value


# A timestamp (not None) read back as the text SQLite stores (`kernel.sql.now`'s format, which leaves out a
# whole second's fraction), so that the writes compare and store it as on SQLite: PostgreSQL
# returns aware datetimes, or to_char's text with six fractional digits always.
stored = _stored_postgres if POSTGRES else _stored_sqlite


def loads(value: Any) -> Any:
    """A JSON column's value: SQLite returns its text, psycopg decodes jsonb and json itself."""
    return json.loads(value) if isinstance(value, str | bytes) else value
