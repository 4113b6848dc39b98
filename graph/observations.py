"""Reads of observation rows for the layers above the graph, which own no table of their own.

A free memory is an observation without an entity (DESIGN.md "Data model"), so the memory layer
reads and searches memories here, by namespace ids it was given (the runner in
`access.operations` has checked the grants that produced them). The vectors layer reads the
observations it embeds (`ids_after`, `bodies`). Expired observations (ttl) are never returned,
whatever the purge job has or has not deleted yet; knowledge-graph observations are returned too
unless `free_only` asks for free memories alone. The reads return what is valid now (graph/validity.py)
unless given another `When` (a client's `asOf`, or `includeExpired` for every fact).

Filters (`Test`, `AllOf`, `AnyOf`) describe conditions on an observation's fields without SQL;
they are compiled to SQL here, where the table is known, so the edges that translate a client's
filter language (the MemOS API) hold no SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from django.conf import settings

from access import namespaces
from graph import recent, validity
from graph.fts import build_match, build_match_any, build_tsquery, build_tsquery_any
from graph.sql import as_json, db, narrowed_match, now
from graph.validity import CURRENT, When
from graph.write_sql import POSTGRES, loads
from kernel.errors import InvalidArgument
from kernel.sql import in_json, stored_time

# --- filters --------------------------------------------------------------------------------------

Field = Literal["id", "actor", "tags", "namespace", "created_at", "key"]
Op = Literal["in", "all", "any", "eq", "gt", "gte", "lt", "lte", "prefix"]
_COMPARISONS = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass(frozen=True)
class Test:
    """One condition on an observation:

    - `id` in observation ids (ints);
    - `actor` in actor ids;
    - `tags`: `all` (carries every tag given) or `any` (carries one of them);
    - `namespace` in namespace names;
    - `created_at` `eq`, `gt`, `gte`, `lt` or `lte` one aware datetime;
    - `key` `prefix`: written (its first version, graph/history.py) by a key whose prefix starts
      with the one string given.
    """

    field: Field
    op: Op
    values: tuple[Any, ...]


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Where, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Where, ...]


# True and False are the conditions every and no observation passes.
Where = Test | AllOf | AnyOf | bool


# The conditions every and no row passes.
_TRUE, _FALSE = ("TRUE", "FALSE") if POSTGRES else ("1", "0")
if POSTGRES:
    # Tags are jsonb: containment for all of them, one of the array's texts for any.
    _ALL_TAGS = "o.tags @> CAST(? AS jsonb)"
    _ANY_TAG = (
        "EXISTS (SELECT 1 FROM jsonb_array_elements_text(o.tags) AS tag(value) "
        "WHERE tag.value IN (SELECT value FROM jsonb_array_elements_text(CAST(? AS jsonb))))"
    )
else:
    _ANY_TAG = "EXISTS (SELECT 1 FROM json_each(o.tags) WHERE value IN (SELECT value FROM json_each(?)))"


def _compile(where: Where) -> tuple[str, list[Any]]:
    """`where` as an SQL condition on `graph_observation o`, with its `?` parameters."""
    if isinstance(where, bool):
        return (_TRUE if where else _FALSE), []
    if isinstance(where, AllOf | AnyOf):
        if not where.parts:
            return (_TRUE if isinstance(where, AllOf) else _FALSE), []
        pieces = [_compile(part) for part in where.parts]
        joiner = " AND " if isinstance(where, AllOf) else " OR "
        return joiner.join(f"({text})" for text, _ in pieces), [param for _, params in pieces for param in params]
    values = list(where.values)
    if where.field == "tags":
        if where.op == "all":
            if POSTGRES:
                return (_ALL_TAGS, [as_json(values)]) if values else (_TRUE, [])
            return " AND ".join(
                "EXISTS (SELECT 1 FROM json_each(o.tags) WHERE value = ?)" for _ in values
            ) or "1", values
        return _ANY_TAG, [as_json(values)]
    if where.field == "created_at":
        moment = values[0]
        if where.op not in _COMPARISONS or not isinstance(moment, datetime):
            raise InvalidArgument(f"created_at is compared with one datetime, not {where.op} {values!r}")
        return f"o.created_at {_COMPARISONS[where.op]} ?", [stored_time(moment)]
    if where.field == "key":
        prefix = values[0]
        if where.op != "prefix" or not isinstance(prefix, str):
            raise InvalidArgument(f"key is matched by one prefix, not {where.op} {values!r}")
        # One look-up in the unique (kind, object_id, version) index per row tested.
        return (
            "EXISTS (SELECT 1 FROM graph_version v WHERE v.kind = 'observation' AND v.object_id = o.id "
            "AND v.version = 1 AND substr(v.key_prefix, 1, ?) = ?)"
        ), [len(prefix), prefix]
    if where.field == "id":
        return f"o.id {in_json()}", [as_json(values)]
    if where.field == "actor":
        return f"o.actor_id {in_json('?', 'text')}", [as_json(values)]
    # namespace: names that do not exist (or cannot) match nothing.
    return f"o.namespace_id {in_json()}", [as_json(_namespace_ids(values))]


def _namespace_ids(names: Iterable[Any]) -> list[int]:
    found = []
    for name in names:
        try:
            ns_id = namespaces.lookup(str(name))
        except InvalidArgument:
            continue
        if ns_id is not None:
            found.append(ns_id)
    return found


# --- scope ----------------------------------------------------------------------------------------


def scope_sql(ns_ids: Sequence[int], actors: Mapping[int, str]) -> tuple[str, list[Any]]:
    """An SQL condition (on alias o): in these namespaces, and in those of `actors` ({namespace id:
    actor}) only that actor's observations. (graph.services deletes free memories within one.)"""
    if not actors:
        return f"o.namespace_id {in_json()}", [as_json(ns_ids)]
    by_actor: dict[str, list[int]] = {}
    for ns_id in ns_ids:
        if ns_id in actors:
            by_actor.setdefault(actors[ns_id], []).append(ns_id)
    anyone = [ns_id for ns_id in ns_ids if ns_id not in actors]
    parts: list[str] = []
    params: list[Any] = []
    if anyone:
        parts.append(f"o.namespace_id {in_json()}")
        params.append(as_json(anyone))
    for actor, ids in by_actor.items():
        parts.append(f"(o.namespace_id {in_json()} AND o.actor_id = ?)")
        params += [as_json(ids), actor]
    return f"({' OR '.join(parts)})", params


