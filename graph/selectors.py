"""Reads from the knowledge graph.

Every selector is keyword-only and scoped to one namespace; a namespace that does not exist
reads as empty (reads never create one). Large results are paged, never silently cut: pages say
`hasMore` and how to get the next one.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Any, NotRequired, TypedDict

from django.conf import settings

from access import namespaces
from graph import limits, recent
from graph.exceptions import EntityNotFound, InvalidArgument
from graph.exporters import FORMATS, export_chunks, official_chunks
from graph.fts import build_match, build_tsquery
from graph.reads import (
    load_described_entity,
    load_entities,
    load_named_entity,
    load_named_page,
    load_page,
    relation_dicts,
    relations_at,
    relations_both_ways,
    relations_by_id,
    relations_from,
    relations_within,
)
from graph.sql import (
    as_json,
    db,
    entity_id,
    entity_ids,
    in_json,
    namespace_types,
    narrowed_matches,
    now,
    require_entities,
    truth,
    type_id,
)
from graph.traversal import Direction, all_simple_paths, bfs, shortest_path, steps
from graph.types import EntityDict, GraphPage, RelationDict
from graph.validity import CURRENT, condition, when
from kernel.sql import POSTGRES

ENTITY = "entity"
RELATION = "relation"
DEFAULT_READ_GRAPH_LIMIT = 500
DEFAULT_SEARCH_LIMIT = 100
DEFAULT_RELATIONS_LIMIT = 100
# Neighbourhood queries return at most this many entities besides the centre (then `truncated`).
MAX_NEIGHBOURHOOD = 1000


def _page_limit(value: Any, default: int) -> int:
    return limits.integer(value, field="limit", default=default, minimum=1, limit_name="MAX_SEARCH_LIMIT")


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"e{last_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: Any) -> int:
    if not isinstance(cursor, str):
        raise InvalidArgument("cursor must be a string returned as nextCursor by an earlier read_graph call")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("e") or not raw[1:].isascii() or len(raw) > 20:
            raise ValueError  # ours are "e<row id>", at most 19 digits
        after = int(raw[1:])
        if after >= 2**63:
            raise ValueError  # beyond SQLite's integers (the driver would raise OverflowError)
        return after
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument("cursor is not valid: pass the nextCursor of an earlier read_graph call") from None


# --- whole-graph and search reads ---------------------------------------------------------------


def read_graph(
    *,
    namespace: str,
    entity_type: str | None = None,
    cursor: str | None = None,
    offset: int | None = None,
    limit: int | None = None,
    as_of: str | None = None,
    include_expired: bool | None = None,
) -> GraphPage:
    """One page of entities (oldest first) with the relations that start at them, so paging
    through the whole graph yields every entity and every relation exactly once.

    Continue with `cursor=nextCursor` (stable under concurrent writes) or with `offset`. Facts
    (observations, relations) are those that hold now; `as_of` (ISO 8601) reads those that held
    then, `include_expired` every one, each marked with its validity."""
    moment = when(as_of, include_expired)
    page_size = _page_limit(limit, DEFAULT_READ_GRAPH_LIMIT)
    skip = limits.integer(offset, field="offset", default=0, minimum=0)
    if cursor is not None and skip:
        raise InvalidArgument("pass either cursor or offset, not both")
    after = _decode_cursor(cursor) if cursor is not None else 0
    ns_id = namespaces.lookup(namespace)
    empty: GraphPage = {"entities": [], "relations": [], "hasMore": False, "nextCursor": None}
    if ns_id is None:
        return empty
    sql = "SELECT id FROM graph_entity WHERE namespace_id = ? AND id > ?"
    params: list[Any] = [ns_id, after]
    if entity_type is not None:
        type_ = type_id(ns_id, ENTITY, limits.name(entity_type, field="entityType"))
        if type_ is None:
            return empty
        sql += " AND type_id = ?"
        params.append(type_)
    sql += " ORDER BY id LIMIT ? OFFSET ?"
    params += [page_size + 1, skip]
    ids = [row[0] for row in db().execute(sql, params)]
    has_more = len(ids) > page_size
    ids = ids[:page_size]
    return {
        "entities": load_entities(ids, moment),
        "relations": relations_from(ids, moment),
        "hasMore": has_more,
        "nextCursor": _encode_cursor(ids[-1]) if has_more else None,
    }


def search_nodes(
    *,
    namespace: str,
    query: str,
    entity_type: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
    as_of: str | None = None,
    include_expired: bool | None = None,
) -> GraphPage:
    """Entities matching `query`, best first, with the relations that touch them.

    Ranking: entities whose name matches (bm25), then entities with a matching observation (best
    bm25 among them), then entities whose type contains the query (case-insensitive, as the
    official server matches types). Bare words match as word prefixes, "quoted phrases" exactly;
    case and accents are ignored; Chinese, Japanese and Korean match as substrings. An empty
    query matches every entity.

    Only observations that hold now are searched and returned (an entity does not match through
    a closed one); `as_of` (ISO 8601) searches those that held then, `include_expired` all."""
    if not isinstance(query, str):
        raise InvalidArgument("query must be a string")
    moment = when(as_of, include_expired)
    valid, valid_params = condition("o", moment)
    valid = truth(valid)
    if query.strip():
        limits.text(query, field="query", limit_name="MAX_OBSERVATION_BYTES")
    page_size = _page_limit(limit, DEFAULT_SEARCH_LIMIT)
    skip = limits.integer(offset, field="offset", default=0, minimum=0)
    wanted = skip + page_size + 1
    empty: GraphPage = {"entities": [], "relations": [], "hasMore": False, "nextOffset": None}
    # The entity types are read with the namespace: for the filter, and for the entities whose
    # type holds the query, which follow the text matches.
    ns_id, types = namespace_types(namespace, ENTITY)
    if ns_id is None:
        return empty
    type_filter: int | None = None
    if entity_type is not None:
        named = limits.name(entity_type, field="entityType")
        # A type no entity has (any longer) matches nothing, as a type never used.
        type_filter = next((type_ for type_, name in types if name == named), None)
        if type_filter is None:
            return empty

    conn = db()
    type_clause = " AND e.type_id = ?" if type_filter is not None else ""
    type_param: tuple[int, ...] = (type_filter,) if type_filter is not None else ()
    ranked: dict[int, None] = {}  # insertion-ordered set
    match = _build_match(query)
    if not query.strip():
        rows = conn.execute(
            f"SELECT e.id FROM graph_entity e WHERE e.namespace_id = ?{type_clause} ORDER BY e.id LIMIT ?",
            (ns_id, *type_param, wanted),
        )
        ranked.update((row[0], None) for row in rows)
    else:
        if match is not None:
            # Narrowed for both indexes at once (one statement), though the second is only
            # searched when the names do not fill the page.
            name_match, observation_match = narrowed_matches((NAMES, OBSERVATIONS), match)
            ranked.update(
                (entity, None)
                for entity in _ranked_matches(
                    fts=NAMES,
                    owner="e.id",
                    joins=_NAME_JOINS,
                    where=f"e.namespace_id = ?{type_clause}",
                    match=name_match,
                    params=(ns_id, *type_param),
                    wanted=wanted,
                )
            )
            if len(ranked) < wanted:
                ranked.update(
                    (entity, None)
                    for entity in _ranked_matches(
                        fts=OBSERVATIONS,
                        owner="o.entity_id",
                        joins=_OBSERVATION_JOINS if type_filter is not None else _OBSERVATIONS_ONLY,
                        where=f"o.namespace_id = ? AND (o.expires_at IS NULL OR o.expires_at > ?) AND {valid}"
                        f"{type_clause}",
                        match=observation_match,
                        params=(ns_id, now(), *valid_params, *type_param),
                        wanted=wanted,
                    )
                )
        else:
            # Nothing FTS indexes (emoji, symbols): match the text as a substring of names and
            # observations, as the official server does. This scans the namespace, but only for
            # such queries; any word in the query takes the indexed path above.
            needle = query.strip()
            rows = conn.execute(
                "SELECT e.id FROM graph_entity e WHERE e.namespace_id = ?"
                f"{type_clause} AND ({_INSTR}(e.name, ?) > 0 OR EXISTS (SELECT 1 FROM graph_observation o "
                f"WHERE o.entity_id = e.id AND {_INSTR}(o.body, ?) > 0 AND (o.expires_at IS NULL OR o.expires_at > ?) "
                f"AND {valid})) ORDER BY e.id LIMIT ?",
                (ns_id, *type_param, needle, needle, now(), *valid_params, wanted),
            )
            ranked.update((row[0], None) for row in rows)
        if len(ranked) < wanted:
            needle = query.strip().casefold()
            matching_types = [
                type_
                for type_, name in types
                if needle in name.casefold() and (type_filter is None or type_ == type_filter)
            ]
            if matching_types:
                rows = conn.execute(
                    f"SELECT id FROM graph_entity WHERE type_id {in_json()} ORDER BY id LIMIT ?",
                    (as_json(matching_types), wanted),
                )
                ranked.update((row[0], None) for row in rows)
    ordered = list(ranked)
    page = ordered[skip : skip + page_size]
    has_more = len(ordered) > skip + page_size
    entities, relations = load_page(page, moment)
    return {
        "entities": entities,
        "relations": relations,
        "hasMore": has_more,
        "nextOffset": skip + page_size if has_more else None,
    }


# The full-text indexes search_nodes reads, and how a row of each reaches its entity `e` (and
# observation `o`): FTS5 tables on SQLite, the tables' `search_vector` columns on PostgreSQL.
if POSTGRES:
    NAMES, OBSERVATIONS = "graph_entity", "graph_observation"
    _NAME_JOINS = "e"
    _OBSERVATION_JOINS = "o JOIN graph_entity e ON e.id = o.entity_id"
    _OBSERVATIONS_ONLY = "o"  # no type filter: the entity is not needed to match
    _INSTR = "strpos"
    _build_match = build_tsquery
else:
    NAMES, OBSERVATIONS = "name_fts", "obs_fts"
    _NAME_JOINS = "JOIN graph_entity e ON e.id = name_fts.rowid"
    _OBSERVATION_JOINS = "JOIN graph_observation o ON o.id = obs_fts.rowid JOIN graph_entity e ON e.id = o.entity_id"
    _OBSERVATIONS_ONLY = _OBSERVATION_JOINS
    _INSTR = "instr"
    _build_match = build_match


def _ranked_matches_sqlite(
    *, fts: str, match: str, owner: str, joins: str, where: str, params: tuple[Any, ...], wanted: int
) -> list[int]:
    """Owners (entity ids) of the rows of `fts` that match `match` (already narrowed for `fts`,
    graph/sql.py `narrowed_matches`; and `where`, with `params`), best bm25 first, at most `wanted`.

    SQLite computes bm25 for every matching row before a page is cut, so a common word's cost
    grows with the namespace (bench/RESULTS.md, "search_nodes: the rank window"). Ranking is done
    among the newest `MEMORYHUB_SEARCH_RANK_WINDOW` matching rows; older matches follow, newest
    first, so paging still reaches every one. Below the window (most namespaces and queries)
    this is exactly a bm25 ranking of all matches.

    The window is grouped by owner in SQL (best score, ties newest first) so only the page comes
    back to Python: fetching a 1,000-row window row by row released and re-took the GIL a
    thousand times, and under load every re-take waited for the event loop's thread."""
    window = settings.MEMORYHUB_SEARCH_RANK_WINDOW
    newest_first = f"FROM {fts} {joins} WHERE {fts} MATCH ? AND {where}"
    params = (match, *params)
    rows = (
        db()
        .execute(
            f"WITH recent AS MATERIALIZED (SELECT {owner} AS owner, {fts}.rank AS score, {fts}.rowid AS at "
            f"{newest_first} ORDER BY {fts}.rowid DESC LIMIT ?) "
            "SELECT owner, min(score) AS best, max(at) AS newest, (SELECT count(*) FROM recent), "
            "(SELECT min(at) FROM recent) FROM recent GROUP BY owner ORDER BY best, newest DESC LIMIT ?",
            (*params, window, wanted),
        )
        .fetchall()
    )
    ordered = [row[0] for row in rows]
    if rows and rows[0][3] == window and len(ordered) < wanted:
        # A full window held fewer than `wanted` owners (so `ordered` is all of them): older
        # matches follow, newest first.
        seen = set(ordered)
        older = db().execute(
            f"SELECT {owner} {newest_first} AND {fts}.rowid < ? ORDER BY {fts}.rowid DESC", (*params, rows[0][4])
        )
        for (entity,) in older:
            if entity not in seen:
                seen.add(entity)
                ordered.append(entity)
                if len(ordered) >= wanted:
                    break
    return ordered


