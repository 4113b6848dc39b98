"""Writes to the knowledge graph.

Every function is keyword-only, scoped to one namespace, validates all of its input before it
writes, and runs in one transaction (BEGIN IMMEDIATE): a call is applied whole or not at all,
and a batch costs one transaction, not one per item. Counters, type counts and FTS rows are
maintained by SQL triggers (graph/migrations/0002), so these functions only write base rows.
Batches are inserted as one `INSERT ... SELECT ... FROM json_each(?)` statement, not executemany:
FTS5 work done in a row trigger is ~10x cheaper when all rows belong to one statement.

Semantics follow the official MCP memory server, except where it is broken: duplicates inside
one call are stored once, and relations to missing entities are not stored but reported back
under `skipped` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from django.conf import settings
from django.db import transaction

from access import changes, namespaces
from graph import dedupe as dedupe_rules
from graph import history, limits, validity
from graph.dedupe import note_mentions
from graph.exceptions import (
    Conflict,
    EntityAlreadyExists,
    EntityNotFound,
    InvalidArgument,
    NotFound,
    RetentionPassed,
)
from graph.fts import index_text
from graph.models import Observation
from graph.observations import scope_sql
from graph.reads import load_entity, relations_by_id
from graph.signals import observations_written
from graph.sql import as_json, db, ensure_types, entity_id, entity_ids, now, require_entity, type_id
from graph.types import (
    AddedObservations,
    EntityDict,
    ObservationAddition,
    ObservationDeletion,
    RelationDict,
    SkippedEntity,
    SkippedRelation,
)
from graph.write_sql import POSTGRES, loads, state_time, typed
from kernel.sql import in_json, iso, json_rows

ENTITY = "entity"
RELATION = "relation"
RELATION_EXISTS = "this relation already exists"


# --- input validation ---------------------------------------------------------------------------


def _entity_inputs(entities: Any, field: str = "entities") -> list[EntityDict]:
    result: list[EntityDict] = []
    for index, raw in enumerate(limits.items(entities, field=field)):
        item = limits.mapping(raw, field=f"{field}[{index}]")
        observations = item.get("observations", [])
        checked = [
            limits.observation(body, field=f"{field}[{index}].observations[{j}]")
            for j, body in enumerate(limits.items(observations, field=f"{field}[{index}].observations"))
        ]
        result.append(
            {
                "name": limits.name(item.get("name"), field=f"{field}[{index}].name"),
                "entityType": limits.name(item.get("entityType"), field=f"{field}[{index}].entityType"),
                "observations": list(dict.fromkeys(checked)),  # stored once, first position kept
            }
        )
    return result


def _relation_inputs(relations: Any) -> list[RelationDict]:
    result: list[RelationDict] = []
    for index, raw in enumerate(limits.items(relations, field="relations")):
        item = limits.mapping(raw, field=f"relations[{index}]")
        result.append(
            {
                "from": limits.name(item.get("from"), field=f"relations[{index}].from"),
                "to": limits.name(item.get("to"), field=f"relations[{index}].to"),
                "relationType": limits.name(item.get("relationType"), field=f"relations[{index}].relationType"),
            }
        )
    return result


def _text_list(values: Any, *, field: str) -> list[str]:
    return [
        limits.observation(value, field=f"{field}[{i}]") for i, value in enumerate(limits.items(values, field=field))
    ]


def _texts_per_entity(items: Any, *, field: str, texts_key: str) -> list[tuple[str, list[str]]]:
    """[{entityName, <texts_key>: [...]}] -> [(name, texts)], validated."""
    result = []
    for index, raw in enumerate(limits.items(items, field=field)):
        item = limits.mapping(raw, field=f"{field}[{index}]")
        result.append(
            (
                limits.name(item.get("entityName"), field=f"{field}[{index}].entityName"),
                _text_list(item.get(texts_key, []), field=f"{field}[{index}].{texts_key}"),
            )
        )
    return result


# --- shared write steps -------------------------------------------------------------------------


_INSERT_ENTITIES = (
    "INSERT INTO graph_entity(namespace_id, name, search_name, type_id, obs_count, out_deg, in_deg, "
    f"created_at, updated_at) SELECT ?1, value ->> 0, value ->> 1, {typed('value ->> 2', 'bigint')}, 0, 0, 0, ?2, ?2 "
    f"FROM {json_rows('?3')}"
)
if POSTGRES:
    # Writers run at once on PostgreSQL: a name another call created since this one looked is
    # left to it (the unique index waits for that call to end), and said so (`taken`).
    _INSERT_ENTITIES += " ON CONFLICT (namespace_id, name) DO NOTHING RETURNING name"


def _insert_entities(ns_id: int, entities: list[EntityDict], stamp: str) -> tuple[dict[str, int], set[str]]:
    """Insert the entities (and their observations); returns their ids, and the names of those
    another writer created meanwhile, which were left as that writer made them (PostgreSQL only:
    on SQLite the write lock rules it out)."""
    types = ensure_types(ns_id, ENTITY, (e["entityType"] for e in entities))
    inserted = db().execute(
        _INSERT_ENTITIES,
        (ns_id, stamp, as_json([e["name"], index_text(e["name"]), types[e["entityType"]]] for e in entities)),
    )
    taken: set[str] = set()
    if POSTGRES:
        taken = {e["name"] for e in entities} - {row[0] for row in inserted.fetchall()}
    ids = entity_ids(ns_id, (e["name"] for e in entities if e["name"] not in taken))
    history.snapshot_ids(history.ENTITY, "create", list(ids.values()), side="after", at=stamp)
    _insert_observations(
        ns_id, [(ids[e["name"]], body) for e in entities if e["name"] in ids for body in e["observations"]], stamp
    )
    return ids, taken


def lock_entities(ids: Any) -> None:
    """On PostgreSQL, hold the entities' rows until the transaction ends, so that a writer that
    reads what an entity holds before it writes (its observations, its current relation of a
    functional type) does not race another doing the same: the second waits, then reads what
    the first wrote. In id order, so that two writers never wait for each other. Nothing on
    SQLite, whose transactions take the one write lock at BEGIN IMMEDIATE."""
    if POSTGRES:
        wanted = sorted(set(ids))
        if wanted:
            db().execute(
                f"SELECT id FROM graph_entity WHERE id {in_json()} ORDER BY id FOR UPDATE", (as_json(wanted),)
            ).fetchall()


def _insert_observations(ns_id: int, rows: list[tuple[int, str]], stamp: str) -> None:
    if rows:
        written = (
            db()
            .execute(
                "INSERT INTO graph_observation(namespace_id, entity_id, body, search_text, actor_id, tags, "
                f"created_at, expires_at) SELECT ?1, {typed('value ->> 0', 'bigint')}, value ->> 1, value ->> 2, "
                f"'', '[]', ?2, NULL FROM {json_rows('?3')} RETURNING id, body",
                (ns_id, stamp, as_json([entity, body, index_text(body)] for entity, body in rows)),
            )
            .fetchall()
        )
        history.snapshot_ids(history.OBSERVATION, "create", [row[0] for row in written], side="after", at=stamp)
        observations_written.send(sender=Observation, namespace_id=ns_id, observations=written)


def _existing_observations(ids: list[int]) -> dict[int, dict[str, int]]:
    """{entity id: {text: observation id}} of the entities' current observations (a closed one
    may be said again: "lives in Paris" after "lives in Berlin" after "lives in Paris")."""
    found: dict[int, dict[str, int]] = {i: {} for i in ids}
    for entity, ident, body in db().execute(
        f"SELECT entity_id, id, body FROM graph_observation WHERE entity_id {in_json()} AND valid_to IS NULL",
        (as_json(ids),),
    ):
        found[entity][body] = ident
    return found


def _existing_bodies(ids: list[int]) -> dict[int, set[str]]:
    """{entity id: texts of its current observations}."""
    bodies: dict[int, set[str]] = {i: set() for i in ids}
    for entity, body in db().execute(
        f"SELECT entity_id, body FROM graph_observation WHERE entity_id {in_json()} AND valid_to IS NULL",
        (as_json(ids),),
    ):
        bodies[entity].add(body)
    return bodies


def _touch(ids: list[int], stamp: str) -> None:
    if ids:
        db().execute(
            f"UPDATE graph_entity SET updated_at = ? WHERE id {in_json()}",
            (stamp, as_json(ids)),
        )


# --- the operations -----------------------------------------------------------------------------


class CreateEntitiesResult(TypedDict):
    entities: list[EntityDict]
    skipped: list[SkippedEntity]


def create_entities(*, namespace: str, entities: list[EntityDict]) -> CreateEntitiesResult:
    """Create entities whose names are new. Existing entities are left untouched (not merged)
    and reported under `skipped`, as are repeats of a name within this call."""
    requested = _entity_inputs(entities)
    with transaction.atomic():
        ns_id = namespaces.ensure(namespace)
        existing = entity_ids(ns_id, (e["name"] for e in requested))
        created: list[EntityDict] = []
        skipped: list[SkippedEntity] = []
        seen: set[str] = set()
        for entity in requested:
            if entity["name"] in existing:
                skipped.append({"name": entity["name"], "reason": "an entity with this name already exists"})
            elif entity["name"] in seen:
                skipped.append({"name": entity["name"], "reason": "duplicate of an earlier entity in this request"})
            else:
                seen.add(entity["name"])
                created.append(entity)
        if created:
            _, taken = _insert_entities(ns_id, created, now())
            if taken:
                skipped += [{"name": name, "reason": "an entity with this name already exists"} for name in taken]
                created = [entity for entity in created if entity["name"] not in taken]
    return {"entities": created, "skipped": skipped}


class CreateRelationsResult(TypedDict):
    relations: list[RelationDict]
    skipped: list[SkippedRelation]
    # Current relations a relation of a functional type replaced (only there when some were).
    closed: NotRequired[list[RelationDict]]


REPLACED_IN_CALL = "replaced by a later relation of this functional type from the same entity in this request"


def create_relations(*, namespace: str, relations: list[RelationDict]) -> CreateRelationsResult:
    """Create relations between existing entities. Relations that already exist, repeat an
    earlier one in this call, or name a missing entity are not stored and come back in `skipped`.

    A relation of a functional type (declare_relation_type) replaces its source's current
    relation of that type: the old one is closed (kept for asOf reads) and listed in `closed`."""
    requested = _relation_inputs(relations)
    with transaction.atomic():
        ns_id = namespaces.ensure(namespace)
        conn = db()
        ids = entity_ids(ns_id, {name for r in requested for name in (r["from"], r["to"])})
        to_store: list[RelationDict] = []
        skipped: list[SkippedRelation] = []
        seen: set[tuple[str, str, str]] = set()
        for relation in requested:
            key = (relation["from"], relation["to"], relation["relationType"])
            missing = [name for name in (relation["from"], relation["to"]) if name not in ids]
            if missing:
                reason = " and ".join(f"entity {name!r} does not exist" for name in dict.fromkeys(missing))
                skipped.append({"relation": relation, "reason": reason})
            elif key in seen:
                skipped.append({"relation": relation, "reason": "duplicate of an earlier relation in this request"})
            else:
                seen.add(key)
                to_store.append(relation)
        types = ensure_types(ns_id, RELATION, (r["relationType"] for r in to_store)) if to_store else {}
        functional = _functional_types(ns_id, types.values())
        # A functional type's new relation closes its source's current one: one writer at a time per source.
        lock_entities(ids[r["from"]] for r in to_store if types[r["relationType"]] in functional)
        # Of several relations of one functional type from one entity in a call, the last one wins.
        last: dict[tuple[int, int], int] = {}
        for index, relation in enumerate(to_store):
            if types[relation["relationType"]] in functional:
                last[(ids[relation["from"]], types[relation["relationType"]])] = index
        created: list[RelationDict] = []
        rows = []
        replacing: list[tuple[int, int, int]] = []
        for index, relation in enumerate(to_store):
            triple = (ids[relation["from"]], ids[relation["to"]], types[relation["relationType"]])
            if triple[2] in functional and last[(triple[0], triple[2])] != index:
                skipped.append({"relation": relation, "reason": REPLACED_IN_CALL})
                continue
            if conn.execute(
                "SELECT 1 FROM graph_relation WHERE from_id = ? AND to_id = ? AND type_id = ? AND valid_to IS NULL",
                triple,
            ).fetchone():
                skipped.append({"relation": relation, "reason": RELATION_EXISTS})
                continue
            created.append(relation)
            rows.append(triple)
            if triple[2] in functional:
                replacing.append(triple)
        closed: list[RelationDict] = []
        if rows:
            stamp = now()
            if replacing:
                closed = _close_replaced(replacing, stamp)
            inserted = conn.execute(_INSERT_RELATIONS, (ns_id, stamp, as_json(rows))).fetchall()
            if POSTGRES and len(inserted) < len(rows):
                # Another writer created some of them meanwhile: they already exist.
                new = {tuple(row[1:]) for row in inserted}
                for relation, triple in zip(list(created), list(rows), strict=True):
                    if triple not in new:
                        created.remove(relation)
                        skipped.append({"relation": relation, "reason": RELATION_EXISTS})
            history.snapshot_ids(history.RELATION, "create", [row[0] for row in inserted], side="after", at=stamp)
    result: CreateRelationsResult = {"relations": created, "skipped": skipped}
    if closed:
        result["closed"] = closed
    return result


_INSERT_RELATIONS = (
    "INSERT INTO graph_relation(namespace_id, from_id, to_id, type_id, created_at) "
    f"SELECT ?1, {', '.join(typed(f'value ->> {n}', 'bigint') for n in range(3))}, ?2 FROM {json_rows('?3')} "
)
if POSTGRES:
    # Writers run at once on PostgreSQL: an edge another call created since this one looked is
    # not created twice (the unique index relation_current_edge waits for that call to end).
    _INSERT_RELATIONS += "ON CONFLICT DO NOTHING RETURNING id, from_id, to_id, type_id"
else:
    _INSERT_RELATIONS += "RETURNING id"


def _functional_types(ns_id: int, type_ids: Any) -> set[int]:
    wanted = list(type_ids)
    if not wanted:
        return set()
    found = db().execute(
        f"SELECT id FROM graph_typedict WHERE namespace_id = ? AND functional AND id {in_json()}",
        (ns_id, as_json(wanted)),
    )
    return {row[0] for row in found}


def _close_replaced(replacing: list[tuple[int, int, int]], stamp: str) -> list[RelationDict]:
    """Close, at `stamp`, the current relations each new (from, to, functional type) replaces:
    the source's other current relations of that type. Returns them, marked closed."""
    ids = [
        row[0]
        for row in db().execute(
            f"SELECT g.id FROM {json_rows()} t JOIN graph_relation g ON g.from_id = {typed('t.value ->> 0', 'bigint')} "
            f"AND g.type_id = {typed('t.value ->> 2', 'bigint')} AND g.to_id != {typed('t.value ->> 1', 'bigint')} "
            "AND g.valid_to IS NULL",
            (as_json(replacing),),
        )
    ]
    closed = validity.close(validity.RELATIONS, ids, at=stamp)
    found = relations_by_id(closed, validity.When(None, True))
    return [found[i] for i in sorted(found)]