def _live(
    ns_ids: Sequence[int], actors: Mapping[int, str], free_only: bool, moment: When = CURRENT
) -> tuple[str, list[Any]]:
    """Conditions (on alias o, each after AND) shared by the reads: scope, not expired, kind,
    valid at the time `moment` looks at."""
    scope, params = scope_sql(ns_ids, actors)
    sql = f" AND {scope} AND (o.expires_at IS NULL OR o.expires_at > ?)"
    params.append(now())
    if free_only:
        sql += " AND o.entity_id IS NULL"
    valid, valid_params = validity.condition("o", moment)
    if valid != validity.ALWAYS:
        sql += f" AND {valid}"
        params += valid_params
    return sql, params


# --- rows -----------------------------------------------------------------------------------------


class ObservationRow(NamedTuple):
    id: int
    body: str
    namespace_id: int
    tags: list[str]
    created_at: str | datetime
    expires_at: str | datetime | None
    actor_id: str
    # The entity of a knowledge-graph observation; None for a free memory.
    entity_name: str | None
    # How often the text was written (repeats are folded into it, graph/dedupe.py) and when last.
    mention_count: int = 1
    last_seen_at: str | datetime | None = None
    # Validity (graph/validity.py): from (None: from created_at), to (None: still valid).
    valid_from: str | None = None
    valid_to: str | None = None
    # Lineage: the observation it superseded, the source message it was extracted from, by which model.
    supersedes_id: int | None = None
    source_id: int | None = None
    extracted_by: str = ""