def _ranked_matches_postgres(
    *, fts: str, match: str, owner: str, joins: str, where: str, params: tuple[Any, ...], wanted: int
) -> list[int]:
    """`_ranked_matches` on PostgreSQL: `fts` is the table whose `search_vector` matches, `joins`
    its alias (and the joins to `e`), `match` a tsquery text (fts.build_tsquery). The same window
    (MEMORYHUB_SEARCH_RANK_WINDOW) and order: the newest matches of the window are found by the GIN
    index, ranked with ts_rank (normalised by length, as bm25 favours short texts; higher is
    better, so the score is its negation), grouped by owner; older matches follow, newest first.

    Planned for each query (never a prepared generic plan): how many rows hold the words decides
    the plan. A common word is found fastest by walking the newest rows until the window is
    full, a word in a few percent of the rows in the newest id buckets (graph/recent.py), a rare
    word by reading its matches from the index; a generic plan, which cannot know how common the
    word is, read every match through the GIN index and sorted them (bench/RESULTS.md,
    "Searches planned per query", has the figures)."""
    window = settings.MEMORYHUB_SEARCH_RANK_WINDOW
    alias = joins.split(" ", 1)[0]
    newest_first = f"FROM {fts} {joins} WHERE {alias}.search_vector @@ to_tsquery('simple', ?) AND {where}"
    # Rows carry their id bucket in the index (graph/recent.py): a word in a few percent of
    # them is searched in the newest buckets first.
    window_sql, window_params = recent.newest_first(
        f"SELECT {owner} AS owner, {alias}.id AS at, {alias}.search_vector AS vector {newest_first}",
        (match, *params),
        table=fts,
        alias=alias,
        window=window,
        buckets=recent.newest_buckets(match, window, fts),
    )
    rows = (
        db()
        .execute(
            f"WITH recent AS MATERIALIZED ({window_sql}), "
            # The window's rows are scored from the vectors the scan already read: looking each
            # row up again by id cost one index probe per row, and a join back to the table may
            # be planned to read all of it.
            "scored AS (SELECT owner, -ts_rank(vector, to_tsquery('simple', ?), 1) AS score, at FROM recent) "
            "SELECT owner, min(score) AS best, max(at) AS newest, (SELECT count(*) FROM recent), "
            "(SELECT min(at) FROM recent) FROM scored GROUP BY owner ORDER BY best, newest DESC LIMIT ?",
            (*window_params, match, wanted),
            prepare=False,
        )
        .fetchall()
    )
    ordered = [row[0] for row in rows]
    if rows and rows[0][3] == window and len(ordered) < wanted:
        seen = set(ordered)
        before = rows[0][4]
        batch = max(2 * wanted, 100)
        while len(ordered) < wanted:
            older = (
                db()
                .execute(
                    f"SELECT {owner}, {alias}.id {newest_first} AND {alias}.id < ? ORDER BY {alias}.id DESC LIMIT ?",
                    (match, *params, before, batch),
                    prepare=False,
                )
                .fetchall()
            )
            for entity, at in older:
                before = at
                if entity not in seen:
                    seen.add(entity)
                    ordered.append(entity)
                    if len(ordered) >= wanted:
                        break
            if len(older) < batch:
                break
    return ordered