class AddObservationsResult(TypedDict):
    results: list[AddedObservations]


def add_observations(
    *, namespace: str, observations: list[ObservationAddition], dedupe: bool = True
) -> AddObservationsResult:
    """Append observations to existing entities; contents already present are skipped, and so
    (unless `dedupe` is off, for the call or the namespace) are texts that repeat one of the
    entity's observations in other words (graph/dedupe.py): the observation repeated is mentioned
    instead.

    All or nothing: if any entity is missing the call raises EntityNotFound ("Entity with name X
    not found") and nothing is written."""
    requested = _texts_per_entity(observations, field="observations", texts_key="contents")
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        ids = entity_ids(ns_id, (name for name, _ in requested)) if ns_id is not None else {}
        for name, _ in requested:
            if name not in ids:
                raise EntityNotFound(name)
        assert ns_id is not None or not requested
        if ns_id is None:
            return {"results": [{"entityName": name, "addedObservations": []} for name, _ in requested]}
        lock_entities(ids.values())
        new, mentions = _new_observations(ns_id, [(ids[name], contents) for name, contents in requested], dedupe)
        results: list[AddedObservations] = [
            {"entityName": name, "addedObservations": added} for (name, _), added in zip(requested, new, strict=True)
        ]
        rows = [(ids[name], body) for (name, _), added in zip(requested, new, strict=True) for body in added]
        stamp = now()
        if rows:
            _insert_observations(ns_id, rows, stamp)
            _touch(sorted({entity for entity, _ in rows}), stamp)
        note_mentions(ns_id, mentions)
    return {"results": results}


def _new_observations(
    ns_id: int, wanted: list[tuple[int, list[str]]], dedupe: bool
) -> tuple[list[list[str]], dict[int, int]]:
    """For [(entity id, texts)]: the texts to store per item (not already the entity's, not
    repeated earlier in the call, and with dedupe on, not a repeat in other words), and
    {observation id: times mentioned again}."""
    check = dedupe_rules.enabled(ns_id, dedupe)
    current = _existing_observations(sorted({entity for entity, _ in wanted}))
    taken: dict[int, set[str]] = {entity: set(bodies) for entity, bodies in current.items()}
    mentions: dict[int, int] = {}
    result: list[list[str]] = []
    for entity, texts in wanted:
        fresh = []
        for body in texts:
            if body in taken[entity]:
                if check and body in current[entity]:
                    ident = current[entity][body]
                    mentions[ident] = mentions.get(ident, 0) + 1
                continue
            taken[entity].add(body)
            fresh.append(body)
        if check and fresh and current[entity]:
            repeats = dedupe_rules.find_repeats(ns_id, fresh, [(i, b) for b, i in current[entity].items()])
            for ident in repeats.values():
                mentions[ident] = mentions.get(ident, 0) + 1
            fresh = [body for index, body in enumerate(fresh) if index not in repeats]
        result.append(fresh)
    return result, mentions


class DeleteResult(TypedDict):
    success: bool
    message: str
    deleted: int


