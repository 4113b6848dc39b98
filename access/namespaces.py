"""Namespace names and their ids.

A namespace is a colon path (`org:team:project`). `*` is reserved for grant patterns, so it can
never be part of a name.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kernel.errors import InvalidArgument
from kernel.sql import db, in_json, now

MAX_NAMESPACE_LENGTH = 255
_SEGMENT = r"[A-Za-z0-9_.@+\-]+"
PATTERN = rf"^{_SEGMENT}(?::{_SEGMENT})*$"  # also published in the OpenAPI schema
_NAMESPACE = re.compile(PATTERN)


def validate(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidArgument("namespace must be a non-empty string such as 'org:team:project'")
    if len(name) > MAX_NAMESPACE_LENGTH or not _NAMESPACE.fullmatch(name):
        raise InvalidArgument(
            f"namespace {name!r} is not valid: use colon-separated segments of letters, digits and "
            f"_ . @ + - (at most {MAX_NAMESPACE_LENGTH} characters), e.g. 'org:team:project'"
        )
    return name


def lookup(name: str) -> int | None:
    """The id of an existing namespace, or None. Reads never create namespaces."""
    row = db().execute("SELECT id FROM graph_namespace WHERE name = ?", (validate(name),)).fetchone()
    return row[0] if row else None


def ensure(name: str) -> int:
    """The id of the namespace, creating it. Call inside the write transaction."""
    conn = db()
    row = conn.execute("SELECT id FROM graph_namespace WHERE name = ?", (validate(name),)).fetchone()
    if row:
        return int(row[0])
    # ON CONFLICT: on PostgreSQL writers run at once, and another may create it between the two
    # statements (on SQLite the write lock rules that out; the statement is the same there).
    created = conn.execute(
        "INSERT INTO graph_namespace(name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
        (name, now()),
    ).fetchone()
    if created is not None:
        return int(created[0])
    return int(conn.execute("SELECT id FROM graph_namespace WHERE name = ?", (name,)).fetchone()[0])


def dedupe_enabled(namespace_id: int) -> bool:
    """A namespace's dedupe setting (True for an id that does not exist: the default)."""
    row = db().execute("SELECT dedupe FROM graph_namespace WHERE id = ?", (namespace_id,)).fetchone()
    return bool(row[0]) if row else True


def set_dedupe(name: str, enabled: bool) -> bool:
    """Turn dedupe on or off for a namespace (memory/dedupe.py: whether a write that says the same
    as a current memory is folded into it); whether the namespace exists."""
    cursor = db().execute("UPDATE graph_namespace SET dedupe = ? WHERE name = ?", (bool(enabled), validate(name)))
    return cursor.rowcount > 0


def names(ids: list[int]) -> dict[int, str]:
    """{id: name} of the namespaces with these ids (ids that do not exist are left out)."""
    if not ids:
        return {}
    rows = db().execute(f"SELECT id, name FROM graph_namespace WHERE id {in_json()}", (json.dumps(ids),))
    return dict(rows.fetchall())


def all_ids() -> list[int]:
    """The id of every namespace, in id order."""
    return [row[0] for row in db().execute("SELECT id FROM graph_namespace ORDER BY id")]


def id_sql(parameter: str) -> str:
    """SQL for the id of the namespace named by the bound `parameter` (e.g. ":namespace"; NULL when
    there is none), for another app's statement that must stay one statement: the graph's hot
    reads by name. This app owns the table, so its SQL is written here."""
    return f"(SELECT id FROM graph_namespace WHERE name = {parameter})"
