"""Low-level SQL shared by services and selectors.

The store talks to the sqlite3 connection under Django's connection directly: the hot paths
(get_entity, degree, open_nodes) must stay under 100 µs, and the ORM's per-query overhead alone is
larger than that. It is the same connection Django uses, so `transaction.atomic()` (BEGIN
IMMEDIATE, see kernel/database.py) covers these statements too.

Lists are passed as one JSON parameter (`IN (SELECT value FROM json_each(?))`): one cached
statement for any list length, and no limit on the number of bound variables.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from access import namespaces
from graph import fts
from graph.exceptions import EntityNotFound
from graph.types import EntityDict, RelationDict
from kernel.sql import db, now


def as_json(values: Iterable[object]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


# The terms of one fts5vocab table that start with each prefix, as one JSON object: a recursive
# walk per prefix, one indexed seek per term. The vocabulary lists every instance of a term, so
# `DISTINCT` or `term > ?` would walk all of a common term's instances; `term >= t || char(1)`
# jumps past them (no token holds a control character). At most `most + 1` terms per prefix.
_TERMS_WITH_PREFIXES = """(WITH RECURSIVE
  wanted(prefix, high) AS (SELECT value ->> 0, value ->> 1 FROM json_each(:prefixes)),
  found(prefix, high, term, n) AS (
    SELECT prefix, high, (SELECT term FROM {vocabulary} WHERE term >= prefix AND term < high LIMIT 1), 1
    FROM wanted
    UNION ALL
    SELECT prefix, high, (SELECT term FROM {vocabulary} WHERE term >= found.term || char(1) AND term < found.high
                          LIMIT 1), n + 1
    FROM found WHERE found.term IS NOT NULL AND n <= :most)
  SELECT json_group_object(prefix, json(terms)) FROM (
    SELECT prefix, json_group_array(term) FILTER (WHERE term IS NOT NULL) AS terms FROM found GROUP BY prefix))"""


def terms_with_prefixes(
    vocabularies: Sequence[str], prefixes: Iterable[str], *, most: int
) -> list[dict[str, list[str] | None]]:
    """For each fts5vocab table (graph/migrations/0004), the terms that start with each prefix
    (plain ASCII, lower-cased), in order; None for a prefix with more than `most` terms.

    One statement for all tables and prefixes: the sqlite3 module gives up the GIL around every
    statement, and under load the database thread then waits to get it back."""
    unique = list(dict.fromkeys(prefixes))
    bounds = as_json([prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)] for prefix in unique)
    columns = ", ".join(_TERMS_WITH_PREFIXES.format(vocabulary=vocabulary) for vocabulary in vocabularies)
    row = db().execute(f"SELECT {columns}", {"prefixes": bounds, "most": most}).fetchone()
    found: list[dict[str, list[str] | None]] = []
    for packed in row:
        terms: dict[str, list[str]] = json.loads(packed) if packed else {}
        found.append({prefix: (None if len(terms[prefix]) > most else terms[prefix]) for prefix in unique})
    return found


def terms_with_prefix(vocabulary: str, prefix: str, *, most: int) -> list[str] | None:
    """The terms of an FTS index's vocabulary table that start with `prefix` (terms_with_prefixes)."""
    return terms_with_prefixes([vocabulary], [prefix], most=most)[0][prefix]


def narrowed_matches(fts_tables: Sequence[str], match: str) -> list[str]:
    """`match` for each of `fts_tables`, with its long word prefixes narrowed to the terms that
    table holds (fts.narrow_prefixes); one statement for all tables, none when nothing narrows."""
    words = fts.prefix_words(match)
    if not words:
        return [match for _ in fts_tables]
    vocabularies = [f"{table}_terms" for table in fts_tables]
    found = terms_with_prefixes(vocabularies, words, most=fts.MAX_PREFIX_TERMS)
    return [fts.narrow_prefixes(match, terms.__getitem__) for terms in found]


def narrowed_match(fts_table: str, match: str) -> str:
    """`match` with its long word prefixes narrowed to the terms `fts_table` holds."""
    return narrowed_matches([fts_table], match)[0]


def entity_ids(ns_id: int, names: Iterable[str]) -> dict[str, int]:
    (packed,) = (
        db()
        .execute(
            "SELECT json_group_object(name, id) FROM graph_entity "
            "WHERE namespace_id = ? AND name IN (SELECT value FROM json_each(?))",
            (ns_id, as_json(names)),
        )
        .fetchone()
    )
    found: dict[str, int] = json.loads(packed)
    return found


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


# The read paths below return their rows packed into one JSON value, so each query is a single
# sqlite3 step: the module releases the GIL around every step, and under load each re-take waits
# for the event loop's thread: under load (bench/load.py) reads waited longer for the GIL than in
# SQLite. json_group_array's order is not defined, so rows carry their id and are sorted here.
_OBSERVATIONS_OF_E = (
    "json((SELECT json_group_array(json_array(o.id, o.body)) FROM graph_observation o "
    "WHERE o.entity_id = e.id AND (o.expires_at IS NULL OR o.expires_at > :now)))"
)