_ROW_COLUMNS = (
    "SELECT o.id, o.body, o.namespace_id, o.tags, o.created_at, o.expires_at, o.actor_id, e.name, "
    "o.mention_count, o.last_seen_at, o.valid_from, o.valid_to, o.supersedes_id, o.source_id, o.extracted_by "
    "FROM graph_observation o LEFT JOIN graph_entity e ON e.id = o.entity_id "
)


def _row(values: Sequence[Any]) -> ObservationRow:
    owner, body, ns_id, tags, created, expires, actor, entity, mentions, seen, start, end, before, source, model = (
        values
    )
    return ObservationRow(
        owner,
        body,
        ns_id,
        loads(tags) if tags else [],
        created,
        expires,
        actor,
        entity,
        mentions,
        seen,
        start,
        end,
        before,
        source,
        model or "",
    )


def rows(ids: Sequence[int]) -> dict[int, ObservationRow]:
    """The observations with these ids that still exist (expired or not), by id."""
    if not ids:
        return {}
    found = db().execute(f"{_ROW_COLUMNS}WHERE o.id {in_json()}", (as_json(ids),))
    return {row[0]: _row(row) for row in found.fetchall()}


def live_row(observation_id: int, ns_ids: Sequence[int]) -> ObservationRow | None:
    """One observation by id if it lives (not expired) in one of `ns_ids`, else None. Past facts
    (closed, superseded) live too: asked for by id, they are shown with their validity."""
    if not ns_ids:
        return None
    found = (
        db()
        .execute(
            f"{_ROW_COLUMNS}WHERE o.id = ? AND (o.expires_at IS NULL OR o.expires_at > ?) "
            f"AND o.namespace_id {in_json()}",
            (observation_id, now(), as_json(ns_ids)),
        )
        .fetchone()
    )
    return _row(found) if found is not None else None