_ranked_matches = _ranked_matches_postgres if POSTGRES else _ranked_matches_sqlite


def open_nodes(
    *, namespace: str, names: list[str], as_of: str | None = None, include_expired: bool | None = None
) -> GraphPage:
    """The named entities (missing names are skipped) and the relations touching them: the facts
    that hold now, or at `as_of` (ISO 8601), or all of them with `include_expired`."""
    requested = limits.names(names, field="names")
    moment = when(as_of, include_expired)
    entities, relations = load_named_page(namespaces.validate(namespace), requested, moment)
    return {"entities": entities, "relations": relations}


# --- point reads ---------------------------------------------------------------------------------


def get_entity(*, namespace: str, name: str) -> EntityDict:
    """One entity with its observations. Raises EntityNotFound."""
    entity = load_named_entity(namespaces.validate(namespace), limits.name(name))
    if entity is None:
        raise EntityNotFound(name)
    return entity


class BatchGetResult(TypedDict):
    entities: list[EntityDict | None]


def batch_get_entities(*, namespace: str, names: list[str]) -> BatchGetResult:
    """Entities in the order asked, with null for each missing name."""
    requested = limits.names(names, field="names")
    ns_id = namespaces.lookup(namespace)
    ids = entity_ids(ns_id, requested) if ns_id is not None else {}
    loaded = {e["name"]: e for e in load_entities(list(dict.fromkeys(ids.values())))}
    return {"entities": [loaded.get(name) for name in requested]}