def _delete_entity_rows(ids: list[int]) -> None:
    conn = db()
    ids_json = as_json(ids)
    # The history keeps what goes (one snapshot per table, taken in SQL before the rows go).
    params = {"ids": ids_json}
    history.snapshot(
        history.RELATION,
        "delete",
        f"r.id IN (SELECT id FROM graph_relation WHERE from_id {in_json(':ids')} "
        f"UNION SELECT id FROM graph_relation WHERE to_id {in_json(':ids')})",
        params,
        side="before",
    )
    history.snapshot(
        history.OBSERVATION,
        "delete",
        f"o.entity_id {in_json(':ids')}",
        params,
        side="before",
    )
    history.snapshot(history.ENTITY, "delete", history.ids_where(history.ENTITY), params, side="before")
    # Relations and observations first: the triggers then keep the other ends' degrees right.
    conn.execute(f"DELETE FROM graph_relation WHERE from_id {in_json()}", (ids_json,))
    conn.execute(f"DELETE FROM graph_relation WHERE to_id {in_json()}", (ids_json,))
    conn.execute(f"DELETE FROM graph_observation WHERE entity_id {in_json()}", (ids_json,))
    conn.execute(f"DELETE FROM graph_entity WHERE id {in_json()}", (ids_json,))


def delete_entities(*, namespace: str, entity_names: list[str]) -> DeleteResult:
    """Delete entities with their observations and every relation at either end. Missing names
    are ignored (like the official server)."""
    names = limits.names(entity_names, field="entityNames")
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        ids = list(entity_ids(ns_id, names).values()) if ns_id is not None else []
        if ids:
            _delete_entity_rows(ids)
    return {"success": True, "message": "Entities deleted successfully", "deleted": len(ids)}


def delete_observations(*, namespace: str, deletions: list[ObservationDeletion]) -> DeleteResult:
    """Delete the given observation texts from entities. Missing entities or texts are ignored."""
    requested = _texts_per_entity(deletions, field="deletions", texts_key="observations")
    deleted = 0
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        ids = entity_ids(ns_id, (name for name, _ in requested)) if ns_id is not None else {}
        conn = db()
        touched = []
        for name, bodies in requested:
            if name not in ids or not bodies:
                continue
            history.snapshot(
                history.OBSERVATION,
                "delete",
                f"o.entity_id = :entity AND o.body {in_json(':bodies', 'text')}",
                {"entity": ids[name], "bodies": as_json(bodies)},
                side="before",
            )
            cursor = conn.execute(
                f"DELETE FROM graph_observation WHERE entity_id = ? AND body {in_json('?', 'text')}",
                (ids[name], as_json(bodies)),
            )
            if cursor.rowcount:
                deleted += cursor.rowcount
                touched.append(ids[name])
        _touch(touched, now())
    return {"success": True, "message": "Observations deleted successfully", "deleted": deleted}


def delete_relations(*, namespace: str, relations: list[RelationDict]) -> DeleteResult:
    """Delete exact (from, to, relationType) relations. Missing ones are ignored."""
    requested = _relation_inputs(relations)
    deleted = 0
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        if ns_id is not None:
            ids = entity_ids(ns_id, {name for r in requested for name in (r["from"], r["to"])})
            triples = []
            for relation in requested:
                rel_type = type_id(ns_id, RELATION, relation["relationType"])
                if rel_type is None or relation["from"] not in ids or relation["to"] not in ids:
                    continue
                triples.append((ids[relation["from"]], ids[relation["to"]], rel_type))
            if triples:
                # One snapshot and one delete for the whole list (each relation once).
                where = _TRIPLES
                params = {"triples": as_json(dict.fromkeys(triples))}
                history.snapshot(history.RELATION, "delete", where.format(a="r."), params, side="before")
                deleted = db().execute(f"DELETE FROM graph_relation WHERE {where.format(a='')}", params).rowcount
    return {"success": True, "message": "Relations deleted successfully", "deleted": deleted}


# The relations (any validity) that are one of the (from, to, type) triples in `:triples`; `{a}`
# is the alias of the table the condition is on.
_TRIPLES = (
    f"{{a}}id IN (SELECT g.id FROM {json_rows(':triples')} t JOIN graph_relation g "
    f"ON g.from_id = {typed('t.value ->> 0', 'bigint')} AND g.to_id = {typed('t.value ->> 1', 'bigint')} "
    f"AND g.type_id = {typed('t.value ->> 2', 'bigint')})"
)


class UpdatedEntity(TypedDict):
    name: str
    addedObservations: list[str]


class UpsertEntitiesResult(TypedDict):
    created: list[EntityDict]
    updated: list[UpdatedEntity]


def upsert_entities(*, namespace: str, entities: list[EntityDict], dedupe: bool = True) -> UpsertEntitiesResult:
    """Create missing entities; for existing ones append the observations they lack (with dedupe
    on, also leaving out repeats in other words, as add_observations does).

    An existing entity's type is kept (the type is set on creation only; rename or merge to
    restructure). Repeats of a name within the call are folded into its first occurrence."""
    requested = _entity_inputs(entities)
    merged: dict[str, EntityDict] = {}
    for entity in requested:
        if entity["name"] in merged:
            first = merged[entity["name"]]
            first["observations"] = list(dict.fromkeys([*first["observations"], *entity["observations"]]))
        else:
            merged[entity["name"]] = entity
    with transaction.atomic():
        ns_id = namespaces.ensure(namespace)
        existing = entity_ids(ns_id, merged)
        lock_entities(existing.values())
        stamp = now()
        to_create = [e for name, e in merged.items() if name not in existing]
        if to_create:
            _, taken = _insert_entities(ns_id, to_create, stamp)
            if taken:
                # Created by another writer meanwhile: updated like the others.
                to_create = [e for e in to_create if e["name"] not in taken]
                found = entity_ids(ns_id, taken)
                lock_entities(found.values())
                existing.update(found)
        new, mentions = _new_observations(
            ns_id, [(entity, merged[name]["observations"]) for name, entity in existing.items()], dedupe
        )
        updated: list[UpdatedEntity] = []
        rows: list[tuple[int, str]] = []
        for (name, entity_id_), added in zip(existing.items(), new, strict=True):
            rows.extend((entity_id_, body) for body in added)
            updated.append({"name": name, "addedObservations": added})
        _insert_observations(ns_id, rows, stamp)
        _touch(sorted({entity for entity, _ in rows}), stamp)
        note_mentions(ns_id, mentions)
    order = {name: i for i, name in enumerate(merged)}
    updated.sort(key=lambda item: order[item["name"]])
    return {"created": to_create, "updated": updated}


class MergeEntitiesResult(TypedDict):
    entity: EntityDict
    movedObservations: int
    droppedDuplicateObservations: int
    movedRelations: int
    droppedRelations: int


def merge_entities(*, namespace: str, source: str, target: str) -> MergeEntitiesResult:
    """Fold `source` into `target`: move its observations (dropping texts the target already
    has) and re-point its relations (dropping ones that would duplicate a target relation or
    become self-loops), then delete `source`."""
    source = limits.name(source, field="source")
    target = limits.name(target, field="target")
    if source == target:
        raise InvalidArgument("source and target must be different entities")
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        source_id = require_entity(ns_id, source)
        target_id = require_entity(ns_id, target)
        assert ns_id is not None
        lock_entities([source_id, target_id])
        target_ns = ns_id
        conn = db()
        target_bodies = _existing_bodies([target_id])[target_id]
        moved_obs: list[int] = []
        dropped_obs: list[int] = []
        for obs_id, body, closed in conn.execute(
            "SELECT id, body, valid_to IS NOT NULL FROM graph_observation WHERE entity_id = ? ORDER BY id", (source_id,)
        ).fetchall():
            # A closed observation is the source's past: it moves, even if the target holds its text now.
            if closed:
                moved_obs.append(obs_id)
            elif body in target_bodies:
                dropped_obs.append(obs_id)
            else:
                target_bodies.add(body)
                moved_obs.append(obs_id)
        # The history: dropped observations go (merged into the target's same text), moved ones
        # change entity; both keep the other entity in `other_entity_id`.
        history.snapshot_ids(history.OBSERVATION, "merge", dropped_obs, side="before", other=target_id)
        conn.execute(f"DELETE FROM graph_observation WHERE id {in_json()}", (as_json(dropped_obs),))
        moved_before = history.states(history.OBSERVATION, moved_obs)
        conn.execute(
            f"UPDATE graph_observation SET entity_id = ? WHERE id {in_json()}",
            (target_id, as_json(moved_obs)),
        )
        history.snapshot_ids(
            history.OBSERVATION, "merge", moved_obs, side="after", befores=moved_before, other=source_id
        )

        moved_rel = dropped_rel = 0
        relations = conn.execute(
            "SELECT id, from_id, to_id, type_id, valid_to IS NOT NULL FROM graph_relation "
            "WHERE from_id = ?1 OR to_id = ?1 ORDER BY id",
            (source_id,),
        ).fetchall()
        relations_before = history.states(history.RELATION, [row[0] for row in relations])
        moved_rel_ids: list[int] = []
        dropped_rel_items: list[history.Item] = []
        for rel_id, from_id, to_id, rel_type, closed in relations:
            new_from = target_id if from_id == source_id else from_id
            new_to = target_id if to_id == source_id else to_id
            # Only a current edge can duplicate a current one (one current edge per triple, the
            # partial index relation_current_edge); closed edges may repeat.
            duplicate = (
                not closed
                and conn.execute(
                    "SELECT 1 FROM graph_relation WHERE from_id = ? AND to_id = ? AND type_id = ? AND valid_to IS NULL",
                    (new_from, new_to, rel_type),
                ).fetchone()
            )
            if new_from == new_to or duplicate:
                conn.execute("DELETE FROM graph_relation WHERE id = ?", (rel_id,))
                dropped_rel += 1
                dropped_rel_items.append(
                    {
                        "object_id": rel_id,
                        "namespace_id": target_ns,
                        "entity_id": from_id,
                        "other_entity_id": to_id,
                        "before": relations_before[rel_id],
                        "after": None,
                    }
                )
            else:
                conn.execute(
                    "UPDATE graph_relation SET from_id = ?, to_id = ? WHERE id = ?", (new_from, new_to, rel_id)
                )
                moved_rel += 1
                moved_rel_ids.append(rel_id)
        history.record(history.RELATION, "merge", dropped_rel_items)
        history.snapshot_ids(history.RELATION, "merge", moved_rel_ids, side="after", befores=relations_before)
        history.snapshot_ids(history.ENTITY, "merge", [source_id], side="before", other=target_id)
        conn.execute("DELETE FROM graph_entity WHERE id = ?", (source_id,))
        _touch([target_id], now())
        merged = load_entity(target_id)
    assert merged is not None
    return {
        "entity": merged,
        "movedObservations": len(moved_obs),
        "droppedDuplicateObservations": len(dropped_obs),
        "movedRelations": moved_rel,
        "droppedRelations": dropped_rel,
    }