def free_memories(
    ns_ids: Sequence[int],
    actors: Mapping[int, str],
    *,
    limit: int,
    offset: int = 0,
    where: Where | None = None,
    moment: When = CURRENT,
) -> tuple[list[ObservationRow], dict[int, int]]:
    """The live free memories of the scope valid at the time `moment` looks at (newest first,
    `limit` from `offset`), and how many match in each namespace ({namespace id: count},
    namespaces with none left out)."""
    conditions, params = _live(ns_ids, actors, free_only=True, moment=moment)
    if where is not None:
        extra, extra_params = _compile(where)
        conditions += f" AND ({extra})"
        params += extra_params
    conn = db()
    totals = dict(
        conn.execute(
            f"SELECT o.namespace_id, count(*) FROM graph_observation o WHERE {_TRUE}{conditions} GROUP BY o.namespace_id",
            params,
        ).fetchall()
    )
    found = conn.execute(
        # Ids grow with time: newest first is id order, which the namespace index already gives.
        f"{_ROW_COLUMNS}WHERE {_TRUE}{conditions} ORDER BY o.id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).fetchall()
    return [_row(row) for row in found], totals


def bodies(ids: Sequence[int]) -> dict[int, str]:
    """{id: body} of the observations with these ids that still exist."""
    if not ids:
        return {}
    found = db().execute(f"SELECT id, body FROM graph_observation WHERE id {in_json()}", (as_json(ids),))
    return dict(found.fetchall())


def matching(ids: Sequence[int], where: Where) -> set[int]:
    """Those of `ids` whose observations pass `where` (a vector search's candidates, filtered
    after the index answered)."""
    if not ids:
        return set()
    condition, params = _compile(where)
    found = db().execute(
        f"SELECT o.id FROM graph_observation o WHERE o.id {in_json()} AND ({condition})",
        (as_json(ids), *params),
    )
    return {row[0] for row in found}


# --- what a vector search may return --------------------------------------------------------------


def expired_ids(ns_id: int) -> set[int]:
    """Ids of the namespace's observations whose TTL has passed (not yet purged)."""
    found = db().execute(
        # `+namespace_id` keeps SQLite on the small partial index of expiring rows.
        "SELECT id FROM graph_observation WHERE expires_at IS NOT NULL AND expires_at <= ? AND +namespace_id = ?",
        (now(), ns_id),
    )
    return {row[0] for row in found}


def ids_in(ns_id: int, *, actor_id: str | None = None, free_only: bool = False) -> set[int]:
    """Ids of the namespace's observations (expired ones included): only `actor_id`'s when given,
    only free memories with `free_only`."""
    sql = "SELECT id FROM graph_observation WHERE namespace_id = ?"
    params: list[Any] = [ns_id]
    if actor_id is not None:
        sql += " AND actor_id = ?"
        params.append(actor_id)
    if free_only:
        sql += " AND entity_id IS NULL"
    return {row[0] for row in db().execute(sql, params)}


# --- keyword search -------------------------------------------------------------------------------


# The observations matching a full-text query (one `?`), then `conditions`: FTS5's obs_fts on
# SQLite, the observations' own search_vector on PostgreSQL (graph/fts.py writes both queries).
if POSTGRES:
    _MATCHING = "FROM graph_observation o WHERE o.search_vector @@ to_tsquery('simple', ?){conditions}"
    _build_match, _build_match_any = build_tsquery, build_tsquery_any
    _NEWEST = "o.id"
else:
    _MATCHING = "FROM obs_fts JOIN graph_observation o ON o.id = obs_fts.rowid WHERE obs_fts MATCH ?{conditions}"
    _build_match, _build_match_any = build_match, build_match_any
    _NEWEST = "obs_fts.rowid"


def keyword_candidates(
    ns_ids: Sequence[int],
    actors: Mapping[int, str],
    *,
    identifiers: Sequence[str],
    words: Sequence[str],
    k: int,
    free_only: bool = False,
    moment: When = CURRENT,
    where: Where | None = None,
) -> dict[int, tuple[str, float]]:
    """{observation id: (body, strength)} of up to 2k live observations of the scope valid at the
    time `moment` looks at, best first:
    the texts holding every one of `identifiers` (exact evidence, strength 1, newest first), then
    the best bm25 matches of any of `words` (strength = bm25 relative to the best match, in (0, 1]).

    bm25 is computed for the newest MEMORYHUB_SEARCH_RANK_WINDOW matches only (as search_nodes
    does): SQLite ranks every match before cutting, so a common word's cost would grow with the
    namespace (bench/RESULTS.md, "search_nodes: the rank window"). Identifiers are looked up on their own so a rare one is never crowded out of that
    window by common words. `where` narrows the candidates further (tested inside the window)."""
    conditions, params = _live(ns_ids, actors, free_only, moment)
    if where is not None:
        extra, extra_params = _compile(where)
        conditions += f" AND ({extra})"
        params += extra_params
    source = _MATCHING.format(conditions=conditions)
    conn = db()
    found: dict[int, tuple[str, float]] = {}
    if identifiers:
        exact = _build_match(" ".join(f'"{term}"' for term in identifiers))
        if exact is not None:
            matched = conn.execute(f"SELECT o.id, o.body {source} ORDER BY {_NEWEST} DESC LIMIT ?", (exact, *params, k))
            found.update((owner, (body, 1.0)) for owner, body in matched)
    match = _build_match_any(list(words))
    if match is not None:
        # The window is cut to the best k in SQL (ties newest first), so k rows come back to
        # Python rather than the whole window (graph/sql.py says why rows cost more than SQL).
        window = settings.MEMORYHUB_SEARCH_RANK_WINDOW
        if POSTGRES:
            # ts_rank (normalised by length, as bm25 favours short texts) negated: best lowest, as bm25.
            # Scored after the window is cut, from the vectors the scan read (a plan that sorts
            # would otherwise rank every match), and planned for this query's words
            # (graph/selectors.py `_ranked_matches_postgres` says why).
            # Common words are searched in the newest id buckets first (graph/recent.py).
            window_sql, window_params = recent.newest_first(
                f"SELECT o.id AS id, o.body AS body, o.search_vector AS vector {source}",
                (match, *params),
                table="graph_observation",
                alias="o",
                window=window,
                buckets=recent.newest_buckets(match, window, "graph_observation"),
            )
            best_k = conn.execute(
                f"WITH recent AS MATERIALIZED ({window_sql}) SELECT id, body, "
                "-ts_rank(vector, to_tsquery('simple', ?), 1) AS score FROM recent ORDER BY score, id DESC LIMIT ?",
                (*window_params, match, k),
                prepare=False,
            ).fetchall()
        else:
            best_k = conn.execute(
                f"WITH recent AS MATERIALIZED (SELECT o.id AS id, o.body AS body, obs_fts.rank AS score {source} "
                "ORDER BY obs_fts.rowid DESC LIMIT ?) SELECT id, body, score FROM recent ORDER BY score, id DESC LIMIT ?",
                (narrowed_match("obs_fts", match), *params, window, k),
            ).fetchall()
        best = best_k[0][2] if best_k else 0.0
        for owner, body, bm25 in best_k:
            # bm25 ranks are negative, best lowest; a ratio to the best keeps the order in (0, 1].
            found.setdefault(owner, (body, bm25 / best if best < 0 else 1.0))
    return found


def free_memories_keyed(ns_id: int, wanted: Sequence[tuple[str, str]]) -> list[tuple[int, str, str, str]]:
    """(id, body, actor id, key) of the live, current free memories of one namespace whose (actor,
    dedupe key) is one of `wanted`, newest first: the dedupe judge's candidates (memory/dedupe.py),
    one indexed look-up for a whole write. A past fact (closed, superseded) is not one: a text
    that says it again is a new fact, not a repeat."""
    if not wanted:
        return []
    valid, valid_params = validity.condition("o", CURRENT)
    # The partial index's own condition spelled out, so SQLite uses it (an IN on the key alone
    # does not tell it the key is not NULL), and the actor matched after: a key is rarely shared.
    rows = db().execute(
        "SELECT o.id, o.body, o.actor_id, o.dedupe_key FROM graph_observation o "
        "WHERE o.namespace_id = ? AND o.entity_id IS NULL AND o.dedupe_key IS NOT NULL "
        f"AND o.dedupe_key {in_json('?', 'text')} AND (o.expires_at IS NULL OR o.expires_at > ?) "
        f"AND {valid} ORDER BY o.id DESC",
        (ns_id, json.dumps(sorted({key for _, key in wanted})), now(), *valid_params),
    )
    pairs = set(wanted)
    return [(owner, body, actor, key) for owner, body, actor, key in rows if (actor, key) in pairs]


def unkeyed_free_memories(ns_id: int, *, limit: int) -> list[tuple[int, str, str]]:
    """(id, body, actor id) of up to `limit` free memories of the namespace with no dedupe key."""
    found = db().execute(
        "SELECT id, body, actor_id FROM graph_observation WHERE namespace_id = ? AND entity_id IS NULL "
        "AND dedupe_key IS NULL ORDER BY id DESC LIMIT ?",
        (ns_id, limit),
    )
    return [(owner, body, actor) for owner, body, actor in found]


# --- what the embedder reads ----------------------------------------------------------------------


def ids_after(last_id: int, *, limit: int, namespace_id: int | None = None) -> list[tuple[int, int]]:
    """(id, namespace id) of up to `limit` observations with ids above `last_id`, in id order (of
    one namespace, when given): a walk over every observation, one page at a time."""
    sql = "SELECT id, namespace_id FROM graph_observation WHERE id > ?"
    params: list[Any] = [last_id]
    if namespace_id is not None:
        sql += " AND namespace_id = ?"
        params.append(namespace_id)
    return [(owner, ns_id) for owner, ns_id in db().execute(f"{sql} ORDER BY id LIMIT ?", (*params, limit))]


def count(namespace_id: int) -> int:
    """How many observations (knowledge-graph ones and free memories) the namespace holds."""
    return int(
        db().execute("SELECT count(*) FROM graph_observation WHERE namespace_id = ?", (namespace_id,)).fetchone()[0]
    )