class EntityExistsResult(TypedDict):
    names: list[str]
    exists: list[bool]


def entity_exists(*, namespace: str, names: list[str]) -> EntityExistsResult:
    requested = limits.names(names, field="names")
    ns_id = namespaces.lookup(namespace)
    ids = entity_ids(ns_id, requested) if ns_id is not None else {}
    return {"names": requested, "exists": [name in ids for name in requested]}


class GraphStats(TypedDict):
    entities: int
    relations: int
    observations: int
    memories: int
    entityTypes: int
    relationTypes: int


if POSTGRES:
    _TYPE_TOTALS = (
        "SELECT kind, CAST(sum(count) AS bigint), count(*) FILTER (WHERE count > 0) FROM graph_typedict "
        "WHERE namespace_id = ? GROUP BY kind"
    )
else:
    _TYPE_TOTALS = "SELECT kind, sum(count), sum(count > 0) FROM graph_typedict WHERE namespace_id = ? GROUP BY kind"


def graph_stats(*, namespace: str) -> GraphStats:
    """Counts for one namespace. Entity and relation totals come from the live type counts."""
    ns_id = namespaces.lookup(namespace)
    if ns_id is None:
        return {"entities": 0, "relations": 0, "observations": 0, "memories": 0, "entityTypes": 0, "relationTypes": 0}
    conn = db()
    totals = {
        kind: (total or 0, used or 0)
        for kind, total, used in conn.execute(
            _TYPE_TOTALS,
            (ns_id,),
        )
    }
    # Both counts are answered from indexes alone: (namespace_id) for all rows and the partial
    # index over entity-less rows for memories. count(entity_id) would read every row instead.
    (total,) = conn.execute("SELECT count(*) FROM graph_observation WHERE namespace_id = ?", (ns_id,)).fetchone()
    (memories,) = conn.execute(
        "SELECT count(*) FROM graph_observation WHERE namespace_id = ? AND entity_id IS NULL", (ns_id,)
    ).fetchone()
    # What holds now: closed facts stay for asOf reads but are not counted (found by the partial
    # indexes observation_closed and relation_closed, so this stays cheap).
    at = now()
    closed_total, closed_memories = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE entity_id IS NULL) FROM graph_observation "
        "WHERE namespace_id = ? AND valid_to IS NOT NULL AND valid_to <= ?",
        (ns_id, at),
    ).fetchone()
    (closed_relations,) = conn.execute(
        "SELECT count(*) FROM graph_relation WHERE namespace_id = ? AND valid_to IS NOT NULL AND valid_to <= ?",
        (ns_id, at),
    ).fetchone()
    total -= closed_total
    memories -= closed_memories
    observations = total - memories
    return {
        "entities": totals.get(ENTITY, (0, 0))[0],
        "relations": totals.get(RELATION, (0, 0))[0] - closed_relations,
        "observations": observations,
        "memories": memories,
        "entityTypes": totals.get(ENTITY, (0, 0))[1],
        "relationTypes": totals.get(RELATION, (0, 0))[1],
    }