def rename_entity(*, namespace: str, name: str, new_name: str) -> EntityDict:
    """Rename an entity, keeping its observations and relations (they reference its id)."""
    name = limits.name(name, field="name")
    new_name = limits.name(new_name, field="newName")
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        entity = require_entity(ns_id, name)
        if new_name != name:
            assert ns_id is not None
            if entity_id(ns_id, new_name) is not None:
                raise EntityAlreadyExists(new_name)
            before = history.states(history.ENTITY, [entity])
            db().execute(
                "UPDATE graph_entity SET name = ?, search_name = ?, updated_at = ? WHERE id = ?",
                (new_name, index_text(new_name), now(), entity),
            )
            history.snapshot_ids(history.ENTITY, "rename", [entity], side="after", befores=before)
        renamed = load_entity(entity)
    assert renamed is not None
    return renamed


class SupersededObservation(TypedDict):
    entityName: str
    old: str
    new: str
    id: str  # the successor, mem_<n>
    supersedes: str  # the observation it replaced
    validFrom: str | None


def supersede_observation(*, namespace: str, entity_name: str, old: str, new: str) -> SupersededObservation:
    """Replace one of an entity's current observations with a new text: the old one is closed
    (kept, readable with asOf) and its successor created, valid from the same instant and linked
    both ways (supersedes / supersededBy), in one transaction.

    NotFound when the entity has no observation with the text `old`; Conflict, naming the
    current successor, when that observation was already superseded."""
    entity_name = limits.name(entity_name, field="entityName")
    old = limits.text(old, field="old", limit_name="MAX_OBSERVATION_BYTES")
    new = limits.text(new, field="new", limit_name="MAX_OBSERVATION_BYTES")
    if new == old:
        raise InvalidArgument("new must differ from old")
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        entity = require_entity(ns_id, entity_name)
        assert ns_id is not None
        lock_entities([entity])
        # The current one with that text, else the newest closed one (whose supersession then
        # fails with a Conflict naming its successor).
        row = (
            db()
            .execute(
                "SELECT id FROM graph_observation WHERE entity_id = ? AND body = ? "
                "ORDER BY valid_to IS NULL DESC, id DESC LIMIT 1",
                (entity, old),
            )
            .fetchone()
        )
        if row is None:
            raise NotFound(f"entity {entity_name!r} has no observation {old!r}")
        twin = _same_text(entity, new, row[0])
        if twin is not None:
            raise Conflict(
                f"entity {entity_name!r} already has the observation {new!r} "
                f"({history.wire_id(history.OBSERVATION, twin)}): delete or supersede {old!r} instead"
            )
        done = validity.supersede(row[0], new, namespace_ids=[ns_id], entity_id=entity)
        _touch([entity], done.at)
    return {
        "entityName": entity_name,
        "old": old,
        "new": new,
        "id": history.wire_id(history.OBSERVATION, done.id),
        "supersedes": history.wire_id(history.OBSERVATION, done.supersedes),
        "validFrom": iso(done.at),
    }


class DeclaredRelationType(TypedDict):
    relationType: str
    functional: bool
    # The relations closed by closeOlder (empty otherwise).
    closed: list[RelationDict]


# At most this many conflicting relations are listed in the error of declare_relation_type.
MAX_LISTED_CONFLICTS = 20


def declare_relation_type(
    *, namespace: str, relation_type: str, functional: bool, close_older: bool | None = None
) -> DeclaredRelationType:
    """Declare whether a relation type of this namespace is functional: one current relation of
    it per source entity (works_at, lives_in, reports_to). Afterwards, creating a relation of a
    functional type closes the source's other current relation of that type.

    Declaring it functional is refused (InvalidArgument listing them) while some entity has
    several current relations of that type, unless `close_older`: then the newest one per entity
    is kept and the others are closed. `functional: false` turns it off."""
    name = limits.name(relation_type, field="relationType")
    if not isinstance(functional, bool):
        raise InvalidArgument("functional must be true or false", field="functional")
    if close_older is not None and not isinstance(close_older, bool):
        raise InvalidArgument("closeOlder must be true or false", field="closeOlder")
    with transaction.atomic():
        ns_id = namespaces.ensure(namespace)
        type_ = ensure_types(ns_id, RELATION, [name])[name]
        closed: list[RelationDict] = []
        if functional:
            # Current relations of the type from entities that have several, newest first per entity.
            rows = (
                db()
                .execute(
                    "SELECT id, from_id FROM graph_relation WHERE type_id = ?1 AND valid_to IS NULL AND from_id IN "
                    "(SELECT from_id FROM graph_relation WHERE type_id = ?1 AND valid_to IS NULL "
                    "GROUP BY from_id HAVING count(*) > 1) "
                    "ORDER BY from_id, coalesce(valid_from, created_at) DESC, id DESC",
                    (type_,),
                )
                .fetchall()
            )
            if rows and not close_older:
                listed = relations_by_id([row[0] for row in rows[:MAX_LISTED_CONFLICTS]])
                described = "; ".join(
                    f"{r['from']} -{r['relationType']}-> {r['to']}" for r in (listed[i] for i in sorted(listed))
                )
                more = f" and {len(rows) - MAX_LISTED_CONFLICTS} more" if len(rows) > MAX_LISTED_CONFLICTS else ""
                raise InvalidArgument(
                    f"{name!r} cannot be functional: some entities have several current {name!r} relations "
                    f"({described}{more}). Delete the wrong ones, or pass closeOlder: true to keep the newest "
                    "per entity and close the others.",
                    field="relationType",
                )
            kept: set[int] = set()
            older = []
            for ident, source in rows:
                if source in kept:
                    older.append(ident)
                else:
                    kept.add(source)
            if older:
                ids = validity.close(validity.RELATIONS, older)
                found = relations_by_id(ids, validity.When(None, True))
                closed = [found[i] for i in sorted(found)]
        db().execute("UPDATE graph_typedict SET functional = ? WHERE id = ?", (functional, type_))
    return {"relationType": name, "functional": functional, "closed": closed}


class CompactResult(TypedDict):
    success: bool
    message: str
    walCheckpoint: dict[str, int] | None
    freedPages: int


def compact() -> CompactResult:
    """Storage maintenance for the whole database (not one namespace): merge FTS segments,
    refresh planner statistics, return free pages to the OS and truncate the WAL."""
    conn = db()
    if POSTGRES:
        return _compact_postgres()
    freelist_before = conn.execute("PRAGMA freelist_count").fetchone()[0]
    for table in ("name_fts", "obs_fts"):
        conn.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
    conn.execute("PRAGMA optimize")
    checkpoint: dict[str, int] | None = None
    if not conn.in_transaction:
        # Through executescript, which steps the pragma to the end (execute() frees one page), and
        # which would commit an open transaction first: hence only outside one, like the
        # checkpoint, which inside a transaction would only report "busy".
        conn.executescript("PRAGMA incremental_vacuum;")
        busy, log_pages, checkpointed = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        checkpoint = {"busy": busy, "logPages": log_pages, "checkpointedPages": checkpointed}
    freelist_after = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return {
        "success": True,
        "message": "Compaction finished",
        "walCheckpoint": checkpoint,
        "freedPages": max(0, freelist_before - freelist_after),
    }


def _compact_postgres() -> CompactResult:
    """PostgreSQL's side of `compact`: VACUUM (ANALYZE) the graph's tables, which marks dead rows'
    space reusable and refreshes planner statistics (the GIN indexes' pending lists are merged
    too). VACUUM cannot run inside a transaction: within one, only ANALYZE. No WAL checkpoint
    (the server owns its WAL) and no pages handed back (VACUUM FULL would lock the tables)."""
    tables = "graph_entity, graph_observation, graph_relation, graph_typedict, graph_version"
    if transaction.get_connection().in_atomic_block:
        db().execute(f"ANALYZE {tables}")
    else:
        db().execute(f"VACUUM (ANALYZE) {tables}")
    return {"success": True, "message": "Compaction finished", "walCheckpoint": None, "freedPages": 0}


