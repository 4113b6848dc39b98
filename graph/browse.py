"""Bounded reads for looking at a graph in the browser (the console's graph view and entity pages).

A namespace may hold 100,000 entities: nothing here reads a whole namespace or draws it. A drawing
is a few hundred nodes at most (`Drawing`: light nodes, names and counts, no observations, and
the relations among them); an entity's facts come a page at a time, each with who wrote it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, TypedDict

from access import namespaces
from graph import limits
from graph.exceptions import EntityNotFound
from graph.reads import relations_within
from graph.sql import as_json, db, entity_ids, in_json, now, require_entity, stored, type_id
from graph.traversal import Direction, bfs
from graph.types import RelationDict
from graph.validity import CURRENT, condition, marks
from kernel.sql import iso

ENTITY = "entity"
RELATION = "relation"
# A sample: the most connected entities, at most MAX_SAMPLE.
DEFAULT_SAMPLE = 60
MAX_SAMPLE = 150
# A neighbourhood drawing: at most MAX_DRAWING entities (then `truncated`).
DEFAULT_DRAWING = 150
MAX_DRAWING = 400
# A relation-type sample ranks the ends of at most this many relations of the type.
RELATION_TYPE_SCAN = 5000
# An entity's facts, a page at a time.
DEFAULT_FACTS = 50
MAX_FACTS = 500


class Node(TypedDict):
    name: str
    entityType: str
    observationCount: int
    degree: int


class Drawing(TypedDict):
    nodes: list[Node]
    relations: list[RelationDict]
    # More entities were in reach than the drawing holds.
    truncated: bool


_EMPTY: Drawing = {"nodes": [], "relations": [], "truncated": False}


def _nodes(ids: list[int]) -> list[Node]:
    """Light nodes (no observations, counters only) of these entity ids, in their order."""
    if not ids:
        return []
    rows = db().execute(
        "SELECT e.id, e.name, t.name, e.obs_count, e.in_deg + e.out_deg FROM graph_entity e "
        f"JOIN graph_typedict t ON t.id = e.type_id WHERE e.id {in_json()}",
        (as_json(ids),),
    )
    found = {row[0]: row for row in rows}
    return [
        {"name": row[1], "entityType": row[2], "observationCount": row[3], "degree": row[4]}
        for row in (found[ident] for ident in ids if ident in found)
    ]


def _count(value: Any, *, default: int, maximum: int) -> int:
    return min(limits.integer(value, field="limit", default=default, minimum=1), maximum)


def _drawing(ids: list[int], relation_type: int | None, truncated: bool) -> Drawing:
    relations = relations_within(ids) if ids else []
    if relation_type is not None:
        wanted = db().execute("SELECT name FROM graph_typedict WHERE id = ?", (relation_type,)).fetchone()[0]
        relations = [relation for relation in relations if relation["relationType"] == wanted]
    return {"nodes": _nodes(ids), "relations": relations, "truncated": truncated}


def _type_ids(ns_id: int, entity_type: str | None, relation_type: str | None) -> tuple[int | None, int | None, bool]:
    """(entity type id, relation type id, whether a type was named that the namespace lacks)."""
    entity_key = relation_key = None
    if entity_type is not None:
        entity_key = type_id(ns_id, ENTITY, limits.name(entity_type, field="entityType"))
        if entity_key is None:
            return None, None, True
    if relation_type is not None:
        relation_key = type_id(ns_id, RELATION, limits.name(relation_type, field="relationType"))
        if relation_key is None:
            return None, None, True
    return entity_key, relation_key, False


def graph_sample(
    *,
    namespace: str,
    limit: int | None = None,
    entity_type: str | None = None,
    relation_type: str | None = None,
) -> Drawing:
    """The `limit` (default 60, at most 150) most connected entities (relations in and out, then
    observations) and the relations that hold now among them: a way into a graph too big to draw.

    `entity_type` keeps entities of that type; `relation_type` ranks the ends of current relations
    of that type instead (of the first 5,000) and keeps only relations of that type. `truncated`
    says the namespace holds more entities than the sample."""
    size = _count(limit, default=DEFAULT_SAMPLE, maximum=MAX_SAMPLE)
    ns_id = namespaces.lookup(namespace)
    if ns_id is None:
        return _EMPTY
    entity_key, relation_key, unknown = _type_ids(ns_id, entity_type, relation_type)
    if unknown:
        return _EMPTY
    conn = db()
    if relation_key is None:
        # One pass over the namespace's rows (counters, no joins) with a top-N sort: ~20 ms at
        # 100,000 entities (bench/console.py).
        sql = "SELECT id FROM graph_entity WHERE namespace_id = ?"
        params: list[Any] = [ns_id]
        if entity_key is not None:
            sql += " AND type_id = ?"
            params.append(entity_key)
        sql += " ORDER BY in_deg + out_deg DESC, obs_count DESC, id LIMIT ?"
        ids = [row[0] for row in conn.execute(sql, [*params, size + 1])]
    else:
        valid, valid_params = condition("r", CURRENT)
        ends: Counter[int] = Counter()
        for from_id, to_id in conn.execute(
            f"SELECT r.from_id, r.to_id FROM graph_relation r WHERE r.type_id = ? AND {valid} ORDER BY r.id LIMIT ?",
            (relation_key, *valid_params, RELATION_TYPE_SCAN),
        ):
            ends.update((from_id, to_id))
        ranked = [ident for ident, _ in sorted(ends.items(), key=lambda item: (-item[1], item[0]))]
        if entity_key is not None and ranked:
            typed = {
                row[0]
                for row in conn.execute(
                    f"SELECT id FROM graph_entity WHERE id {in_json()} AND type_id = ?",
                    (as_json(ranked), entity_key),
                )
            }
            ranked = [ident for ident in ranked if ident in typed]
        ids = ranked[: size + 1]
    truncated = len(ids) > size
    return _drawing(ids[:size], relation_key, truncated)


def graph_neighbourhood(
    *,
    namespace: str,
    names: list[str],
    depth: int | None = None,
    entity_type: str | None = None,
    relation_type: str | None = None,
    limit: int | None = None,
) -> Drawing:
    """The entities within `depth` hops (1 or 2, default 1; either direction; relations that hold
    now, only of `relation_type` if given) of the entities `names`, at most `limit` (default 150,
    at most 400) of them with the seeds first, and every current relation among them.

    `entity_type` keeps neighbours of that type (the seeds stay). `truncated` says more were in
    reach. EntityNotFound when none of `names` exists."""
    requested = limits.names(names, field="names")
    hops = min(limits.integer(depth, field="depth", default=1, minimum=1), 2)
    size = _count(limit, default=DEFAULT_DRAWING, maximum=MAX_DRAWING)
    ns_id = namespaces.lookup(namespace)
    seeds = entity_ids(ns_id, requested) if ns_id is not None else {}
    if ns_id is None or not seeds:
        raise EntityNotFound(requested[0] if requested else "")
    entity_key, relation_key, unknown = _type_ids(ns_id, entity_type, relation_type)
    order = [seeds[name] for name in requested if name in seeds]
    if unknown:
        return _drawing(order[:size], None, False)
    reached: dict[int, None] = dict.fromkeys(order)
    truncated = False
    for seed in order:
        distance, _walked, cut = bfs(
            seed, direction=Direction.BOTH, max_depth=hops, relation_type=relation_key, max_nodes=size
        )
        truncated = truncated or cut
        reached.update(dict.fromkeys(sorted(distance, key=lambda node: (distance[node], node))))
    ids = list(reached)
    if entity_key is not None:
        typed = {
            row[0]
            for row in db().execute(
                f"SELECT id FROM graph_entity WHERE id {in_json()} AND type_id = ?",
                (as_json(ids), entity_key),
            )
        }
        ids = [ident for ident in ids if ident in typed or ident in seeds.values()]
    if len(ids) > size:
        ids, truncated = ids[:size], True
    return _drawing(ids, relation_key, truncated)


# --- an entity's page ------------------------------------------------------------------------------


class EntitySummary(TypedDict):
    id: str
    name: str
    entityType: str
    createdAt: str | None
    updatedAt: str | None
    observationCount: int
    inDegree: int
    outDegree: int


class AuthoredObservation(TypedDict):
    id: str
    text: str
    createdAt: str | None
    validFrom: str | None
    validTo: str | None
    current: bool
    expiresAt: str | None
    supersedes: str | None
    supersededBy: str | None
    # Who wrote it: the actor the observation names, and the key and surface of its first version.
    actorId: str
    key: str
    surface: str
    userId: int | None


class DatedRelation(TypedDict):
    id: str
    other: str
    relationType: str
    createdAt: str | None
    validFrom: str | None
    validTo: str | None
    current: bool


class EntityFacts(TypedDict):
    entity: EntitySummary
    observations: list[AuthoredObservation]
    nextObservationOffset: int | None
    outgoing: list[DatedRelation]
    incoming: list[DatedRelation]
    nextRelationOffset: int | None


def _stamp(value: Any) -> str | None:
    return iso(str(value)) if value else None


def entity_facts(
    *,
    namespace: str,
    name: str,
    limit: int | None = None,
    observation_offset: int | None = None,
    relation_offset: int | None = None,
) -> EntityFacts:
    """An entity with a page (`limit`, default 50, at most 500; newest first) of its observations,
    current and past (not those past their retention), each with its dates, its lineage and who
    wrote it (actor, key, surface), and a page of its outgoing and of its incoming relations,
    current and past, with their validity. `next...Offset` continues a list (None: no more).
    EntityNotFound when the namespace holds no entity called `name`."""
    size = _count(limit, default=DEFAULT_FACTS, maximum=MAX_FACTS)
    skip_observations = limits.integer(observation_offset, field="observationOffset", default=0, minimum=0)
    skip_relations = limits.integer(relation_offset, field="relationOffset", default=0, minimum=0)
    name = limits.name(name)
    ns_id = namespaces.lookup(namespace)
    ident = require_entity(ns_id, name)
    conn = db()
    at = now()
    row = conn.execute(
        "SELECT e.name, t.name, e.created_at, e.updated_at, e.obs_count, e.in_deg, e.out_deg FROM graph_entity e "
        "JOIN graph_typedict t ON t.id = e.type_id WHERE e.id = ?",
        (ident,),
    ).fetchone()
    entity: EntitySummary = {
        "id": f"ent_{ident}",
        "name": row[0],
        "entityType": row[1],
        "createdAt": _stamp(row[2]),
        "updatedAt": _stamp(row[3]),
        "observationCount": row[4],
        "inDegree": row[5],
        "outDegree": row[6],
    }
    # The first version of each observation says which key and surface wrote it (unique index
    # version_unique_number: one look-up per row).
    found = conn.execute(
        f"SELECT o.id, o.body, {stored('o.created_at')}, {stored('o.valid_from')}, {stored('o.valid_to')}, "
        "o.expires_at, o.supersedes_id, "
        "(SELECT s.id FROM graph_observation s WHERE s.supersedes_id = o.id), o.actor_id, "
        "v.key_prefix, v.surface, v.user_id FROM graph_observation o "
        "LEFT JOIN graph_version v ON v.kind = 'observation' AND v.object_id = o.id AND v.version = 1 "
        "WHERE o.entity_id = ? AND (o.expires_at IS NULL OR o.expires_at > ?) ORDER BY o.id DESC LIMIT ? OFFSET ?",
        (ident, at, size + 1, skip_observations),
    ).fetchall()
    observations: list[AuthoredObservation] = []
    for oid, body, created, valid_from, valid_to, expires, before, after, actor, prefix, surface, user in found[:size]:
        held = marks(valid_from, valid_to, created, at=at)
        observations.append(
            {
                "id": f"mem_{oid}",
                "text": body,
                "createdAt": _stamp(created),
                "validFrom": held["validFrom"],
                "validTo": held["validTo"],
                "current": held["current"],
                "expiresAt": _stamp(expires),
                "supersedes": f"mem_{before}" if before is not None else None,
                "supersededBy": f"mem_{after}" if after is not None else None,
                "actorId": actor or "",
                "key": f"key:{prefix}" if prefix else "",
                "surface": surface or "",
                "userId": user,
            }
        )
    sides: dict[str, list[DatedRelation]] = {}
    more_relations = False
    for side, end, other in (("outgoing", "r.from_id", "r.to_id"), ("incoming", "r.to_id", "r.from_id")):
        rows = conn.execute(
            f"SELECT r.id, e.name, t.name, {stored('r.created_at')}, {stored('r.valid_from')}, {stored('r.valid_to')} "
            "FROM graph_relation r "
            f"JOIN graph_entity e ON e.id = {other} JOIN graph_typedict t ON t.id = r.type_id "
            f"WHERE {end} = ? ORDER BY r.id DESC LIMIT ? OFFSET ?",
            (ident, size + 1, skip_relations),
        ).fetchall()
        more_relations = more_relations or len(rows) > size
        sides[side] = []
        for rid, other_name, type_name, created, valid_from, valid_to in rows[:size]:
            held = marks(valid_from, valid_to, created, at=at)
            sides[side].append(
                {
                    "id": f"rel_{rid}",
                    "other": other_name,
                    "relationType": type_name,
                    "createdAt": _stamp(created),
                    "validFrom": held["validFrom"],
                    "validTo": held["validTo"],
                    "current": held["current"],
                }
            )
    return {
        "entity": entity,
        "observations": observations,
        "nextObservationOffset": skip_observations + size if len(found) > size else None,
        "outgoing": sides["outgoing"],
        "incoming": sides["incoming"],
        "nextRelationOffset": skip_relations + size if more_relations else None,
    }