class TypeCount(TypedDict):
    name: str
    count: int
    # Relation types declared functional (declare_relation_type) say so.
    functional: NotRequired[bool]


class TypeList(TypedDict):
    types: list[TypeCount]


def _list_types(namespace: str, kind: str) -> TypeList:
    ns_id = namespaces.lookup(namespace)
    if ns_id is None:
        return {"types": []}
    conn = db()
    rows = conn.execute(
        "SELECT id, name, count, functional FROM graph_typedict WHERE namespace_id = ? AND kind = ? "
        "AND (count > 0 OR functional) ORDER BY count DESC, name",
        (ns_id, kind),
    ).fetchall()
    if kind != RELATION:
        return {"types": [{"name": name, "count": count} for _, name, count, _ in rows]}
    # Relation counts are of what holds now: the type counts count every row, closed ones are
    # few and found by the partial index relation_closed. Functional types say so.
    closed = dict(
        conn.execute(
            "SELECT type_id, count(*) FROM graph_relation WHERE namespace_id = ? AND valid_to IS NOT NULL "
            "AND valid_to <= ? GROUP BY type_id",
            (ns_id, now()),
        ).fetchall()
    )
    types: list[TypeCount] = []
    for ident, name, count, functional in rows:
        held = count - closed.get(ident, 0)
        if held > 0 or functional:
            item: TypeCount = {"name": name, "count": held}
            if functional:
                item["functional"] = True
            types.append(item)
    types.sort(key=lambda item: (-item["count"], item["name"]))
    return {"types": types}


