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

from collections.abc import Callable, Mapping
from typing import Any, TypedDict

from django.db import transaction

from access import namespaces
from graph import dedupe as dedupe_rules
from graph import limits
from graph.dedupe import note_mentions
from graph.exceptions import EntityAlreadyExists, EntityNotFound, InvalidArgument
from graph.fts import index_text
from graph.models import Observation
from graph.observations import scope_sql
from graph.signals import observations_written
from graph.sql import as_json, db, ensure_types, entity_id, entity_ids, load_entity, now, require_entity, type_id
from graph.types import (
    AddedObservations,
    EntityDict,
    ObservationAddition,
    ObservationDeletion,
    RelationDict,
    SkippedEntity,
    SkippedRelation,
)

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


def _insert_entities(ns_id: int, entities: list[EntityDict], stamp: str) -> dict[str, int]:
    types = ensure_types(ns_id, ENTITY, (e["entityType"] for e in entities))
    db().execute(
        "INSERT INTO graph_entity(namespace_id, name, search_name, type_id, obs_count, out_deg, in_deg, "
        "created_at, updated_at) SELECT ?1, value ->> 0, value ->> 1, value ->> 2, 0, 0, 0, ?2, ?2 "
        "FROM json_each(?3)",
        (ns_id, stamp, as_json([e["name"], index_text(e["name"]), types[e["entityType"]]] for e in entities)),
    )
    ids = entity_ids(ns_id, (e["name"] for e in entities))
    _insert_observations(ns_id, [(ids[e["name"]], body) for e in entities for body in e["observations"]], stamp)
    return ids


def _insert_observations(ns_id: int, rows: list[tuple[int, str]], stamp: str) -> None:
    if rows:
        written = (
            db()
            .execute(
                "INSERT INTO graph_observation(namespace_id, entity_id, body, search_text, actor_id, tags, "
                "created_at, expires_at) SELECT ?1, value ->> 0, value ->> 1, value ->> 2, '', '[]', ?2, NULL "
                "FROM json_each(?3) RETURNING id, body",
                (ns_id, stamp, as_json([entity, body, index_text(body)] for entity, body in rows)),
            )
            .fetchall()
        )
        observations_written.send(sender=Observation, namespace_id=ns_id, observations=written)


def _existing_observations(ids: list[int]) -> dict[int, dict[str, int]]:
    """{entity id: {text: observation id}} of the entities' current observations."""
    found: dict[int, dict[str, int]] = {i: {} for i in ids}
    for entity, ident, body in db().execute(
        "SELECT entity_id, id, body FROM graph_observation WHERE entity_id IN (SELECT value FROM json_each(?))",
        (as_json(ids),),
    ):
        found[entity][body] = ident
    return found


def _existing_bodies(ids: list[int]) -> dict[int, set[str]]:
    bodies: dict[int, set[str]] = {i: set() for i in ids}
    for entity, body in db().execute(
        "SELECT entity_id, body FROM graph_observation WHERE entity_id IN (SELECT value FROM json_each(?))",
        (as_json(ids),),
    ):
        bodies[entity].add(body)
    return bodies


