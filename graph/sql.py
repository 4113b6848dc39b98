"""Low-level SQL shared by services and selectors.

The store talks to the sqlite3 connection under Django's connection directly: the hot paths
(get_entity, degree, open_nodes) must stay under 100 µs, and the ORM's per-query overhead alone is
larger than that. It is the same connection Django uses, so `transaction.atomic()` (BEGIN
IMMEDIATE, see memoryhub/database.py) covers these statements too.

Lists are passed as one JSON parameter (`IN (SELECT value FROM json_each(?))`): one cached
statement for any list length, and no limit on the number of bound variables.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Iterable

from django.db import connection
from django.utils import timezone

from graph.exceptions import EntityNotFound
from graph.types import EntityDict, RelationDict


def db() -> sqlite3.Connection:
    connection.ensure_connection()
    raw = connection.connection
    assert raw is not None
    return raw


def now() -> str:
    """The current time in the format Django stores DateTimeFields in SQLite."""
    return str(connection.ops.adapt_datetimefield_value(timezone.now()))


def as_json(values: Iterable[object]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


def entity_ids(ns_id: int, names: Iterable[str]) -> dict[str, int]:
    rows = db().execute(
        "SELECT name, id FROM graph_entity WHERE namespace_id = ? AND name IN (SELECT value FROM json_each(?))",
        (ns_id, as_json(names)),
    )
    return dict(rows.fetchall())


def entity_id(ns_id: int, name: str) -> int | None:
    row = db().execute("SELECT id FROM graph_entity WHERE namespace_id = ? AND name = ?", (ns_id, name)).fetchone()
    return row[0] if row else None


def require_entity(ns_id: int | None, name: str) -> int:
    """The id of a named entity in the namespace; EntityNotFound if it (or the namespace) is missing."""
    found = entity_id(ns_id, name) if ns_id is not None else None
    if found is None:
        raise EntityNotFound(name)
    return found


def type_id(ns_id: int, kind: str, name: str) -> int | None:
    row = (
        db()
        .execute("SELECT id FROM graph_typedict WHERE namespace_id = ? AND kind = ? AND name = ?", (ns_id, kind, name))
        .fetchone()
    )
    return row[0] if row else None


def ensure_types(ns_id: int, kind: str, names: Iterable[str]) -> dict[str, int]:
    unique = list(dict.fromkeys(names))
    conn = db()
    conn.executemany(
        "INSERT OR IGNORE INTO graph_typedict(namespace_id, kind, name, count) VALUES (?, ?, ?, 0)",
        [(ns_id, kind, name) for name in unique],
    )
    rows = conn.execute(
        "SELECT name, id FROM graph_typedict WHERE namespace_id = ? AND kind = ? "
        "AND name IN (SELECT value FROM json_each(?))",
        (ns_id, kind, as_json(unique)),
    )
    return dict(rows.fetchall())


_LIVE_OBSERVATION = "(expires_at IS NULL OR expires_at > ?)"


def load_entities(ids: list[int]) -> list[EntityDict]:
    """Entities with their live observations (oldest first), in the order of `ids`."""
    if not ids:
        return []
    conn = db()
    ids_json = as_json(ids)
    heads = {
        row[0]: (row[1], row[2])
        for row in conn.execute(
            "SELECT e.id, e.name, t.name FROM graph_entity e JOIN graph_typedict t ON t.id = e.type_id "
            "WHERE e.id IN (SELECT value FROM json_each(?))",
            (ids_json,),
        )
    }
    observations: dict[int, list[str]] = defaultdict(list)
    for entity, body in conn.execute(
        "SELECT entity_id, body FROM graph_observation "
        f"WHERE entity_id IN (SELECT value FROM json_each(?)) AND {_LIVE_OBSERVATION} ORDER BY entity_id, id",
        (ids_json, now()),
    ):
        observations[entity].append(body)
    return [
        {"name": heads[i][0], "entityType": heads[i][1], "observations": observations.get(i, [])}
        for i in ids
        if i in heads
    ]


def load_entity(entity: int) -> EntityDict | None:
    conn = db()
    head = conn.execute(
        "SELECT e.name, t.name FROM graph_entity e JOIN graph_typedict t ON t.id = e.type_id WHERE e.id = ?",
        (entity,),
    ).fetchone()
    if head is None:
        return None
    bodies = conn.execute(
        f"SELECT body FROM graph_observation WHERE entity_id = ? AND {_LIVE_OBSERVATION} ORDER BY id",
        (entity, now()),
    ).fetchall()
    return {"name": head[0], "entityType": head[1], "observations": [b[0] for b in bodies]}


RELATION_COLUMNS = (
    "SELECT r.id, f.name, t.name, ty.name FROM graph_relation r "
    "JOIN graph_entity f ON f.id = r.from_id JOIN graph_entity t ON t.id = r.to_id "
    "JOIN graph_typedict ty ON ty.id = r.type_id "
)


def relation_dict(row: tuple[int, str, str, str]) -> RelationDict:
    return {"from": row[1], "to": row[2], "relationType": row[3]}


def relations_touching(ids: list[int], *, limit: int | None = None) -> list[RelationDict]:
    """Relations with either end in `ids`, oldest first (each once)."""
    if not ids:
        return []
    ids_json = as_json(ids)
    sql = (
        f"{RELATION_COLUMNS} WHERE r.from_id IN (SELECT value FROM json_each(?1)) "
        f"UNION {RELATION_COLUMNS} WHERE r.to_id IN (SELECT value FROM json_each(?1)) ORDER BY 1"
    )
    params: tuple[object, ...] = (ids_json,)
    if limit is not None:
        sql += " LIMIT ?2"
        params = (ids_json, limit)
    return [relation_dict(row) for row in db().execute(sql, params)]


def relations_from(ids: list[int]) -> list[RelationDict]:
    """Relations whose `from` end is in `ids`, oldest first."""
    if not ids:
        return []
    rows = db().execute(
        f"{RELATION_COLUMNS} WHERE r.from_id IN (SELECT value FROM json_each(?)) ORDER BY r.id", (as_json(ids),)
    )
    return [relation_dict(row) for row in rows]


def relations_by_id(relation_ids: list[int]) -> dict[int, RelationDict]:
    if not relation_ids:
        return {}
    rows = db().execute(f"{RELATION_COLUMNS} WHERE r.id IN (SELECT value FROM json_each(?))", (as_json(relation_ids),))
    return {row[0]: relation_dict(row) for row in rows}


def relations_within(ids: list[int]) -> list[RelationDict]:
    """Relations with both ends in `ids`, oldest first."""
    if not ids:
        return []
    ids_json = as_json(ids)
    rows = db().execute(
        f"{RELATION_COLUMNS} WHERE r.from_id IN (SELECT value FROM json_each(?1)) "
        "AND r.to_id IN (SELECT value FROM json_each(?1)) ORDER BY r.id",
        (ids_json,),
    )
    return [relation_dict(row) for row in rows]