class ImportResult(TypedDict):
    entitiesCreated: int
    observationsAdded: int
    relationsCreated: int
    relationsUnchanged: int
    skipped: list[SkippedRelation]
    # Free memories added (those already held, same text, actor and validFrom, are not).
    memoriesAdded: int


def _nothing_imported() -> ImportResult:
    return {
        "entitiesCreated": 0,
        "observationsAdded": 0,
        "relationsCreated": 0,
        "relationsUnchanged": 0,
        "skipped": [],
        "memoriesAdded": 0,
    }


def import_graph(
    *,
    namespace: str,
    entities: list[EntityDict],
    relations: list[RelationDict],
    memories: Sequence[Mapping[str, Any]] = (),
    progress: Callable[[int], object] | None = None,
) -> ImportResult:
    """Load a whole graph (an official memory file) in one transaction, idempotently.

    Entities are upserted (existing ones gain only the observations they lack), relations are
    created unless present. Importing the same file twice changes nothing the second time.
    Relations to entities the file does not define come back in `skipped`.

    Validity time from a MemoryHub export comes back too: an entity's `observationDetails`
    (closed and superseded observations, their lineage) and a relation's validFrom/validTo; and
    its free memories (`_import_memories`)."""
    batch = limits.limit("MAX_ITEMS_PER_REQUEST")
    result = _nothing_imported()
    # An entity may carry more observations than one request allows: send them in slices.
    pieces: list[EntityDict] = []
    timed_entities: list[tuple[str, list[dict[str, Any]]]] = []
    for entity in entities:
        observations = entity["observations"] or []
        timed = entity.get("observationDetails")
        if timed is not None:
            # The details hold every observation (the current texts too), with their validity.
            timed_entities.append((entity["name"], [dict(detail) for detail in timed]))
            observations = []
        for start in range(0, max(len(observations), 1), batch):
            pieces.append({**entity, "observations": observations[start : start + batch]})
    # An import is recorded as such in the history, whoever runs it (a command has no caller).
    with changes.changing("import_graph", surface="import"), transaction.atomic():
        for start in range(0, len(pieces), batch):
            chunk = pieces[start : start + batch]
            upserted = upsert_entities(namespace=namespace, entities=chunk)
            result["entitiesCreated"] += len(upserted["created"])
            result["observationsAdded"] += sum(len(e["observations"]) for e in upserted["created"])
            result["observationsAdded"] += sum(len(u["addedObservations"]) for u in upserted["updated"])
            if progress:
                progress(len(chunk))
        ns_id = namespaces.lookup(namespace)
        if timed_entities and ns_id is not None:
            ids = entity_ids(ns_id, (name for name, _ in timed_entities))
            for name, details in timed_entities:
                result["observationsAdded"] += _import_observations(ns_id, ids[name], details)
        plain = [r for r in relations if r.get("validFrom") is None and r.get("validTo") is None]
        timed_relations = [r for r in relations if r.get("validFrom") is not None or r.get("validTo") is not None]
        if timed_relations and ns_id is not None:
            created_count, unchanged, skipped_timed = _import_relations(ns_id, timed_relations)
            result["relationsCreated"] += created_count
            result["relationsUnchanged"] += unchanged
            result["skipped"] += skipped_timed
        relations = plain
        for start in range(0, len(relations), batch):
            chunk_relations = relations[start : start + batch]
            created = create_relations(namespace=namespace, relations=chunk_relations)
            result["relationsCreated"] += len(created["relations"])
            for skipped in created["skipped"]:
                if skipped["reason"] == RELATION_EXISTS:
                    result["relationsUnchanged"] += 1
                else:
                    result["skipped"].append(skipped)
            if progress:
                progress(len(chunk_relations))
        if memories:
            result["memoriesAdded"] = _import_memories(namespace, memories)
            if progress:
                progress(len(memories))
    return result


# Records per transaction of `import_file`: an upload of 100k entities imported in one transaction
# would hold SQLite's one write lock for many seconds, longer than other writers wait for it
# (MEMORYHUB_SQLITE_BUSY_TIMEOUT_MS), so agents' writes would fail while a person imports.
IMPORT_FILE_CHUNK = 1000


