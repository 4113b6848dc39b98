"""The graph's read paths: entities with their observations, and relations, each as of one time.

They return their rows packed into one JSON value (graph/sql.py says why: one sqlite3 step per
query). Every read looks at a `graph.validity.When` (default CURRENT: what holds now).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from access import namespaces
from graph import validity
from graph.sql import PACKED_ARRAY, as_json, db, in_json, json_values, now, packed, packed_list, stored, truth, unpack
from graph.types import EntityDict, ObservationDetail, RelationDict
from graph.validity import CURRENT, When
from kernel.sql import POSTGRES

# The read paths below return their rows packed into one JSON value, so each query is a single
# sqlite3 step: the module releases the GIL around every step, and under load each re-take waits
# for the event loop's thread: under load (bench/load.py) reads waited longer for the GIL than in
# SQLite. json_group_array's order is not defined, so rows carry their id and are sorted here.
#
# Every read looks at one time (graph/validity.py `When`, default CURRENT: what holds now): a
# closed observation or relation is left out unless the read asks for a time it held at, or for
# every fact (includeExpired). The row condition binds `:at` once; the statement text depends only
# on the kind of read (current, asOf, includeExpired), so SQLite's statement cache keeps one of each.


class _Shape(NamedTuple):
    """The SQL of one kind of read: the observations of entity `e` (packed), the relation columns
    (RELATION_COLUMNS, with the validity columns when marked) and the relation condition on `r`."""

    observations: str
    relation_columns: str
    relation_test: str
    marked: bool


@functools.cache
def _shape(marked: bool, include_expired: bool) -> _Shape:
    moment = validity.When("at" if marked and not include_expired else None, include_expired)
    observation_test, _ = validity.condition("o", moment, placeholder=":at")
    relation_test, _ = validity.condition("r", moment, placeholder=":at")
    observation_test, relation_test = truth(observation_test), truth(relation_test)
    if marked:
        # [id, body, valid_from, valid_to, created_at, supersedes id, successor id]; the successor
        # is found by the unique index observation_one_successor.
        observation = (
            f"{PACKED_ARRAY}(o.id, o.body, {stored('o.valid_from')}, {stored('o.valid_to')}, {stored('o.created_at')}, "
            "o.supersedes_id, (SELECT s.id FROM graph_observation s WHERE s.supersedes_id = o.id))"
        )
        times = (
            f"{stored('r.valid_from')} AS valid_from, {stored('r.valid_to')} AS valid_to, "
            f"{stored('r.created_at')} AS created_at"
            if POSTGRES
            else "r.valid_from, r.valid_to, r.created_at"
        )
        columns = _RELATION_BASE.replace("ty.name AS type_name", f"ty.name AS type_name, {times}")
    else:
        observation = f"{PACKED_ARRAY}(o.id, o.body)"
        columns = _RELATION_BASE
    observations = packed(
        f"SELECT {packed_list(observation)} FROM graph_observation o "
        f"WHERE o.entity_id = e.id AND (o.expires_at IS NULL OR o.expires_at > :now) AND {observation_test}"
    )
    return _Shape(observations, columns, relation_test, marked)


def shape_of(moment: When) -> _Shape:
    return _shape(moment.marked, moment.include_expired)


def time_params(moment: When) -> dict[str, Any]:
    """The parameters every time-aware statement binds: `:now` (retention) and `:at` (validity)."""
    stamp = now()
    return {"now": stamp, "at": moment.at or stamp}


def _entity_dict(
    name: str, entity_type: str, observations: list[list[Any]], marked: bool = False, at: str | None = None
) -> EntityDict:
    rows = sorted(observations)
    entity: EntityDict = {"name": name, "entityType": entity_type, "observations": [row[1] for row in rows]}
    if marked:
        details: list[ObservationDetail] = []
        for ident, body, valid_from, valid_to, created_at, before, after in rows:
            held = validity.marks(valid_from, valid_to, created_at, at=at)
            details.append(
                {
                    "id": f"mem_{ident}",
                    "text": body,
                    "validFrom": held["validFrom"],
                    "validTo": held["validTo"],
                    "current": held["current"],
                    "supersedes": f"mem_{before}" if before is not None else None,
                    "supersededBy": f"mem_{after}" if after is not None else None,
                }
            )
        entity["observationDetails"] = details
    return entity


def load_entities(ids: list[int], moment: When = CURRENT) -> list[EntityDict]:
    """Entities with their live observations valid at `moment` (oldest first), in the order of `ids`."""
    if not ids:
        return []
    shape = shape_of(moment)
    (packed,) = (
        db()
        .execute(
            f"SELECT {packed_list(f'{PACKED_ARRAY}(e.id, e.name, t.name, {shape.observations})')} "
            "FROM graph_entity e JOIN graph_typedict t ON t.id = e.type_id "
            f"WHERE e.id {in_json(':ids')}",
            {"ids": as_json(ids), **time_params(moment)},
        )
        .fetchone()
    )
    return _entities_in_order(packed, ids, key=0, marked=shape.marked)


def _entities_in_order(rows: Any, order: Iterable[int | str], *, key: int, marked: bool = False) -> list[EntityDict]:
    """Packed `[id, name, type, [[observation id, body, ...], ...]]` rows as entities, in `order`
    (of ids with key=0, of names with key=1); keys with no row are skipped."""
    loaded = {row[key]: row for row in unpack(rows)}
    rows = [loaded[wanted] for wanted in order if wanted in loaded]
    stamp = now() if marked else None  # `current` of every fact as of one instant
    return [_entity_dict(row[1], row[2], row[3], marked, stamp) for row in rows]


def load_entity(entity: int, moment: When = CURRENT) -> EntityDict | None:
    shape = shape_of(moment)
    row = (
        db()
        .execute(
            f"SELECT e.name, t.name, {shape.observations} "
            "FROM graph_entity e JOIN graph_typedict t ON t.id = e.type_id WHERE e.id = :id",
            {"id": entity, **time_params(moment)},
        )
        .fetchone()
    )
    if row is None:
        return None
    return _entity_dict(row[0], row[1], unpack(row[2]), shape.marked)


def _named_entity_row(namespace: str, name: str, moment: When, columns: str = "") -> tuple[_Shape, Any]:
    """The row of a named entity: `columns` (each followed by a comma), then its name, type and
    packed observations; one statement, the namespace looked up inside it."""
    shape = shape_of(moment)
    row = (
        db()
        .execute(
            f"SELECT {columns}e.name, t.name, {shape.observations} FROM graph_entity e "
            "JOIN graph_typedict t ON t.id = e.type_id "
            f"WHERE e.namespace_id = {namespaces.id_sql(':namespace')} AND e.name = :name",
            {"namespace": namespace, "name": name, **time_params(moment)},
        )
        .fetchone()
    )
    return shape, row


def load_named_entity(namespace: str, name: str, moment: When = CURRENT) -> EntityDict | None:
    shape, row = _named_entity_row(namespace, name, moment)
    if row is None:
        return None
    return _entity_dict(row[0], row[1], unpack(row[2]), shape.marked)


def load_described_entity(namespace: str, name: str) -> tuple[int, int, int, EntityDict] | None:
    """(id, in-degree, out-degree, entity as it holds now) of a named entity, in one statement."""
    _shape, row = _named_entity_row(namespace, name, CURRENT, "e.id, e.in_deg, e.out_deg, ")
    if row is None:
        return None
    return row[0], row[1], row[2], _entity_dict(row[3], row[4], unpack(row[5]))


def relations_both_ways(entity: int, limit: int) -> tuple[list[Any], list[Any]]:
    """The first `limit` relations (by id) leaving `entity` and entering it that hold now, as rows
    for `relation_dict`, in one statement: (outgoing, incoming)."""
    shape = shape_of(CURRENT)
    one_way = f"{shape.relation_columns} WHERE r.{{end}} = :id AND {shape.relation_test} ORDER BY r.id LIMIT :limit"
    # Each side is a subquery so it keeps its own ORDER BY and LIMIT (SQLite allows neither on
    # the arm of a compound SELECT).
    rows = (
        db()
        .execute(
            f"SELECT 0 AS way, o.* FROM ({one_way.format(end='from_id')}) AS o "
            f"UNION ALL SELECT 1 AS way, i.* FROM ({one_way.format(end='to_id')}) AS i",
            {"id": entity, "limit": limit, **time_params(CURRENT)},
        )
        .fetchall()
    )
    outgoing = [row[1:] for row in rows if row[0] == 0]
    incoming = [row[1:] for row in rows if row[0] == 1]
    return outgoing, incoming


_RELATION_BASE = (
    "SELECT r.id AS id, f.name AS from_name, t.name AS to_name, ty.name AS type_name FROM graph_relation r "
    "JOIN graph_entity f ON f.id = r.from_id JOIN graph_entity t ON t.id = r.to_id "
    "JOIN graph_typedict ty ON ty.id = r.type_id "
)
# Every relation, whatever its validity: callers that read relations at a time use `relations_at`.
RELATION_COLUMNS = _RELATION_BASE


def relation_dict(row: Sequence[Any], at: str | None = None) -> RelationDict:
    """A relation row on the wire, marked with its validity when the row carries it (`current` as
    of `at`, default now)."""
    relation: RelationDict = {"from": row[1], "to": row[2], "relationType": row[3]}
    if len(row) > 4:
        relation.update(validity.marks(row[4], row[5], row[6], at=at))
    return relation


def relation_dicts(rows: Iterable[Sequence[Any]]) -> list[RelationDict]:
    """`relation_dict` of each row, `current` as of one instant."""
    stamp = now()
    return [relation_dict(row, stamp) for row in rows]


def relations_at(where: str, params: dict[str, Any], moment: When, *, tail: str = "ORDER BY r.id") -> list[Any]:
    """Rows of RELATION_COLUMNS (with the validity columns when `moment` is marked) matching
    `where` (named parameters) and valid at `moment`; pass them to `relation_dict`."""
    shape = shape_of(moment)
    return (
        db()
        .execute(
            f"{shape.relation_columns} WHERE {where} AND {shape.relation_test} {tail}",
            # A caller making several reads of one moment may bind the times once.
            params if "at" in params else {**params, **time_params(moment)},
        )
        .fetchall()
    )


# A page of entities (the ids in CTE `page`) and the relations touching them, as two packed
# columns of one statement.
@functools.cache
def _page_sql(marked: bool, include_expired: bool) -> str:
    shape = _shape(marked, include_expired)
    if POSTGRES:
        return _postgres_page_sql(shape)
    relation = f"{PACKED_ARRAY}(id, from_name, to_name, type_name" + (
        ", valid_from, valid_to, created_at)" if marked else ")"
    )
    return (
        f"SELECT (SELECT {packed_list(f'{PACKED_ARRAY}(e.id, e.name, t.name, {shape.observations})')} "
        "FROM graph_entity e JOIN graph_typedict t ON t.id = e.type_id WHERE e.id IN (SELECT id FROM page)), "
        f"(SELECT {packed_list(relation)} FROM ("
        f"{shape.relation_columns} WHERE r.from_id IN (SELECT id FROM page) AND {shape.relation_test} "
        f"UNION {shape.relation_columns} WHERE r.to_id IN (SELECT id FROM page) AND {shape.relation_test}))"
    )


def _postgres_page_sql(shape: _Shape) -> str:
    """`_page_sql` on PostgreSQL, shaped for its planner: names by scalar look-ups instead of
    joins and one scan of the relations touching the page (either end) instead of a UNION, which
    plans in a third of the time (~0.35 against ~1.2 ms warm; Django's client-side binding plans
    every statement). Page ids are looked up as an array (graph/sql.py `in_json` says why)."""
    in_page = "= ANY(ARRAY(SELECT id FROM page))"
    name = "(SELECT name FROM graph_{table} WHERE id = {column})"
    columns = [
        "r.id",
        name.format(table="entity", column="r.from_id"),
        name.format(table="entity", column="r.to_id"),
        name.format(table="typedict", column="r.type_id"),
    ]
    if shape.marked:
        columns += [stored("r.valid_from"), stored("r.valid_to"), stored("r.created_at")]
    entity = f"{PACKED_ARRAY}(e.id, e.name, {name.format(table='typedict', column='e.type_id')}, {shape.observations})"
    relation = f"{PACKED_ARRAY}({', '.join(columns)})"
    return (
        f"SELECT (SELECT {packed_list(entity)} FROM graph_entity e WHERE e.id {in_page}), "
        f"(SELECT {packed_list(relation)} FROM graph_relation r "
        f"WHERE (r.from_id {in_page} OR r.to_id {in_page}) AND {shape.relation_test})"
    )


def load_page(ids: list[int], moment: When = CURRENT) -> tuple[list[EntityDict], list[RelationDict]]:
    """`load_entities(ids)`, and the relations with either end in `ids` (oldest first, each
    once), in one statement."""
    if not ids:
        return [], []
    entities, relations = (
        db()
        .execute(
            f"WITH page(id) AS {json_values(':ids')} {_page_sql(moment.marked, moment.include_expired)}",
            {"ids": as_json(ids), **time_params(moment)},
        )
        .fetchone()
    )
    return _entities_in_order(entities, ids, key=0, marked=moment.marked), _relation_dicts(relations)


def load_named_page(
    namespace: str, names: list[str], moment: When = CURRENT
) -> tuple[list[EntityDict], list[RelationDict]]:
    """The entities of `namespace` with these names (in the order of `names`, each once; names
    it does not hold are skipped) and the relations touching them, in one statement."""
    entities, relations = (
        db()
        .execute(
            "WITH page(id) AS MATERIALIZED (SELECT e.id FROM graph_entity e "
            f"WHERE e.namespace_id = {namespaces.id_sql(':namespace')} "
            f"AND e.name {in_json(':names', 'text')}) "
            f"{_page_sql(moment.marked, moment.include_expired)}",
            {"namespace": namespace, "names": as_json(names), **time_params(moment)},
        )
        .fetchone()
    )
    return _entities_in_order(entities, dict.fromkeys(names), key=1, marked=moment.marked), _relation_dicts(relations)


def _relation_dicts(rows: Any) -> list[RelationDict]:
    # Rows carry their id first: sorted, they are oldest first.
    return relation_dicts(sorted(unpack(rows)))


def relations_from(ids: list[int], moment: When = CURRENT) -> list[RelationDict]:
    """Relations whose `from` end is in `ids` valid at `moment`, oldest first."""
    if not ids:
        return []
    rows = relations_at(f"r.from_id {in_json(':ids')}", {"ids": as_json(ids)}, moment)
    return relation_dicts(rows)


def relations_by_id(relation_ids: list[int], moment: When = CURRENT) -> dict[int, RelationDict]:
    """The relations with these ids, whatever their validity (the caller chose them), marked
    with it when `moment` is marked."""
    if not relation_ids:
        return {}
    rows = relations_at(
        f"r.id {in_json(':ids')}",
        {"ids": as_json(relation_ids)},
        validity.When(None, True),
        tail="",
    )
    return {row[0]: relation_dict(row if moment.marked else row[:4]) for row in rows}


def relations_within(ids: list[int], moment: When = CURRENT) -> list[RelationDict]:
    """Relations with both ends in `ids` valid at `moment`, oldest first."""
    if not ids:
        return []
    rows = relations_at(
        f"r.from_id {in_json(':ids')} AND r.to_id {in_json(':ids')}",
        {"ids": as_json(ids)},
        moment,
    )
    return relation_dicts(rows)