def _touch(ids: list[int], stamp: str) -> None:
    if ids:
        db().execute(
            "UPDATE graph_entity SET updated_at = ? WHERE id IN (SELECT value FROM json_each(?))",
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
            _insert_entities(ns_id, created, now())
    return {"entities": created, "skipped": skipped}


class CreateRelationsResult(TypedDict):
    relations: list[RelationDict]
    skipped: list[SkippedRelation]


def create_relations(*, namespace: str, relations: list[RelationDict]) -> CreateRelationsResult:
    """Create relations between existing entities. Relations that already exist, repeat an
    earlier one in this call, or name a missing entity are not stored and come back in `skipped`."""
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
        created: list[RelationDict] = []
        rows = []
        for relation in to_store:
            triple = (ids[relation["from"]], ids[relation["to"]], types[relation["relationType"]])
            if conn.execute(
                "SELECT 1 FROM graph_relation WHERE from_id = ? AND to_id = ? AND type_id = ?", triple
            ).fetchone():
                skipped.append({"relation": relation, "reason": RELATION_EXISTS})
                continue
            created.append(relation)
            rows.append(triple)
        if rows:
            stamp = now()
            conn.execute(
                "INSERT INTO graph_relation(namespace_id, from_id, to_id, type_id, created_at) "
                "SELECT ?1, value ->> 0, value ->> 1, value ->> 2, ?2 FROM json_each(?3)",
                (ns_id, stamp, as_json(rows)),
            )
    return {"relations": created, "skipped": skipped}


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
    # Relations and observations first: the triggers then keep the other ends' degrees right.
    conn.execute("DELETE FROM graph_relation WHERE from_id IN (SELECT value FROM json_each(?))", (ids_json,))
    conn.execute("DELETE FROM graph_relation WHERE to_id IN (SELECT value FROM json_each(?))", (ids_json,))
    conn.execute("DELETE FROM graph_observation WHERE entity_id IN (SELECT value FROM json_each(?))", (ids_json,))
    conn.execute("DELETE FROM graph_entity WHERE id IN (SELECT value FROM json_each(?))", (ids_json,))


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
            cursor = conn.execute(
                "DELETE FROM graph_observation WHERE entity_id = ? AND body IN (SELECT value FROM json_each(?))",
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
            conn = db()
            for relation in requested:
                rel_type = type_id(ns_id, RELATION, relation["relationType"])
                if rel_type is None or relation["from"] not in ids or relation["to"] not in ids:
                    continue
                deleted += conn.execute(
                    "DELETE FROM graph_relation WHERE from_id = ? AND to_id = ? AND type_id = ?",
                    (ids[relation["from"]], ids[relation["to"]], rel_type),
                ).rowcount
    return {"success": True, "message": "Relations deleted successfully", "deleted": deleted}


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
        stamp = now()
        to_create = [e for name, e in merged.items() if name not in existing]
        if to_create:
            _insert_entities(ns_id, to_create, stamp)
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
        conn = db()
        target_bodies = _existing_bodies([target_id])[target_id]
        moved_obs: list[int] = []
        dropped_obs: list[int] = []
        for obs_id, body in conn.execute(
            "SELECT id, body FROM graph_observation WHERE entity_id = ? ORDER BY id", (source_id,)
        ).fetchall():
            if body in target_bodies:
                dropped_obs.append(obs_id)
            else:
                target_bodies.add(body)
                moved_obs.append(obs_id)
        conn.execute(
            "DELETE FROM graph_observation WHERE id IN (SELECT value FROM json_each(?))", (as_json(dropped_obs),)
        )
        conn.execute(
            "UPDATE graph_observation SET entity_id = ? WHERE id IN (SELECT value FROM json_each(?))",
            (target_id, as_json(moved_obs)),
        )

        moved_rel = dropped_rel = 0
        relations = conn.execute(
            "SELECT id, from_id, to_id, type_id FROM graph_relation WHERE from_id = ?1 OR to_id = ?1 ORDER BY id",
            (source_id,),
        ).fetchall()
        for rel_id, from_id, to_id, rel_type in relations:
            new_from = target_id if from_id == source_id else from_id
            new_to = target_id if to_id == source_id else to_id
            duplicate = conn.execute(
                "SELECT 1 FROM graph_relation WHERE from_id = ? AND to_id = ? AND type_id = ?",
                (new_from, new_to, rel_type),
            ).fetchone()
            if new_from == new_to or duplicate:
                conn.execute("DELETE FROM graph_relation WHERE id = ?", (rel_id,))
                dropped_rel += 1
            else:
                conn.execute(
                    "UPDATE graph_relation SET from_id = ?, to_id = ? WHERE id = ?", (new_from, new_to, rel_id)
                )
                moved_rel += 1
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
            db().execute(
                "UPDATE graph_entity SET name = ?, search_name = ?, updated_at = ? WHERE id = ?",
                (new_name, index_text(new_name), now(), entity),
            )
        renamed = load_entity(entity)
    assert renamed is not None
    return renamed


class CompactResult(TypedDict):
    success: bool
    message: str
    walCheckpoint: dict[str, int] | None
    freedPages: int


def compact() -> CompactResult:
    """Storage maintenance for the whole database (not one namespace): merge FTS segments,
    refresh planner statistics, return free pages to the OS and truncate the WAL."""
    conn = db()
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


class ImportResult(TypedDict):
    entitiesCreated: int
    observationsAdded: int
    relationsCreated: int
    relationsUnchanged: int
    skipped: list[SkippedRelation]


def import_graph(
    *,
    namespace: str,
    entities: list[EntityDict],
    relations: list[RelationDict],
    progress: Callable[[int], object] | None = None,
) -> ImportResult:
    """Load a whole graph (an official memory file) in one transaction, idempotently.

    Entities are upserted (existing ones gain only the observations they lack), relations are
    created unless present. Importing the same file twice changes nothing the second time.
    Relations to entities the file does not define come back in `skipped`."""
    batch = limits.limit("MAX_ITEMS_PER_REQUEST")
    result: ImportResult = {
        "entitiesCreated": 0,
        "observationsAdded": 0,
        "relationsCreated": 0,
        "relationsUnchanged": 0,
        "skipped": [],
    }
    # An entity may carry more observations than one request allows: send them in slices.
    pieces: list[EntityDict] = []
    for entity in entities:
        observations = entity["observations"] or []
        for start in range(0, max(len(observations), 1), batch):
            pieces.append({**entity, "observations": observations[start : start + batch]})
    with transaction.atomic():
        for start in range(0, len(pieces), batch):
            chunk = pieces[start : start + batch]
            upserted = upsert_entities(namespace=namespace, entities=chunk)
            result["entitiesCreated"] += len(upserted["created"])
            result["observationsAdded"] += sum(len(e["observations"]) for e in upserted["created"])
            result["observationsAdded"] += sum(len(u["addedObservations"]) for u in upserted["updated"])
            if progress:
                progress(len(chunk))
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
    return result


# --- free memories (observations without an entity) ---------------------------------------------


class MemoryInput(TypedDict):
    body: str
    actor_id: str
    tags: list[str]
    expires_at: str | None  # in the database's datetime format


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
                "INSERT INTO graph_observation(namespace_id, entity_id, body, search_text, actor_id, tags, "
                "created_at, expires_at) SELECT ?1, NULL, value ->> 0, value ->> 1, value ->> 2, value ->> 3, ?2, "
                "value ->> 4 FROM json_each(?3) RETURNING id, body",
                (
                    ns_id,
                    stamp,
                    as_json(
                        [m["body"], index_text(m["body"]), m["actor_id"], as_json(m["tags"]), m["expires_at"]]
                        for m in memories
                    ),
                ),
            )
            .fetchall()
        )
        observations_written.send(sender=Observation, namespace_id=ns_id, observations=written)
    return [(row[0], stamp) for row in written]