def import_file(*, namespace: str, path: str, progress: Callable[[int, int], object] | None = None) -> ImportResult:
    """Import the memory file at `path` (a server-side path the caller chose, never a client's:
    the console's uploads, graph/import_jobs.py) as `import_graph` does, idempotently, but in
    transactions of IMPORT_FILE_CHUNK records (entities first, then relations, then the free
    memories together, whose lineage links them), so other writers get the lock in between.

    A file that does not parse raises InvalidArgument naming the line, and nothing is imported.
    An error after that leaves the chunks before it imported: importing the file again (after
    fixing it) completes it, changing nothing that is already there. `progress(done, total)` is
    told the record count once the file is read, then the records done so far."""
    from graph.importers import parse_file  # the parser is only needed here

    graph = parse_file(Path(path))
    total = len(graph.entities) + len(graph.relations) + len(graph.memories)
    done = 0

    def advanced(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(min(done, total), total)

    if progress is not None:
        progress(0, total)
    result = _nothing_imported()
    parts: list[dict[str, Any]] = [
        {"entities": graph.entities[start : start + IMPORT_FILE_CHUNK], "relations": []}
        for start in range(0, len(graph.entities), IMPORT_FILE_CHUNK)
    ]
    parts += [
        {"entities": [], "relations": graph.relations[start : start + IMPORT_FILE_CHUNK]}
        for start in range(0, len(graph.relations), IMPORT_FILE_CHUNK)
    ]
    if graph.memories:
        parts.append({"entities": [], "relations": [], "memories": graph.memories})
    for part in parts:
        imported = import_graph(namespace=namespace, progress=advanced, **part)
        for name in ("entitiesCreated", "observationsAdded", "relationsCreated", "relationsUnchanged", "memoriesAdded"):
            result[name] += imported[name]
        result["skipped"] += imported["skipped"]
    return result


def _import_memories(namespace: str, memories: Sequence[Mapping[str, Any]]) -> int:
    """Add a file's free memories (graph/importers.py `_memory` records) that the namespace does
    not hold yet (the same text, actor and validFrom), with their validity, expiry, and lineage:
    `supersedes` and `sourceId` name memories of the file (`mem_<n>` there), mapped to the ids
    they have here. They are recorded now (createdAt is the import); they are keyed for dedupe on
    the namespace's next write and embedded behind, like any write. Returns how many were added."""
    ns_id = namespaces.ensure(namespace)
    stamp = now()
    rows: list[MemoryInput] = []
    for index, memory in enumerate(memories):
        where = f"memories[{index}]"
        start, end = _imported_range(memory, where)
        expires = validity.parse_time(memory["expiresAt"], field="expiresAt") if memory.get("expiresAt") else None
        rows.append(
            {
                "body": limits.observation(memory["text"], field="text"),
                "actor_id": memory.get("actorId") or "",
                "tags": list(memory.get("tags") or []),
                "expires_at": expires,
                "valid_from": start or stamp,
                "valid_to": end,
                "extracted_by": memory.get("extractedBy") or "",
            }
        )
    held = {
        (body, actor, str(valid_from)): ident
        for ident, body, actor, valid_from in db().execute(
            # To the second: the file holds times as the wire shows them.
            f"SELECT o.id, o.body, o.actor_id, substr({state_time('coalesce(o.valid_from, o.created_at)')}, 1, 19) "
            "FROM graph_observation o "
            f"WHERE o.namespace_id = ? AND o.entity_id IS NULL AND o.body {in_json('?', 'text')}",
            (ns_id, as_json({row["body"] for row in rows})),
        )
    }
    here: dict[str, int] = {}  # the file's ids: the ids here
    fresh: list[int] = []  # indexes of the memories added
    for index, row in enumerate(rows):
        known = held.get((row["body"], row["actor_id"], str(row.get("valid_from"))[:19]))
        if known is None:
            fresh.append(index)
        elif memories[index].get("id"):
            here[str(memories[index]["id"])] = known
    written = insert_memories(namespace=namespace, memories=[rows[i] for i in fresh], created_at=stamp)
    for index, (ident, _) in zip(fresh, written, strict=True):
        if memories[index].get("id"):
            here[str(memories[index]["id"])] = ident
    links = [
        (here.get(str(memories[index].get("supersedes"))), here.get(str(memories[index].get("sourceId"))), ident)
        for index, (ident, _) in zip(fresh, written, strict=True)
    ]
    # OR IGNORE: a memory that already has a successor here keeps it (one successor each).
    db().executemany(
        _LINK_IMPORTED,
        [link for link in links if link[0] is not None or link[1] is not None],
    )
    return len(written)


if POSTGRES:
    # PostgreSQL has no UPDATE OR IGNORE: the row whose link would give a memory a second
    # successor (the unique index observation_one_successor) is left as it is, as SQLite does.
    _LINK_IMPORTED = (
        "UPDATE graph_observation SET supersedes_id = ?1, source_id = ?2 WHERE id = ?3 AND (?1 IS NULL OR NOT EXISTS "
        "(SELECT 1 FROM graph_observation s WHERE s.supersedes_id = ?1 AND s.id != ?3))"
    )
    # `valid_to IS ?`: PostgreSQL compares with a parameter that may be NULL so.
    _SAME_END = "IS NOT DISTINCT FROM"
else:
    _LINK_IMPORTED = "UPDATE OR IGNORE graph_observation SET supersedes_id = ?, source_id = ? WHERE id = ?"
    _SAME_END = "IS"


def _imported_range(record: Mapping[str, Any], where: str) -> tuple[str | None, str | None]:
    start = validity.parse_time(record["validFrom"], field="validFrom") if record.get("validFrom") else None
    end = validity.parse_time(record["validTo"], field="validTo") if record.get("validTo") else None
    if start is not None and end is not None and end <= start:
        raise InvalidArgument(f"{where}: validFrom must be before validTo")
    return start, end


def _import_observations(ns_id: int, entity: int, details: list[dict[str, Any]]) -> int:
    """Store an entity's exported observations with their validity and lineage (ids in the file
    map to the new rows); an observation it already holds (same text, same end) is kept as is.
    Returns how many were added."""
    conn = db()
    stamp = now()
    new_ids: dict[str, int] = {}
    added: list[tuple[int, str]] = []
    for detail in details:
        text = limits.text(detail.get("text"), field="observationDetails.text", limit_name="MAX_OBSERVATION_BYTES")
        start, end = _imported_range(detail, f"observation {text[:40]!r}")
        existing = conn.execute(
            f"SELECT id FROM graph_observation WHERE entity_id = ? AND body = ? AND valid_to {_SAME_END} ?",
            (entity, text, end),
        ).fetchone()
        if existing is not None:
            ident = existing[0]
        else:
            before = new_ids.get(detail.get("supersedes") or "")
            if before is not None and successor_of(before, other_than=0) is not None:
                before = None  # the one it replaced has a successor already: one successor each
            (ident,) = conn.execute(
                "INSERT INTO graph_observation(namespace_id, entity_id, body, search_text, actor_id, tags, "
                "created_at, valid_from, valid_to, supersedes_id) VALUES (?, ?, ?, ?, '', '[]', ?, ?, ?, ?) "
                "RETURNING id",
                (ns_id, entity, text, index_text(text), stamp, start, end, before),
            ).fetchone()
            added.append((ident, text))
        if isinstance(detail.get("id"), str):
            new_ids[detail["id"]] = ident
    if added:
        history.snapshot_ids(history.OBSERVATION, "create", [i for i, _ in added], side="after", at=stamp)
        observations_written.send(sender=Observation, namespace_id=ns_id, observations=added)
        _touch([entity], stamp)
    return len(added)


def _import_relations(ns_id: int, relations: list[RelationDict]) -> tuple[int, int, list[SkippedRelation]]:
    """Store exported relations that carry validity (closed or dated ones). Returns (created,
    already there, skipped for a missing entity)."""
    conn = db()
    ids = entity_ids(ns_id, {name for r in relations for name in (r["from"], r["to"])})
    types = ensure_types(ns_id, RELATION, (r["relationType"] for r in relations))
    stamp = now()
    created: list[int] = []
    unchanged = 0
    skipped: list[SkippedRelation] = []
    for relation in relations:
        plain: RelationDict = {"from": relation["from"], "to": relation["to"], "relationType": relation["relationType"]}
        missing = [name for name in (relation["from"], relation["to"]) if name not in ids]
        if missing:
            reason = " and ".join(f"entity {name!r} does not exist" for name in dict.fromkeys(missing))
            skipped.append({"relation": plain, "reason": reason})
            continue
        start, end = _imported_range(
            relation, f"relation {relation['from']} -{relation['relationType']}-> {relation['to']}"
        )
        triple = (ids[relation["from"]], ids[relation["to"]], types[relation["relationType"]])
        if conn.execute(
            f"SELECT 1 FROM graph_relation WHERE from_id = ? AND to_id = ? AND type_id = ? AND valid_to {_SAME_END} ?",
            (*triple, end),
        ).fetchone():
            unchanged += 1
            continue
        (ident,) = conn.execute(
            "INSERT INTO graph_relation(namespace_id, from_id, to_id, type_id, created_at, valid_from, valid_to) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (ns_id, *triple, stamp, start, end),
        ).fetchone()
        created.append(ident)
    history.snapshot_ids(history.RELATION, "create", created, side="after", at=stamp)
    return len(created), unchanged, skipped


# --- free memories (observations without an entity) ---------------------------------------------


class MemoryInput(TypedDict):
    body: str
    actor_id: str
    tags: list[str]
    expires_at: str | None  # in the database's datetime format
    dedupe_key: NotRequired[str | None]  # memory/dedupe.py `key_of`
    # Validity (graph/validity.py), in the database's format: from (default: created_at), to.
    valid_from: NotRequired[str | None]
    valid_to: NotRequired[str | None]
    # Lineage: the memory it supersedes, the message it was extracted from, and by which model.
    supersedes_id: NotRequired[int | None]
    source_id: NotRequired[int | None]
    extracted_by: NotRequired[str]


def set_dedupe_keys(keys: Sequence[tuple[int, str, str]]) -> None:
    """Store the dedupe keys of free memories [(id, body the key was read from, key)]; a row whose
    text changed since it was read keeps no key (it is read again later)."""
    if keys:
        db().execute(
            f"UPDATE graph_observation AS o SET dedupe_key = k.value ->> 2 FROM {json_rows()} AS k "
            f"WHERE o.id = {typed('k.value ->> 0', 'bigint')} AND o.body = k.value ->> 1 AND o.entity_id IS NULL",
            (as_json([list(key) for key in keys]),),
        )


_INSERT_MEMORIES = (
    "INSERT INTO graph_observation(namespace_id, entity_id, body, search_text, actor_id, tags, "
    "created_at, expires_at, dedupe_key, valid_from, valid_to, supersedes_id, source_id, extracted_by) "
    f"SELECT ?1, NULL, value ->> 0, value ->> 1, value ->> 2, {typed('value ->> 3', 'jsonb')}, ?2, "
    f"{typed('value ->> 4', 'timestamptz')}, value ->> 5, coalesce({typed('value ->> 6', 'timestamptz')}, ?2), "
    f"{typed('value ->> 7', 'timestamptz')}, {typed('value ->> 8', 'bigint')}, {typed('value ->> 9', 'bigint')}, "
    f"value ->> 10 FROM {json_rows('?3')} RETURNING id, body"
)


def insert_memories(
    *, namespace: str, memories: list[MemoryInput], created_at: str | None = None
) -> list[tuple[int, str]]:
    """Store free memories (observations with no entity) and return [(id, created_at)].

    Input is validated by the caller (memory.services); the observations_written signal embeds
    them inside this transaction. `created_at` (the database's datetime format) lets the caller
    derive expiry times from the same instant."""
    with transaction.atomic():
        ns_id = namespaces.ensure(namespace)
        stamp = created_at or now()
        written = (
            db()
            .execute(
                _INSERT_MEMORIES,
                (
                    ns_id,
                    stamp,
                    as_json(
                        [
                            m["body"],
                            index_text(m["body"]),
                            m["actor_id"],
                            as_json(m["tags"]),
                            m["expires_at"],
                            m.get("dedupe_key"),
                            m.get("valid_from"),
                            m.get("valid_to"),
                            m.get("supersedes_id"),
                            m.get("source_id"),
                            m.get("extracted_by") or "",
                        ]
                        for m in memories
                    ),
                ),
            )
            .fetchall()
        )
        history.snapshot_ids(history.OBSERVATION, "create", [row[0] for row in written], side="after", at=stamp)
        observations_written.send(sender=Observation, namespace_id=ns_id, observations=written)
    return [(row[0], stamp) for row in written]


def delete_memory(
    *, namespace_ids: list[int], memory_id: int, actors: Mapping[int, str] | None = None, purge: bool = False
) -> int | None:
    """Delete one free memory if it lives in one of `namespace_ids` (and, in the namespaces of
    `actors` ({namespace id: actor}), is that actor's); return its namespace id.

    The history keeps what it was, so it can be restored for the retention window; with `purge`
    its versions go too (an erasure), also those of a memory deleted earlier."""
    scope, params = scope_sql(namespace_ids, actors or {})
    with transaction.atomic():
        conn = db()
        row = conn.execute(
            f"SELECT o.namespace_id FROM graph_observation AS o WHERE o.id = ? AND o.entity_id IS NULL AND {scope}",
            (memory_id, *params),
        ).fetchone()
        if row is not None:
            if not purge:
                history.snapshot_ids(history.OBSERVATION, "delete", [memory_id], side="before")
            conn.execute("DELETE FROM graph_observation WHERE id = ?", (memory_id,))
        elif purge:
            row = _deleted_memory(namespace_ids, memory_id, actors or {})
        if row is not None and purge:
            history.forget(history.OBSERVATION, memory_id)
    return row[0] if row else None


def _deleted_memory(namespace_ids: list[int], memory_id: int, actors: Mapping[int, str]) -> tuple[int] | None:
    """(namespace id,) of a free memory that is gone but has versions within the scope."""
    past = history.versions(history.OBSERVATION, memory_id, namespace_ids)
    if not past or db().execute("SELECT 1 FROM graph_observation WHERE id = ?", (memory_id,)).fetchone():
        return None
    last = past[0]
    if last.state.get("entityId") is not None:
        return None
    if last.namespace_id in actors and actors[last.namespace_id] != last.state.get("actorId", last.actor_id):
        return None
    return (last.namespace_id,)


def clear_memories(*, namespace: str, actor_id: str | None = None) -> int:
    """Delete the free memories of a namespace (of one actor, if given); return how many."""
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        if ns_id is None:
            return 0
        where = "o.namespace_id = :ns AND o.entity_id IS NULL"
        if actor_id is not None:
            where += " AND o.actor_id = :actor"
        params = {"ns": ns_id, "actor": actor_id}
        history.snapshot(history.OBSERVATION, "delete", where, params, side="before")
        return db().execute(f"DELETE FROM graph_observation AS o WHERE {where}", params).rowcount


def purge_expired(*, batch: int = 1000) -> int:
    """Delete observations whose TTL has passed (their vectors go with them); return how many.
    Their history records the expiry (they can be restored for the retention window).

    Reads already hide expired rows; this reclaims the space. Deletes in batches, each its own
    transaction, so a large purge never holds the write lock for long."""
    purged = 0
    while True:
        with transaction.atomic():
            stamp = now()
            ids = [
                row[0]
                for row in db().execute(
                    "SELECT id FROM graph_observation WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?",
                    (stamp, batch),
                )
            ]
            history.snapshot_ids(history.OBSERVATION, "expire", ids, side="before", at=stamp)
            deleted = db().execute(f"DELETE FROM graph_observation WHERE id {in_json()}", (as_json(ids),)).rowcount
        purged += deleted
        if deleted < batch:
            return purged


def purge_history() -> int:
    """Delete for good the versions of objects removed longer ago than
    MEMORYHUB_HISTORY_RETENTION_DAYS (they can no longer be restored); return how many."""
    return history.purge_gone()


# --- update in place and restore ------------------------------------------------------------------


class Updated(TypedDict):
    id: int
    namespace_id: int
    version: int | None


def _last_version(kind: str, object_id: int) -> int | None:
    row = (
        db()
        .execute("SELECT MAX(version) FROM graph_version WHERE kind = ? AND object_id = ?", (kind, object_id))
        .fetchone()
    )
    return row[0] if row else None


def _same_text(entity: int | None, body: str, other_than: int) -> int | None:
    """The id of another current observation of `entity` with exactly this text (an entity holds
    a text once at a time; closed ones are its past)."""
    if entity is None:
        return None
    row = (
        db()
        .execute(
            "SELECT id FROM graph_observation WHERE entity_id = ? AND body = ? AND id != ? AND valid_to IS NULL",
            (entity, body, other_than),
        )
        .fetchone()
    )
    return row[0] if row else None


def successor_of(observation_id: int, *, other_than: int) -> int | None:
    row = (
        db()
        .execute("SELECT id FROM graph_observation WHERE supersedes_id = ? AND id != ?", (observation_id, other_than))
        .fetchone()
    )
    return row[0] if row else None


def update_observation(*, namespace_ids: list[int], observation_id: int, text: str) -> Updated:
    """Give a live memory or observation of `namespace_ids` new text, keeping its id: the keyword
    index follows (triggers), its vector is dropped (trigger) and a new one made or queued
    (observations_written), and the history records the update. `text` is checked by the caller.

    NotFound for an id that is not live within `namespace_ids`; Conflict when the observation's
    entity already holds this exact text."""
    with transaction.atomic():
        row = (
            db()
            .execute(
                "SELECT namespace_id, entity_id, body FROM graph_observation WHERE id = ? "
                f"AND (expires_at IS NULL OR expires_at > ?) AND namespace_id {in_json()}",
                (observation_id, now(), as_json(namespace_ids)),
            )
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no memory {history.wire_id(history.OBSERVATION, observation_id)}", id=observation_id)
        ns_id, entity, body = row
        if body != text:
            if entity is not None:
                lock_entities([entity])
            twin = _same_text(entity, text, observation_id)
            if twin is not None:
                raise Conflict(
                    f"the entity already has this observation ({history.wire_id(history.OBSERVATION, twin)})",
                    field="text",
                )
            before = history.states(history.OBSERVATION, [observation_id])
            stamp = now()
            db().execute(
                "UPDATE graph_observation SET body = ?, search_text = ?, dedupe_key = NULL WHERE id = ?",
                (text, index_text(text), observation_id),
            )
            history.snapshot_ids(
                history.OBSERVATION, "update", [observation_id], side="after", befores=before, at=stamp
            )
            _touch([entity] if entity is not None else [], stamp)
            observations_written.send(sender=Observation, namespace_id=ns_id, observations=[(observation_id, text)])
        return {
            "id": observation_id,
            "namespace_id": ns_id,
            "version": _last_version(history.OBSERVATION, observation_id),
        }


class Restored(TypedDict):
    id: str
    kind: str
    namespace: str
    version: int
    restoredFrom: int
    state: dict[str, Any] | None
    alsoRestored: list[str]


_TABLE = {history.OBSERVATION: "graph_observation", history.ENTITY: "graph_entity", history.RELATION: "graph_relation"}


def _live_namespace(kind: str, object_id: int) -> int | None:
    row = db().execute(f"SELECT namespace_id FROM {_TABLE[kind]} WHERE id = ?", (object_id,)).fetchone()
    return row[0] if row else None


def restore(*, namespace_ids: list[int], kind: str, object_id: int, version: int | None = None) -> Restored:
    """Bring an object of `namespace_ids` back to the state of one of its versions, keeping its id.

    - Without `version`, a deleted (expired, merged-away) object comes back as it was just before;
      a deleted entity brings back what the same call removed with it (its observations, and its
      relations whose other end exists); a deleted observation whose entity is gone brings the
      entity back first.
    - With `version`, the object (live or deleted) gets that version's fields back.

    Recorded as a "restore" version. Errors change nothing: NotFound (no such object or version
    within reach), InvalidArgument (a live object and no version), RetentionPassed (deleted longer
    ago than MEMORYHUB_HISTORY_RETENTION_DAYS), Conflict (a name or a text taken since)."""
    label = history.wire_id(kind, object_id)
    with transaction.atomic():
        live = _live_namespace(kind, object_id)
        past = history.versions(kind, object_id, namespace_ids)
        if (live is not None and live not in namespace_ids) or (live is None and not past):
            raise NotFound(f"no memory, entity or relation {label}", id=label)
        if version is None:
            if live is not None:
                raise InvalidArgument(f"{label} is not deleted: give the version to restore it to", field="version")
            source = past[0]
        else:
            found = [v for v in past if v.version == version]
            if not found:
                known = f" (its versions are 1 to {past[0].version})" if past else " (it has no versions)"
                raise NotFound(f"{label} has no version {version}{known}", id=label, version=version)
            source = found[0]
        if source.action == "mention":
            raise InvalidArgument(
                f"version {source.version} of {label} records a mention (a repeat), not its fields: "
                "restore another version",
                field="version",
            )
        if live is None and past[0].changed_at < history.retention_cutoff():
            raise RetentionPassed(
                f"{label} was removed more than {settings.MEMORYHUB_HISTORY_RETENTION_DAYS} days ago "
                "(MEMORYHUB_HISTORY_RETENTION_DAYS): it can no longer be restored",
                id=label,
            )
        ns_id = source.namespace_id
        state = dict(source.state)
        also: list[str] = []
        if kind == history.OBSERVATION:
            _restore_observation(ns_id, object_id, state, live is not None, also)
        elif kind == history.ENTITY:
            _restore_entity(ns_id, object_id, state, live is not None, past[-1].changed_at)
            if live is None:
                also += _restore_removed_with(ns_id, object_id, past[0].call)
        else:
            _restore_relation(ns_id, object_id, state, live is not None)
        number = _last_version(kind, object_id) or 0
        after = history.states(kind, [object_id]).get(object_id)
    return {
        "id": label,
        "kind": kind,
        "namespace": past[0].namespace if past else "",
        "version": number,
        "restoredFrom": source.version,
        "state": history.wire_state(after),
        "alsoRestored": also,
    }


def _future(moment: Any) -> str | None:
    """A kept expiry time if it is still ahead; a restored memory does not expire at once."""
    return moment if isinstance(moment, str) and moment > now() else None


def _restore_observation(ns_id: int, ident: int, state: dict[str, Any], live: bool, also: list[str]) -> None:
    conn = db()
    text = state.get("text") or ""
    if live:
        entity = conn.execute("SELECT entity_id FROM graph_observation WHERE id = ?", (ident,)).fetchone()[0]
    else:
        entity = state.get("entityId")
        if entity is not None and _live_namespace(history.ENTITY, entity) is None:
            # Its entity went too (deleted, merged away): it comes back first, under its old name.
            entity_past = history.versions(history.ENTITY, entity, [ns_id])
            if not entity_past:
                raise NotFound(f"the entity of {history.wire_id(history.OBSERVATION, ident)} is gone for good")
            _restore_entity(ns_id, entity, dict(entity_past[0].state), False, entity_past[-1].changed_at)
            also.append(history.wire_id(history.ENTITY, entity))
    # Validity and lineage come back as they were in that version (versions older than validity
    # time have none: a live row keeps its own, a re-created one is current).
    timed = "validFrom" in state
    valid_to = state.get("validTo") if timed else None
    twin = _same_text(entity, text, ident) if valid_to is None else None
    if twin is not None:
        raise Conflict(f"the entity already has this observation again ({history.wire_id(history.OBSERVATION, twin)})")
    stamp = now()
    supersedes = state.get("supersedes") if timed else None
    if supersedes is not None and successor_of(supersedes, other_than=ident) is not None:
        supersedes = None  # another row took its place as the successor meanwhile
    values = {
        "id": ident,
        "ns": ns_id,
        "entity": entity,
        "body": text,
        "search": index_text(text),
        "actor": state.get("actorId") or "",
        "tags": as_json(state.get("tags") or []),
        "created": state.get("createdAt") or stamp,
        "expires": _future(state.get("expiresAt")),
        "mentions": state.get("mentionCount") or 1,
        "timed": timed,
        "valid_from": state.get("validFrom") if timed else None,
        "valid_to": valid_to,
        "supersedes": supersedes,
        "source": state.get("source") if timed else None,
        "model": (state.get("extractedBy") or "") if timed else "",
    }
    if live:
        before = history.states(history.OBSERVATION, [ident])
        conn.execute(
            "UPDATE graph_observation SET body = :body, search_text = :search, actor_id = :actor, tags = :tags, "
            "expires_at = :expires, dedupe_key = NULL, "
            "valid_from = CASE WHEN :timed THEN :valid_from ELSE valid_from END, "
            "valid_to = CASE WHEN :timed THEN :valid_to ELSE valid_to END WHERE id = :id",
            values,
        )
        history.snapshot_ids(history.OBSERVATION, "restore", [ident], side="after", befores=before, at=stamp)
        changed = before[ident]["text"] != text
    else:
        conn.execute(
            "INSERT INTO graph_observation(id, namespace_id, entity_id, body, search_text, actor_id, tags, "
            "created_at, expires_at, mention_count, valid_from, valid_to, supersedes_id, source_id, extracted_by) "
            "VALUES (:id, :ns, :entity, :body, :search, :actor, :tags, :created, :expires, :mentions, :valid_from, "
            ":valid_to, :supersedes, :source, :model)",
            values,
        )
        history.snapshot_ids(history.OBSERVATION, "restore", [ident], side="after", at=stamp)
        changed = True
    _touch([entity] if entity is not None else [], stamp)
    if changed:
        observations_written.send(sender=Observation, namespace_id=ns_id, observations=[(ident, text)])


def _restore_entity(ns_id: int, ident: int, state: dict[str, Any], live: bool, created: str) -> None:
    name, kind = state.get("name"), state.get("entityType")
    if not isinstance(name, str) or not isinstance(kind, str):
        raise NotFound(f"{history.wire_id(history.ENTITY, ident)} has no state to restore")
    holder = entity_id(ns_id, name)
    if holder is not None and holder != ident:
        raise Conflict(
            f"an entity named {name!r} exists now ({history.wire_id(history.ENTITY, holder)}): rename or delete it "
            f"before restoring {history.wire_id(history.ENTITY, ident)}"
        )
    types = ensure_types(ns_id, ENTITY, [kind])
    stamp = now()
    if live:
        before = history.states(history.ENTITY, [ident])
        db().execute(
            "UPDATE graph_entity SET name = ?, search_name = ?, type_id = ?, updated_at = ? WHERE id = ?",
            (name, index_text(name), types[kind], stamp, ident),
        )
        history.snapshot_ids(history.ENTITY, "restore", [ident], side="after", befores=before, at=stamp)
    else:
        db().execute(
            "INSERT INTO graph_entity(id, namespace_id, name, search_name, type_id, obs_count, out_deg, in_deg, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, 0, 0, ?, ?)",
            (ident, ns_id, name, index_text(name), types[kind], created, stamp),
        )
        history.snapshot_ids(history.ENTITY, "restore", [ident], side="after", at=stamp)


def _restore_removed_with(ns_id: int, entity: int, call: str) -> list[str]:
    """Bring back the observations and relations of `entity` removed by the call `call` (the one
    that removed the entity) and not back since; relations only where both ends exist and no equal
    relation does. Returns their wire ids."""
    if not call:
        return []
    rows = (
        db()
        .execute(
            "SELECT v.kind, v.object_id, v.before FROM graph_version v WHERE v.call = ?1 AND v.namespace_id = ?2 "
            f"AND {history.REMOVED} AND v.kind IN ('observation', 'relation') "
            "AND (v.entity_id = ?3 OR v.other_entity_id = ?3) "
            "AND v.version = (SELECT MAX(w.version) FROM graph_version w WHERE w.kind = v.kind AND w.object_id = v.object_id) "
            "ORDER BY v.id",
            (call, ns_id, entity),
        )
        .fetchall()
    )
    observations: list[tuple[int, dict[str, Any]]] = []
    relations: list[tuple[int, dict[str, Any]]] = []
    for kind, ident, before in rows:
        state = loads(before)
        if kind == history.OBSERVATION and state.get("entityId") == entity:
            observations.append((ident, state))
        elif kind == history.RELATION:
            relations.append((ident, state))
    stamp = now()
    conn = db()
    taken = _existing_bodies([entity])[entity]
    back_obs = []
    for ident, state in observations:
        if _live_namespace(history.OBSERVATION, ident) is None and state.get("text") not in taken:
            taken.add(state["text"])
            back_obs.append((ident, state))
    if back_obs:
        written = conn.execute(
            "INSERT INTO graph_observation(id, namespace_id, entity_id, body, search_text, actor_id, tags, "
            f"created_at, expires_at, mention_count) SELECT {typed('value ->> 0', 'bigint')}, ?1, ?2, value ->> 1, "
            f"value ->> 2, value ->> 3, {typed('value ->> 4', 'jsonb')}, {typed('value ->> 5', 'timestamptz')}, "
            f"{typed('value ->> 6', 'timestamptz')}, {typed('value ->> 7', 'integer')} FROM {json_rows('?3')} "
            "RETURNING id, body",
            (
                ns_id,
                entity,
                as_json(
                    [
                        ident,
                        s["text"],
                        index_text(s["text"]),
                        s.get("actorId") or "",
                        as_json(s.get("tags") or []),
                        s.get("createdAt") or stamp,
                        _future(s.get("expiresAt")),
                        s.get("mentionCount") or 1,
                    ]
                    for ident, s in back_obs
                ),
            ),
        ).fetchall()
        history.snapshot_ids(history.OBSERVATION, "restore", [row[0] for row in written], side="after", at=stamp)
        observations_written.send(sender=Observation, namespace_id=ns_id, observations=written)
    back_rel = []
    for ident, state in relations:
        try:
            _restore_relation(ns_id, ident, state, False)
        except (Conflict, NotFound):
            continue  # the other end is gone, or an equal relation exists again
        back_rel.append(ident)
    return [history.wire_id(history.OBSERVATION, ident) for ident, _ in back_obs] + [
        history.wire_id(history.RELATION, ident) for ident in back_rel
    ]


def _restore_relation(ns_id: int, ident: int, state: dict[str, Any], live: bool) -> None:
    label = history.wire_id(history.RELATION, ident)
    from_id, to_id, kind = state.get("fromId"), state.get("toId"), state.get("relationType")
    if not isinstance(kind, str):
        raise NotFound(f"{label} has no state to restore")
    for end in (from_id, to_id):
        if not isinstance(end, int) or _live_namespace(history.ENTITY, end) != ns_id:
            raise Conflict(
                f"{label} joins {history.wire_id(history.ENTITY, end) if isinstance(end, int) else 'an entity'}, "
                "which is gone: restore it first"
            )
    types = ensure_types(ns_id, RELATION, [kind])
    timed = "validFrom" in state
    valid_from, valid_to = (state.get("validFrom"), state.get("validTo")) if timed else (None, None)
    # Only a current edge can be a twin of a current one (closed edges may repeat).
    twin = (
        db()
        .execute(
            "SELECT id FROM graph_relation WHERE from_id = ? AND to_id = ? AND type_id = ? AND id != ? "
            "AND valid_to IS NULL",
            (from_id, to_id, types[kind], ident),
        )
        .fetchone()
        if valid_to is None
        else None
    )
    if twin is not None:
        raise Conflict(f"this relation exists again ({history.wire_id(history.RELATION, twin[0])})")
    stamp = now()
    if live:
        before = history.states(history.RELATION, [ident])
        db().execute(
            "UPDATE graph_relation SET from_id = ?, to_id = ?, type_id = ?, "
            "valid_from = CASE WHEN ? THEN ? ELSE valid_from END, valid_to = CASE WHEN ? THEN ? ELSE valid_to END "
            "WHERE id = ?",
            (from_id, to_id, types[kind], timed, valid_from, timed, valid_to, ident),
        )
        history.snapshot_ids(history.RELATION, "restore", [ident], side="after", befores=before, at=stamp)
    else:
        db().execute(
            "INSERT INTO graph_relation(id, namespace_id, from_id, to_id, type_id, created_at, valid_from, valid_to) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (ident, ns_id, from_id, to_id, types[kind], stamp, valid_from, valid_to),
        )
        history.snapshot_ids(history.RELATION, "restore", [ident], side="after", at=stamp)
