"""Reads of entity rows by id, for the vector tools (vectors/selectors.py), which rank entities by
their vectors and their observations' vectors and then need the graph's side of them: names and
types, keyword evidence, degrees. The callers hold ids from one namespace they were allowed to
read (the runner checked the grant); these functions read by id.

Evidence is what holds now: closed observations (graph/validity.py) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from graph.fts import build_match_any, build_tsquery_any
from graph.sql import as_json, db
from graph.validity import CURRENT, condition
from kernel.sql import POSTGRES, in_json

# PostgreSQL 15 names every subquery in FROM.
_FIRST_ALIAS = " AS numbered" if POSTGRES else ""

# Observations of an entity read as its keyword evidence (the first ones, oldest first).
TEXT_OBSERVATIONS = 50


def of_observations(observation_ids: Sequence[int]) -> dict[int, int]:
    """{observation id: entity id} of those observations that belong to an entity."""
    found = db().execute(
        f"SELECT id, entity_id FROM graph_observation WHERE entity_id IS NOT NULL AND id {in_json()}",
        (as_json(observation_ids),),
    )
    return dict(found.fetchall())


def described(entity_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """{entity id: (name, type)} of the entities that still exist."""
    found = db().execute(
        "SELECT e.id, e.name, t.name FROM graph_entity e JOIN graph_typedict t ON t.id = e.type_id "
        f"WHERE e.id {in_json()}",
        (as_json(entity_ids),),
    )
    return {ident: (name, kind) for ident, name, kind in found}


def observation_ids(entity_id: int, *, limit: int = 1000) -> list[int]:
    """Ids of (up to `limit` of) the entity's current observations."""
    valid, params = condition("graph_observation", CURRENT)
    found = db().execute(
        f"SELECT id FROM graph_observation WHERE entity_id = ? AND {valid} LIMIT ?", (entity_id, *params, limit)
    )
    return [row[0] for row in found]


def keyword_matches(ns_id: int, words: Sequence[str], *, k: int, per_entity: int) -> set[int]:
    """Ids of the namespace's entities whose name (best k by bm25) or one of whose observations
    (best k * per_entity) matches any of `words`."""
    match = (build_tsquery_any if POSTGRES else build_match_any)(list(words))
    if match is None:
        return set()
    conn = db()
    valid, params = condition("o", CURRENT)
    if POSTGRES:
        # ts_rank (normalised by length, as bm25 favours short texts), best first.
        by_name = conn.execute(
            "SELECT e.id FROM graph_entity e WHERE e.search_vector @@ to_tsquery('simple', ?1) AND e.namespace_id = ?2 "
            "ORDER BY ts_rank(e.search_vector, to_tsquery('simple', ?1), 1) DESC LIMIT ?3",
            (match, ns_id, k),
        )
        by_observation = conn.execute(
            "SELECT o.entity_id FROM graph_observation o WHERE o.search_vector @@ to_tsquery('simple', ?) "
            f"AND o.namespace_id = ? AND o.entity_id IS NOT NULL AND {valid} "
            "ORDER BY ts_rank(o.search_vector, to_tsquery('simple', ?), 1) DESC LIMIT ?",
            (match, ns_id, *params, match, k * per_entity),
        )
        return {row[0] for row in by_name} | {row[0] for row in by_observation}
    by_name = conn.execute(
        "SELECT e.id FROM name_fts JOIN graph_entity e ON e.id = name_fts.rowid "
        "WHERE name_fts MATCH ? AND e.namespace_id = ? ORDER BY bm25(name_fts) LIMIT ?",
        (match, ns_id, k),
    )
    by_observation = conn.execute(
        "SELECT o.entity_id FROM obs_fts JOIN graph_observation o ON o.id = obs_fts.rowid "
        f"WHERE obs_fts MATCH ? AND o.namespace_id = ? AND o.entity_id IS NOT NULL AND {valid} "
        "ORDER BY bm25(obs_fts) LIMIT ?",
        (match, ns_id, *params, k * per_entity),
    )
    return {row[0] for row in by_name} | {row[0] for row in by_observation}


def texts(entity_ids: Sequence[int]) -> dict[int, str]:
    """Name, type and (up to TEXT_OBSERVATIONS) observations of each entity, one per line: what
    keyword evidence is read from."""
    found: dict[int, list[str]] = {}
    for ident, name, kind in db().execute(
        "SELECT e.id, e.name, t.name FROM graph_entity e JOIN graph_typedict t ON t.id = e.type_id "
        f"WHERE e.id {in_json()}",
        (as_json(entity_ids),),
    ):
        found[ident] = [name, kind]
    valid, params = condition("graph_observation", CURRENT)
    for ident, body in db().execute(
        "SELECT entity_id, body FROM (SELECT entity_id, body, row_number() OVER (PARTITION BY entity_id "
        f"ORDER BY id) AS n FROM graph_observation WHERE entity_id {in_json()} AND {valid}){_FIRST_ALIAS} "
        "WHERE n <= ?",
        (as_json(entity_ids), *params, TEXT_OBSERVATIONS),
    ):
        found.setdefault(ident, []).append(body)
    return {ident: "\n".join(parts) for ident, parts in found.items()}


def degrees(entity_ids: Sequence[int]) -> dict[int, int]:
    """{entity id: in-degree + out-degree} (live counters kept by triggers)."""
    found = db().execute(
        f"SELECT id, in_deg + out_deg FROM graph_entity WHERE id {in_json()}",
        (as_json(entity_ids),),
    )
    return dict(found.fetchall())


def count_and_top_degree(ns_id: int) -> tuple[int, int]:
    """How many entities the namespace holds, and the highest degree among them (0 when none)."""
    entities, top = (
        db()
        .execute(
            "SELECT count(*), coalesce(max(in_deg + out_deg), 0) FROM graph_entity WHERE namespace_id = ?", (ns_id,)
        )
        .fetchone()
    )
    return int(entities), int(top)