def delete_memory(*, namespace_ids: list[int], memory_id: int, actors: Mapping[int, str] | None = None) -> int | None:
    """Delete one free memory if it lives in one of `namespace_ids` (and, in the namespaces of
    `actors` ({namespace id: actor}), is that actor's); return its namespace id."""
    scope, params = scope_sql(namespace_ids, actors or {})
    with transaction.atomic():
        row = (
            db()
            .execute(
                f"DELETE FROM graph_observation AS o WHERE o.id = ? AND o.entity_id IS NULL AND {scope} "
                "RETURNING namespace_id",
                (memory_id, *params),
            )
            .fetchone()
        )
    return row[0] if row else None


def clear_memories(*, namespace: str, actor_id: str | None = None) -> int:
    """Delete the free memories of a namespace (of one actor, if given); return how many."""
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        if ns_id is None:
            return 0
        if actor_id is None:
            cursor = db().execute(
                "DELETE FROM graph_observation WHERE namespace_id = ? AND entity_id IS NULL", (ns_id,)
            )
        else:
            cursor = db().execute(
                "DELETE FROM graph_observation WHERE namespace_id = ? AND entity_id IS NULL AND actor_id = ?",
                (ns_id, actor_id),
            )
        return cursor.rowcount


def purge_expired(*, batch: int = 1000) -> int:
    """Delete observations whose TTL has passed (their vectors go with them); return how many.

    Reads already hide expired rows; this reclaims the space. Deletes in batches, each its own
    transaction, so a large purge never holds the write lock for long."""
    purged = 0
    while True:
        with transaction.atomic():
            deleted = (
                db()
                .execute(
                    "DELETE FROM graph_observation WHERE id IN (SELECT id FROM graph_observation "
                    "WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)",
                    (now(), batch),
                )
                .rowcount
            )
        purged += deleted
        if deleted < batch:
            return purged
