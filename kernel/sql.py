"""The raw sqlite3 connection under Django's, and the time format it stores.

The store's hot paths talk to this connection directly (graph/sql.py says why); it is the same
connection Django uses, so `transaction.atomic()` covers these statements too.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone


def db() -> sqlite3.Connection:
    # One lookup of this thread's connection: each attribute read through the `connection`
    # proxy looks it up again (an asgiref Local), which was a seventh of a search's Python time.
    wrapper = connections[DEFAULT_DB_ALIAS]
    wrapper.ensure_connection()
    raw = wrapper.connection
    assert raw is not None
    return raw


def now() -> str:
    """The current time in the format Django stores DateTimeFields in SQLite."""
    # What `stored_time` gives for an aware UTC time (timezone.now() with USE_TZ), without the
    # backend's adapter: reads call this per statement, and marked reads per row.
    return str(timezone.now().replace(tzinfo=None))


def stored_time(value: datetime) -> str:
    """`value` in the format Django stores DateTimeFields in SQLite (UTC, compared as text)."""
    return str(connections[DEFAULT_DB_ALIAS].ops.adapt_datetimefield_value(value))


def iso(value: str | datetime | None) -> str | None:
    """A stored datetime as ISO 8601 UTC with a Z, to the second: how every surface shows times
    (the seed's format)."""
    if value is None:
        return None
    if isinstance(value, str) and value[10:11] == " " and (len(value) == 19 or (len(value) == 26 and value[19] == ".")):
        # The stored form (`stored_time`: naive UTC, "YYYY-MM-DD HH:MM:SS[.ffffff]"), cut rather
        # than parsed: reads that mark every fact's validity call this per row.
        return f"{value[:10]}T{value[11:19]}Z"
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