def _entity_dict(name: str, entity_type: str, observations: list[list[Any]]) -> EntityDict:
    return {"name": name, "entityType": entity_type, "observations": [body for _, body in sorted(observations)]}


def load_entities(ids: list[int]) -> list[EntityDict]:
    """Entities with their live observations (oldest first), in the order of `ids`."""
    if not ids:
        return []
    (packed,) = (
        db()
        .execute(
            f"SELECT json_group_array(json_array(e.id, e.name, t.name, {_OBSERVATIONS_OF_E})) "
            "FROM graph_entity e JOIN graph_typedict t ON t.id = e.type_id "
            "WHERE e.id IN (SELECT value FROM json_each(:ids))",
            {"ids": as_json(ids), "now": now()},
        )
        .fetchone()
    )
    return _entities_in_order(packed, ids, key=0)


def _entities_in_order(packed: str, order: Iterable[int | str], *, key: int) -> list[EntityDict]:
    """Packed `[id, name, type, [[observation id, body], ...]]` rows as entities, in `order` (of
    ids with key=0, of names with key=1); keys with no row are skipped."""
    loaded = {row[key]: row for row in json.loads(packed)}
    return [_entity_dict(*loaded[wanted][1:]) for wanted in order if wanted in loaded]


def load_entity(entity: int) -> EntityDict | None:
    row = (
        db()
        .execute(
            f"SELECT e.name, t.name, {_OBSERVATIONS_OF_E} "
            "FROM graph_entity e JOIN graph_typedict t ON t.id = e.type_id WHERE e.id = :id",
            {"id": entity, "now": now()},
        )
        .fetchone()
    )
    if row is None:
        return None
    return _entity_dict(row[0], row[1], json.loads(row[2]))


def load_named_entity(namespace: str, name: str) -> EntityDict | None:
    row = (
        db()
        .execute(
            f"SELECT e.name, t.name, {_OBSERVATIONS_OF_E} FROM graph_entity e "
            "JOIN graph_typedict t ON t.id = e.type_id "
            f"WHERE e.namespace_id = {namespaces.id_sql(':namespace')} AND e.name = :name",
            {"namespace": namespace, "name": name, "now": now()},
        )
        .fetchone()
    )
    if row is None:
        return None
    return _entity_dict(row[0], row[1], json.loads(row[2]))


RELATION_COLUMNS = (
    "SELECT r.id AS id, f.name AS from_name, t.name AS to_name, ty.name AS type_name FROM graph_relation r "
    "JOIN graph_entity f ON f.id = r.from_id JOIN graph_entity t ON t.id = r.to_id "
    "JOIN graph_typedict ty ON ty.id = r.type_id "
)


def relation_dict(row: Sequence[Any]) -> RelationDict:
    return {"from": row[1], "to": row[2], "relationType": row[3]}


# A page of entities (the ids in CTE `page`) and the relations touching them, as two packed
# columns of one statement.
_PAGE = (
    f"SELECT (SELECT json_group_array(json_array(e.id, e.name, t.name, {_OBSERVATIONS_OF_E})) "
    "FROM graph_entity e JOIN graph_typedict t ON t.id = e.type_id WHERE e.id IN (SELECT id FROM page)), "
    "(SELECT json_group_array(json_array(id, from_name, to_name, type_name)) FROM ("
    f"{RELATION_COLUMNS} WHERE r.from_id IN (SELECT id FROM page) "
    f"UNION {RELATION_COLUMNS} WHERE r.to_id IN (SELECT id FROM page)))"
)


def load_page(ids: list[int]) -> tuple[list[EntityDict], list[RelationDict]]:
    """`load_entities(ids)`, and the relations with either end in `ids` (oldest first, each
    once), in one statement."""
    if not ids:
        return [], []
    entities, relations = (
        db()
        .execute(f"WITH page(id) AS (SELECT value FROM json_each(:ids)) {_PAGE}", {"ids": as_json(ids), "now": now()})
        .fetchone()
    )
    return _entities_in_order(entities, ids, key=0), _relation_dicts(relations)


def load_named_page(namespace: str, names: list[str]) -> tuple[list[EntityDict], list[RelationDict]]:
    """The entities of `namespace` with these names (in the order of `names`, each once; names
    it does not hold are skipped) and the relations touching them, in one statement."""
    entities, relations = (
        db()
        .execute(
            "WITH page(id) AS MATERIALIZED (SELECT e.id FROM graph_entity e "
            f"WHERE e.namespace_id = {namespaces.id_sql(':namespace')} "
            "AND e.name IN (SELECT value FROM json_each(:names))) "
            f"{_PAGE}",
            {"namespace": namespace, "names": as_json(names), "now": now()},
        )
        .fetchone()
    )
    return _entities_in_order(entities, dict.fromkeys(names), key=1), _relation_dicts(relations)


def _relation_dicts(packed: str) -> list[RelationDict]:
    # Rows carry their id first: sorted, they are oldest first.
    return [relation_dict(row) for row in sorted(json.loads(packed))]


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
