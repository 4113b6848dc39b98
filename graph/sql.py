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
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from access import namespaces
from graph import fts
from graph.exceptions import EntityNotFound
from kernel.sql import POSTGRES, db, in_json, json_values, now  # noqa: F401 (in_json, now: re-exported for the graph modules)


def as_json(values: Iterable[object]) -> str:
    return json.dumps(list(values), ensure_ascii=False)


# Rows packed into one JSON value, on either backend (graph/reads.py says why reads pack them):
# `packed_array(...)` is one row's array, `packed_list(x)` the aggregate of every row's `x` (an
# empty list for no rows), `packed(subquery)` a packed subquery nested in another packed value,
# and `unpack(value)` the Python value of what a statement returned. On PostgreSQL psycopg
# decodes json itself, and `stored(column)` writes a timestamptz as SQLite stores it (text
# "YYYY-MM-DD HH:MM:SS.ffffff", UTC), so times compare and print the same (validity.marks, iso).
def _decoded(value: Any) -> Any:
    return value


if POSTGRES:
    PACKED_ARRAY = "json_build_array"

    def packed_list(expression: str) -> str:
        return f"coalesce(json_agg({expression}), '[]'::json)"

    def packed(subquery: str) -> str:
        return f"({subquery})"

    unpack: Callable[..., Any] = _decoded

    def stored(column: str) -> str:
        # As Python's str(datetime) (kernel.sql now / stored_time): no fraction when it is zero,
        # so equal times compare equal as text.
        return f"regexp_replace(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), '[.]0{{6}}$', '')"

    def truth(test: str) -> str:
        """A condition from graph/validity.py `condition` usable after AND ("1": every row)."""
        return "TRUE" if test == "1" else test

else:
    PACKED_ARRAY = "json_array"

    def packed_list(expression: str) -> str:
        return f"json_group_array({expression})"

    def packed(subquery: str) -> str:
        return f"json(({subquery}))"

    unpack = json.loads

    def stored(column: str) -> str:
        return column

    def truth(test: str) -> str:
        """A condition from graph/validity.py `condition` usable after AND ("1": every row)."""
        return test


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
    statement, and under load the database thread then waits to get it back.

    SQLite only: PostgreSQL has no vocabulary tables (a tsquery prefix `'word':*` is answered by
    the GIN index itself, so nothing is narrowed there, see narrowed_matches)."""
    if POSTGRES:
        raise NotImplementedError("FTS5 vocabulary tables exist only on SQLite")
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
    table holds (fts.narrow_prefixes); one statement for all tables, none when nothing narrows.

    On PostgreSQL `match` is a tsquery (fts.build_match) and comes back unchanged for every
    table: the GIN index answers a prefix `'word':*` from its own sorted keys, which is the
    narrowing FTS5 needs the vocabulary for."""
    if POSTGRES:
        return [match for _ in fts_tables]
    words = fts.prefix_words(match)
    if not words:
        return [match for _ in fts_tables]
    vocabularies = [f"{table}_terms" for table in fts_tables]
    found = terms_with_prefixes(vocabularies, words, most=fts.MAX_PREFIX_TERMS)
    return [fts.narrow_prefixes(match, terms.__getitem__) for terms in found]


def narrowed_match(fts_table: str, match: str) -> str:
    """`match` with its long word prefixes narrowed to the terms `fts_table` holds."""
    return narrowed_matches([fts_table], match)[0]


if POSTGRES:
    # psycopg decodes json itself; json_object_agg over no rows is NULL.
    _ENTITY_IDS = (
        f"SELECT json_object_agg(name, id) FROM graph_entity WHERE namespace_id = ? AND name {in_json('?', 'text')}"
    )
else:
    _ENTITY_IDS = (
        "SELECT json_group_object(name, id) FROM graph_entity "
        "WHERE namespace_id = ? AND name IN (SELECT value FROM json_each(?))"
    )


def entity_ids(ns_id: int, names: Iterable[str]) -> dict[str, int]:
    (packed,) = db().execute(_ENTITY_IDS, (ns_id, as_json(names))).fetchone()
    if packed is None:
        return {}
    found: dict[str, int] = packed if isinstance(packed, dict) else json.loads(packed)
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


def require_entities(namespace: str, names: Sequence[str]) -> tuple[int, list[int]]:
    """The namespace's id and the ids of the named entities (in the order of `names`), in one
    statement; EntityNotFound for the first name (or namespace) missing. The traversals start
    here: on PostgreSQL each statement is a round trip."""
    rows = (
        db()
        .execute(
            "SELECT e.namespace_id, e.name, e.id FROM graph_entity e "
            f"WHERE e.namespace_id = {namespaces.id_sql('?')} AND e.name IN {json_values('?', 'text')}",
            (namespaces.validate(namespace), as_json(names)),
        )
        .fetchall()
    )
    found = {name: ident for _ns, name, ident in rows}
    for name in names:
        if name not in found:
            raise EntityNotFound(name)
    return rows[0][0], [found[name] for name in names]


def type_id(ns_id: int, kind: str, name: str) -> int | None:
    row = (
        db()
        .execute("SELECT id FROM graph_typedict WHERE namespace_id = ? AND kind = ? AND name = ?", (ns_id, kind, name))
        .fetchone()
    )
    return row[0] if row else None


_TYPE_PAIRS = packed_list(f"{PACKED_ARRAY}(t.id, t.name)")
_NAMESPACE_TYPES = (
    f"WITH n(id) AS (SELECT {namespaces.id_sql('?')}) SELECT n.id, "
    f"{packed(f'SELECT {_TYPE_PAIRS} FROM graph_typedict t WHERE t.namespace_id = n.id AND t.kind = ? AND t.count > 0')} "
    "FROM n"
)


def namespace_types(namespace: str, kind: str) -> tuple[int | None, list[tuple[int, str]]]:
    """The id of an existing namespace (None: it does not exist) and its types of `kind` that
    are in use, (id, name), in one statement: a search needs both."""
    ns_id, types = db().execute(_NAMESPACE_TYPES, (namespaces.validate(namespace), kind)).fetchone()
    if ns_id is None:
        return None, []
    return ns_id, [(type_, name) for type_, name in unpack(types)]


def ensure_types(ns_id: int, kind: str, names: Iterable[str]) -> dict[str, int]:
    unique = list(dict.fromkeys(names))
    conn = db()
    conn.executemany(
        "INSERT INTO graph_typedict(namespace_id, kind, name, count) VALUES (?, ?, ?, 0) ON CONFLICT DO NOTHING",
        [(ns_id, kind, name) for name in unique],
    )
    rows = conn.execute(
        f"SELECT name, id FROM graph_typedict WHERE namespace_id = ? AND kind = ? AND name {in_json('?', 'text')}",
        (ns_id, kind, as_json(unique)),
    )
    return dict(rows.fetchall())