def list_entity_types(*, namespace: str) -> TypeList:
    return _list_types(namespace, ENTITY)


def list_relation_types(*, namespace: str) -> TypeList:
    return _list_types(namespace, RELATION)


class RelationPage(TypedDict):
    relations: list[RelationDict]
    hasMore: bool
    nextOffset: int | None


def search_relations(
    *,
    namespace: str,
    from_: str | None = None,
    to: str | None = None,
    relation_type: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> RelationPage:
    """Relations filtered by any of their end names and type (all optional), oldest first."""
    page_size = _page_limit(limit, DEFAULT_SEARCH_LIMIT)
    skip = limits.integer(offset, field="offset", default=0, minimum=0)
    empty: RelationPage = {"relations": [], "hasMore": False, "nextOffset": None}
    ns_id = namespaces.lookup(namespace)
    if ns_id is None:
        return empty
    # The unary + keeps SQLite from choosing the namespace index over the far more selective
    # (from_id, ...) / (to_id, ...) indexes when an end is given.
    clauses, params = ["+r.namespace_id = :ns"], {"ns": ns_id}
    for column, value, field in (("r.from_id", from_, "from"), ("r.to_id", to, "to")):
        if value is not None:
            found = entity_id(ns_id, limits.name(value, field=field))
            if found is None:
                return empty
            key = column[2:]
            clauses.append(f"{column} = :{key}")
            params[key] = found
    if relation_type is not None:
        found = type_id(ns_id, RELATION, limits.name(relation_type, field="relationType"))
        if found is None:
            return empty
        clauses.append("r.type_id = :type")
        params["type"] = found
    rows = relations_at(
        " AND ".join(clauses),
        {**params, "limit": page_size + 1, "skip": skip},
        CURRENT,
        tail="ORDER BY r.id LIMIT :limit OFFSET :skip",
    )
    has_more = len(rows) > page_size
    return {
        "relations": relation_dicts(rows[:page_size]),
        "hasMore": has_more,
        "nextOffset": skip + page_size if has_more else None,
    }


# --- neighbourhood and paths ---------------------------------------------------------------------


class DegreeResult(TypedDict):
    name: str
    direction: str
    degree: int
    inDegree: int
    outDegree: int


def _degree_result(name: str, way: Direction, in_deg: int, out_deg: int) -> DegreeResult:
    value = {Direction.IN: in_deg, Direction.OUT: out_deg, Direction.BOTH: in_deg + out_deg}[way]
    return {"name": name, "direction": way.value, "degree": value, "inDegree": in_deg, "outDegree": out_deg}


def degree(*, namespace: str, name: str, direction: str | None = None) -> DegreeResult:
    """Number of relations at an entity: `out`, `in`, or `both` (default), from materialized counters."""
    way = Direction.parse(direction)
    name = limits.name(name)
    row = (
        db()
        .execute(
            f"SELECT in_deg, out_deg FROM graph_entity WHERE namespace_id = {namespaces.id_sql('?')} AND name = ?",
            (namespaces.validate(namespace), name),
        )
        .fetchone()
    )
    if row is None:
        raise EntityNotFound(name)
    return _degree_result(name, way, *row)


class DescribeResult(TypedDict):
    entity: EntityDict
    degree: DegreeResult
    outgoing: list[RelationDict]
    incoming: list[RelationDict]
    neighbors: list[str]
    hasMoreRelations: bool


def describe_entity(*, namespace: str, name: str, limit: int | None = None) -> DescribeResult:
    """An entity, its degree, and (up to `limit` each) its outgoing and incoming relations and
    neighbour names: everything an agent needs to decide where to go next."""
    page_size = _page_limit(limit, DEFAULT_RELATIONS_LIMIT)
    described = load_described_entity(namespaces.validate(namespace), limits.name(name))
    if described is None:
        raise EntityNotFound(name)
    entity_key, in_deg, out_deg, entity = described
    outgoing, incoming = relations_both_ways(entity_key, page_size + 1)
    out_rel = relation_dicts(outgoing[:page_size])
    in_rel = relation_dicts(incoming[:page_size])
    neighbours = dict.fromkeys([r["to"] for r in out_rel] + [r["from"] for r in in_rel])
    return {
        "entity": entity,
        "degree": _degree_result(name, Direction.BOTH, in_deg, out_deg),
        "outgoing": out_rel,
        "incoming": in_rel,
        "neighbors": list(neighbours),
        "hasMoreRelations": len(outgoing) > page_size or len(incoming) > page_size,
    }


class Neighbourhood(TypedDict):
    entities: list[EntityDict]
    relations: list[RelationDict]
    distances: dict[str, int]
    truncated: bool


def get_neighbors(
    *,
    namespace: str,
    name: str,
    direction: str | None = None,
    relation_type: str | None = None,
    depth: int | None = None,
    as_of: str | None = None,
    include_expired: bool | None = None,
) -> Neighbourhood:
    """Entities reachable from `name` within `depth` hops (default 1) following relations in
    `direction` (out, in, or both), optionally only of `relation_type`; the centre is excluded.
    `distances` maps each neighbour to its hop count; `relations` are the edges walked: those
    that hold now, or at `as_of` (ISO 8601), or all of them with `include_expired`."""
    way = Direction.parse(direction)
    moment = when(as_of, include_expired)
    hops = limits.integer(depth, field="depth", default=1, minimum=0, limit_name="MAX_NEIGHBOR_DEPTH")
    ns_id, (centre,) = require_entities(namespace, [limits.name(name)])
    type_filter: int | None = None
    if relation_type is not None:
        type_filter = type_id(ns_id, RELATION, limits.name(relation_type, field="relationType"))
        if type_filter is None:
            return {"entities": [], "relations": [], "distances": {}, "truncated": False}
    distance, walked, truncated = bfs(
        centre, direction=way, max_depth=hops, relation_type=type_filter, max_nodes=MAX_NEIGHBOURHOOD, moment=moment
    )
    ids = [node for node in distance if node != centre]
    entities = load_entities(ids, moment)
    by_id = dict(zip(ids, (e["name"] for e in entities), strict=False))
    relations = relations_by_id(walked, moment)
    return {
        "entities": entities,
        "relations": [relations[r] for r in walked if r in relations],
        "distances": {by_id[node]: distance[node] for node in ids if node in by_id},
        "truncated": truncated,
    }


def extract_subgraph(*, namespace: str, names: list[str], depth: int | None = None) -> GraphPage:
    """The entities within `depth` hops (default 1, either direction) of any of `names`, and
    every relation among them. Missing seed names are skipped."""
    requested = limits.names(names, field="names")
    hops = limits.integer(depth, field="depth", default=1, minimum=0, limit_name="MAX_NEIGHBOR_DEPTH")
    ns_id = namespaces.lookup(namespace)
    if ns_id is None:
        return {"entities": [], "relations": [], "hasMore": False}
    ids = entity_ids(ns_id, requested)
    collected: dict[int, None] = dict.fromkeys(ids[n] for n in requested if n in ids)
    frontier = list(collected)
    truncated = False
    for _ in range(hops):
        if not frontier or truncated:
            break
        next_frontier = []
        for _node, neighbour, _relation in steps(frontier, Direction.BOTH):
            if neighbour not in collected:
                if len(collected) >= MAX_NEIGHBOURHOOD:
                    truncated = True
                    break
                collected[neighbour] = None
                next_frontier.append(neighbour)
        frontier = next_frontier
    members = list(collected)
    return {"entities": load_entities(members), "relations": relations_within(members), "hasMore": truncated}


class PathResult(TypedDict):
    found: bool
    path: list[str]
    relations: list[RelationDict]
    length: int | None


def _names_for(ids: list[int]) -> list[str]:
    rows = dict(db().execute(f"SELECT id, name FROM graph_entity WHERE id {in_json()}", (as_json(ids),)))
    return [rows[i] for i in ids]


def find_path(
    *,
    namespace: str,
    from_: str,
    to: str,
    direction: str | None = None,
    max_depth: int | None = None,
    as_of: str | None = None,
    include_expired: bool | None = None,
) -> PathResult:
    """One shortest path from `from_` to `to` (BFS; `direction` both by default, i.e. relations
    are walked either way). `found` is false when no path exists within `max_depth` hops.

    Walks the relations that hold now, or at `as_of` (ISO 8601), or all with `include_expired`."""
    way = Direction.parse(direction)
    moment = when(as_of, include_expired)
    hops = limits.integer(max_depth, field="maxDepth", default=16, minimum=1, limit_name="MAX_NEIGHBOR_DEPTH")
    _ns_id, (source, target) = require_entities(
        namespace, [limits.name(from_, field="from"), limits.name(to, field="to")]
    )
    found = shortest_path(source, target, direction=way, max_depth=hops, moment=moment)
    if found is None:
        return {"found": False, "path": [], "relations": [], "length": None}
    nodes, relation_ids = found
    relations = relations_by_id(relation_ids, moment)
    return {
        "found": True,
        "path": _names_for(nodes),
        "relations": [relations[r] for r in relation_ids],
        "length": len(relation_ids),
    }


class AllPathsResult(TypedDict):
    paths: list[list[str]]
    relations: list[list[RelationDict]]
    count: int
    truncated: bool


def find_all_paths(
    *,
    namespace: str,
    from_: str,
    to: str,
    max_depth: int | None = None,
    max_paths: int | None = None,
    direction: str | None = None,
) -> AllPathsResult:
    """Simple paths from `from_` to `to` of at most `max_depth` hops (default 6, limit 10),
    shortest first, at most `max_paths` (default 50, limit 100). `truncated` says more may exist."""
    way = Direction.parse(direction)
    hops = limits.integer(max_depth, field="maxDepth", default=6, minimum=1, limit_name="MAX_PATH_DEPTH")
    most = limits.integer(max_paths, field="maxPaths", default=50, minimum=1, limit_name="MAX_PATHS")
    _ns_id, (source, target) = require_entities(
        namespace, [limits.name(from_, field="from"), limits.name(to, field="to")]
    )
    if source == target:
        paths: list[tuple[list[int], list[int]]] = [([source], [])]
        truncated = False
    else:
        paths, truncated = all_simple_paths(source, target, direction=way, max_depth=hops, max_paths=most)
    relations = relations_by_id(sorted({r for _, rels in paths for r in rels}))
    node_ids = sorted({n for nodes, _ in paths for n in nodes})
    names = dict(zip(node_ids, _names_for(node_ids), strict=True))
    return {
        "paths": [[names[n] for n in nodes] for nodes, _ in paths],
        "relations": [[relations[r] for r in rels] for _, rels in paths],
        "count": len(paths),
        "truncated": truncated,
    }


class ExportResult(TypedDict):
    format: str
    content: str


def export_graph(*, namespace: str, format: str | None = None) -> ExportResult:
    """The namespace's whole graph as text: `json` (default), `jsonl` (the official memory
    server's file format), `mermaid` or `dot`."""
    fmt = format or "json"
    return {"format": fmt, "content": "".join(export_chunks(namespaces.lookup(namespace), fmt))}


# The formats `export_stream` writes: the exporters' own, and "official" (the official memory
# server's file and nothing more: no validity, no free memories; graph/exporters.py).
STREAM_FORMATS = (*FORMATS, "official")


def export_stream(*, namespace: str, format: str) -> Iterator[str]:
    """The namespace's graph as text chunks in `format` (one of STREAM_FORMATS), read in batches as
    they are consumed, for a download that does not hold the whole graph in memory. The format is
    checked now; the rows are read later, while the chunks are consumed."""
    if format not in STREAM_FORMATS:
        raise InvalidArgument(f"format must be one of {', '.join(STREAM_FORMATS)} (got {format!r})")
    ns_id = namespaces.lookup(namespace)
    if format == "official":
        return official_chunks(ns_id)
    return export_chunks(ns_id, format)
