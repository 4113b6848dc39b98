"""The history of every memory, observation, entity and relation: one `graph_version` row per
change, with the state before and after, when, who and through which surface.

The stores record versions in the transaction of the change itself (a change and its version
commit together or not at all); who and through which surface come from the change the runner
opened (`access.changes.current()`). One statement per batch: a call that writes 500 observations
records 500 versions with one INSERT, and a delete snapshots the rows it is about to delete in SQL
(`snapshot`: INSERT ... SELECT from the rows themselves).

Below the recording: the readers (an object's versions, an entity's whole history, the wire
shape every surface shows, with ids `mem_<n>`, `ent_<n>`, `rel_<n>`), and the retention rules
(`retention_cutoff`, `purge_gone`, `forget`). graph.services restores and updates from them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple, TypedDict

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from access import changes, namespaces
from graph import limits
from graph.exceptions import EntityNotFound
from graph.sql import as_json, db, now
from graph.write_sql import JSON_OBJECT, POSTGRES, json_text, loads, state_time, stored, typed
from kernel.errors import InvalidArgument
from kernel.sql import in_json, iso, json_rows, json_values, stored_time

OBSERVATION = "observation"
ENTITY = "entity"
RELATION = "relation"

# What a version says happened.
# "close": its validity ended (graph/validity.py); it stays, as a past fact.
ACTIONS = ("create", "update", "merge", "rename", "delete", "expire", "restore", "mention", "purge", "close")
# A version whose `after` is null says the object is gone (deleted, expired, merged away): the
# state to restore is its `before` (REMOVED, as SQL on alias v, matches the partial indexes).
# A create stores no `after` either: the row as created is the next version's `before` (every
# version but a mention keeps the whole state before it), or the row as it is now. Copying every
# new row into the history would double what a bulk write stores (bench/RESULTS.md, "History");
# the readers below fill it in.
REMOVED = "v.after IS NULL AND NOT (v.action = 'create')"

# The ids objects have on the wire, by kind.
PREFIXES = {OBSERVATION: "mem_", ENTITY: "ent_", RELATION: "rel_"}
KINDS_BY_PREFIX = {prefix: kind for kind, prefix in PREFIXES.items()}
# 19 digits can exceed SQLite's 64-bit INTEGER.
MAX_ROW_ID = 2**63 - 1


class Item(TypedDict, total=False):
    object_id: int  # required
    namespace_id: int  # required
    entity_id: int | None
    other_entity_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    actor_id: str


def record(kind: str, action: str, items: Sequence[Item], *, at: str | None = None) -> None:
    """Append one version per item, numbered after the object's last version."""
    if not items:
        return
    if action not in ACTIONS:
        raise ValueError(f"unknown history action {action!r}")
    change = changes.current()
    rows = [
        [
            item["object_id"],
            item["namespace_id"],
            item.get("entity_id"),
            item.get("other_entity_id"),
            _json(item.get("before")),
            _json(item.get("after")),
            item.get("actor_id") or "",
        ]
        for item in items
    ]
    # A new object's first version needs no look-up of earlier ones.
    db().execute(
        _RECORD_FIRST if action == "create" else _RECORD_NEXT,
        (
            kind,
            action,
            at or now(),
            change.operation,
            change.surface,
            change.key_id,
            change.key_prefix or "",
            change.user_id,
            change.call,
            as_json(rows),
        ),
    )


def _record_statement(number: str) -> str:
    bigint = [typed(f"value ->> {n}", "bigint") for n in range(4)]
    before, after = (typed(f"value ->> {n}", "jsonb") for n in (4, 5))
    return (
        "INSERT INTO graph_version(kind, object_id, namespace_id, entity_id, other_entity_id, version, action, "
        "before, after, changed_at, operation, surface, key_id, key_prefix, user_id, actor_id, call) "
        f"SELECT CAST(?1 AS TEXT), {', '.join(bigint)}, {number}, ?2, {before}, {after}, "
        f"?3, ?4, ?5, ?6, ?7, ?8, value ->> 6, ?9 FROM {json_rows('?10')}"
    )


# A new object's first version needs no look-up of earlier ones.
_RECORD_FIRST = _record_statement("1")
_RECORD_NEXT = _record_statement(
    "COALESCE((SELECT MAX(v.version) FROM graph_version v WHERE v.kind = CAST(?1 AS TEXT) "
    f"AND v.object_id = {typed('value ->> 0', 'bigint')}), 0) + 1"
)


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


# --- snapshots taken in SQL -------------------------------------------------------------------------
#
# The state a version keeps of each kind of row, as a JSON object built by SQLite from the row
# itself: a delete snapshots what it is about to delete (and a create what it wrote) with one
# INSERT ... SELECT, without reading the rows into Python.

# On PostgreSQL the same objects (json_build_object), times as the text SQLite stores (state_time).
OBSERVATION_STATE = (
    f"{JSON_OBJECT}('text', o.body, 'entityId', o.entity_id, "
    "'entityName', (SELECT name FROM graph_entity WHERE id = o.entity_id), 'actorId', o.actor_id, "
    f"'tags', {json_text('o.tags')}, 'createdAt', {state_time('o.created_at')}, "
    f"'expiresAt', {state_time('o.expires_at')}, 'mentionCount', o.mention_count, "
    f"'validFrom', {state_time('coalesce(o.valid_from, o.created_at)')}, 'validTo', {state_time('o.valid_to')}, "
    "'supersedes', o.supersedes_id, 'source', o.source_id, 'extractedBy', o.extracted_by)"
)
ENTITY_STATE = f"{JSON_OBJECT}('name', e.name, 'entityType', (SELECT name FROM graph_typedict WHERE id = e.type_id))"
RELATION_STATE = (
    f"{JSON_OBJECT}('from', (SELECT name FROM graph_entity WHERE id = r.from_id), "
    "'to', (SELECT name FROM graph_entity WHERE id = r.to_id), "
    "'relationType', (SELECT name FROM graph_typedict WHERE id = r.type_id), 'fromId', r.from_id, 'toId', r.to_id, "
    f"'validFrom', {state_time('coalesce(r.valid_from, r.created_at)')}, 'validTo', {state_time('r.valid_to')})"
)


@dataclass(frozen=True)
class _Table:
    table: str
    alias: str
    state: str
    entity: str
    other: str
    actor: str


_TABLES = {
    OBSERVATION: _Table("graph_observation", "o", OBSERVATION_STATE, "o.entity_id", "NULL", "o.actor_id"),
    ENTITY: _Table("graph_entity", "e", ENTITY_STATE, "e.id", "NULL", "''"),
    RELATION: _Table("graph_relation", "r", RELATION_STATE, "r.from_id", "r.to_id", "''"),
}


def snapshot(
    kind: str,
    action: str,
    where: str,
    params: Mapping[str, Any],
    *,
    side: str,
    befores: Mapping[int, Any] | None = None,
    other: int | None = None,
    at: str | None = None,
) -> None:
    """Record one `action` version for each row of `kind` matching `where` (an SQL condition on
    the table's alias: o, e or r, with named parameters `params`), its current state as the
    version's `side` ("before": call it before the row changes or goes; "after": once written).
    `befores` ({id: state}) gives the other side of an update; `other` sets `other_entity_id`
    (the entity a merge moved an observation from, or merged an entity into)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown history action {action!r}")
    spec = _TABLES[kind]
    alias = spec.alias
    key = f"CAST({alias}.id AS TEXT)"
    if befores is None:
        given = "NULL"
    elif POSTGRES:
        given = f"(SELECT value FROM jsonb_each(CAST(:befores AS jsonb)) WHERE key = {key})"
    else:
        given = f"(SELECT json(value) FROM json_each(:befores) WHERE key = {key})"
    before, after = (spec.state, "NULL") if side == "before" else (given, spec.state)
    if action == "create":
        after = "NULL"  # see REMOVED
    number = (
        "1"
        if action == "create"
        else f"COALESCE((SELECT MAX(v.version) FROM graph_version v WHERE v.kind = CAST(:kind AS TEXT) AND v.object_id = {alias}.id), 0) + 1"
    )
    change = changes.current()
    db().execute(
        "INSERT INTO graph_version(kind, object_id, namespace_id, entity_id, other_entity_id, version, action, "
        "before, after, changed_at, operation, surface, key_id, key_prefix, user_id, actor_id, call) "
        f"SELECT CAST(:kind AS TEXT), {alias}.id, {alias}.namespace_id, {spec.entity}, "
        f"{':other' if other is not None else spec.other}, {number}, :action, {before}, {after}, :at, :operation, "
        f":surface, :key_id, :key_prefix, :user_id, {spec.actor}, :call FROM {spec.table} {alias} WHERE {where}",
        {
            **params,
            "kind": kind,
            "action": action,
            "at": at or now(),
            "operation": change.operation,
            "surface": change.surface,
            "key_id": change.key_id,
            "key_prefix": change.key_prefix or "",
            "user_id": change.user_id,
            "call": change.call,
            "befores": json.dumps({str(k): v for k, v in (befores or {}).items()}, ensure_ascii=False),
            "other": other,
        },
    )


def ids_where(kind: str) -> str:
    """`where` for `snapshot`: the rows whose ids are in the JSON list `:ids`."""
    return f"{_TABLES[kind].alias}.id {in_json(':ids')}"


def snapshot_ids(kind: str, action: str, ids: Sequence[int], *, side: str, **options: Any) -> None:
    if ids:
        snapshot(kind, action, ids_where(kind), {"ids": as_json(ids)}, side=side, **options)


def states(kind: str, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """{id: the state a version would keep} of the rows of `kind` with these ids that exist."""
    if not ids:
        return {}
    spec = _TABLES[kind]
    found = db().execute(
        f"SELECT {spec.alias}.id, {spec.state} FROM {spec.table} {spec.alias} WHERE {ids_where(kind)}",
        {"ids": as_json(ids)},
    )
    return {ident: loads(state) for ident, state in found}


# --- reading versions -------------------------------------------------------------------------------


class Version(NamedTuple):
    id: int
    kind: str
    object_id: int
    namespace_id: int
    namespace: str
    entity_id: int | None
    other_entity_id: int | None
    version: int
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed_at: str
    operation: str
    surface: str
    key_id: int | None
    key_prefix: str
    user_id: int | None
    actor_id: str
    call: str

    @property
    def gone(self) -> bool:
        """Whether this version removed the object (delete, expire, merged away)."""
        return self.after is None and self.action != "create"

    @property
    def state(self) -> dict[str, Any]:
        """The object as this version left it (or, for a removal, as it was just before)."""
        return self.after if self.after is not None else (self.before or {})


_COLUMNS = (
    "SELECT v.id, v.kind, v.object_id, v.namespace_id, '', v.entity_id, v.other_entity_id, v.version, "
    "v.action, v.before, v.after, v.changed_at, v.operation, v.surface, v.key_id, v.key_prefix, v.user_id, "
    "v.actor_id, v.call FROM graph_version v "
)
# Answers list at most this many versions, newest first.
MAX_VERSIONS = 1000


def _version(row: Sequence[Any]) -> Version:
    values = list(row)
    values[9] = loads(values[9]) if values[9] is not None else None
    values[10] = loads(values[10]) if values[10] is not None else None
    values[11] = stored(values[11])
    return Version(*values)


def versions(kind: str, object_id: int, namespace_ids: Sequence[int]) -> list[Version]:
    """The versions of one object that lives (or lived) in one of `namespace_ids`, newest first."""
    found = db().execute(
        f"{_COLUMNS}WHERE v.kind = ? AND v.object_id = ? AND v.namespace_id {in_json()} "
        "ORDER BY v.version DESC LIMIT ?",
        (kind, object_id, as_json(namespace_ids), MAX_VERSIONS),
    )
    return _with_created([_version(row) for row in found])


def first_versions(kind: str, object_ids: Sequence[int], namespace_ids: Sequence[int]) -> dict[int, Version]:
    """{object id: its version 1} of these objects of `kind` that live (or lived) in one of
    `namespace_ids`: who wrote them (one look-up per id in the unique (kind, object_id, version)
    index). Its `after` is left as stored (a create's is null)."""
    if not object_ids:
        return {}
    found = db().execute(
        f"{_COLUMNS}WHERE v.kind = ? AND v.version = 1 AND v.object_id {in_json()} AND v.namespace_id {in_json()}",
        (kind, as_json(object_ids), as_json(namespace_ids)),
    )
    return {version.object_id: version for version in map(_version, found)}


def _with_created(found: list[Version]) -> list[Version]:
    """`found` with their namespaces' names, and each create's `after` filled in (see REMOVED):
    the `before` of the object's next version that keeps a whole state, else the object as it is
    now."""
    named = namespaces.names(sorted({v.namespace_id for v in found}))
    found = [v._replace(namespace=named.get(v.namespace_id, "")) for v in found]
    created = [v for v in found if v.action == "create" and v.after is None]
    if not created:
        return found
    # One statement for every create's next whole state, one per kind for the rows as they are.
    later = db().execute(_NEXT_STATES, (as_json([v.kind, v.object_id, v.version, v.id] for v in created),))
    filled: dict[int, dict[str, Any] | None] = {ident: loads(before) for ident, before in later if before is not None}
    for kind in {v.kind for v in created if v.id not in filled}:
        pending = [v for v in created if v.kind == kind and v.id not in filled]
        now_ = states(kind, [v.object_id for v in pending])
        filled.update((v.id, now_.get(v.object_id)) for v in pending)
    for version in created:
        state = filled.get(version.id)
        if state is not None and version.kind == OBSERVATION:
            filled[version.id] = {**state, "mentionCount": 1}  # as written; mentions are versions of their own
    return [v._replace(after=filled[v.id]) if v.id in filled else v for v in found]


_NEXT_STATES = (
    f"SELECT {typed('value ->> 3', 'bigint')}, (SELECT w.before FROM graph_version w WHERE w.kind = value ->> 0 "
    f"AND w.object_id = {typed('value ->> 1', 'bigint')} AND w.version > {typed('value ->> 2', 'integer')} "
    f"AND w.action != 'mention' AND w.before IS NOT NULL ORDER BY w.version LIMIT 1) FROM {json_rows()}"
)
# The ids of the entities whose kept `before` has a name (index version_entity_old_name: on SQLite
# named, as the planner would not pick it; on PostgreSQL `before ->> 'name'` is its expression).
if POSTGRES:
    _OLD_NAMES = (
        "SELECT DISTINCT object_id FROM graph_version WHERE namespace_id = ? AND (before ->> 'name') = ? "
        "AND kind = 'entity' AND NOT (action = 'create')"
    )
else:
    _OLD_NAMES = (
        "SELECT DISTINCT object_id FROM graph_version INDEXED BY version_entity_old_name "
        "WHERE namespace_id = ? AND JSON_EXTRACT(before, '$.name') = ? "
        "AND kind = 'entity' AND NOT (action = 'create')"
    )


def entities_named(namespace_id: int, name: str) -> list[int]:
    """Ids of the entities of the namespace that are, or were at some version, called `name`
    (the live one, renamed ones, deleted ones), oldest first."""
    live = db().execute("SELECT id FROM graph_entity WHERE namespace_id = ? AND name = ?", (namespace_id, name))
    ids = {row[0] for row in live}
    # Every name an entity had before its current one is the `before` of a rename, delete or
    # merge version (index version_entity_old_name, graph/models.py).
    past = db().execute(_OLD_NAMES, (namespace_id, name))
    ids.update(row[0] for row in past)
    return sorted(ids)


def entity_versions(namespace_id: int, entity_ids: Sequence[int]) -> list[Version]:
    """The versions of these entities and of the observations and relations that are or were
    theirs, newest first (at most MAX_VERSIONS)."""
    if not entity_ids:
        return []
    changes = "NOT (action = 'create')"  # matches the partial indexes (see graph/models.py)
    found = db().execute(
        f"WITH ids(id) AS {json_values(':ids')}, objects(kind, object_id) AS ("
        "SELECT 'entity', id FROM ids "
        "UNION SELECT 'observation', o.id FROM graph_observation o WHERE o.entity_id IN (SELECT id FROM ids) "
        "UNION SELECT 'relation', r.id FROM graph_relation r WHERE r.from_id IN (SELECT id FROM ids) "
        "UNION SELECT 'relation', r.id FROM graph_relation r WHERE r.to_id IN (SELECT id FROM ids) "
        f"UNION SELECT kind, object_id FROM graph_version WHERE entity_id IN (SELECT id FROM ids) AND {changes} "
        f"UNION SELECT kind, object_id FROM graph_version WHERE other_entity_id IN (SELECT id FROM ids) AND {changes}) "
        f"{_COLUMNS}JOIN objects ON objects.kind = v.kind AND objects.object_id = v.object_id "
        "WHERE v.namespace_id = :ns ORDER BY v.id DESC LIMIT :most",
        {"ids": as_json(entity_ids), "ns": namespace_id, "most": MAX_VERSIONS},
    )
    return _with_created([_version(row) for row in found])


def wire_id(kind: str, object_id: int) -> str:
    return f"{PREFIXES[kind]}{object_id}"


def parse_id(
    value: Any, *, field: str = "id", kinds: Sequence[str] = (OBSERVATION, ENTITY, RELATION)
) -> tuple[str, int]:
    """(kind, row id) of a wire id such as mem_12, ent_3 or rel_5 (InvalidArgument otherwise)."""
    if isinstance(value, str):
        prefix, _, digits = value.partition("_")
        kind = KINDS_BY_PREFIX.get(f"{prefix}_")
        if (
            kind is not None
            and kind in kinds
            and digits.isascii()
            and digits.isdigit()
            and not digits.startswith("0")
            and len(digits) < 20
        ):
            number = int(digits)
            if number <= MAX_ROW_ID:
                return kind, number
    examples = " or ".join(f"'{PREFIXES[kind]}123'" for kind in kinds)
    shown = repr(value) if len(repr(value)) <= 60 else f"{repr(value)[:57]}..."
    raise InvalidArgument(f"{field} must be an id such as {examples}, not {shown}", field=field)


_TIMES = ("createdAt", "expiresAt", "lastSeen", "validFrom", "validTo")
_ENTITY_REFS = ("entityId", "fromId", "toId")
# An observation's lineage: the observation it superseded, the message it was extracted from.
_OBSERVATION_REFS = ("supersedes", "source")


def wire_state(state: dict[str, Any] | None) -> dict[str, Any] | None:
    """A kept state as the wire shows it: times in ISO 8601, entity ids as ent_<n>."""
    if state is None:
        return None
    shown = dict(state)
    for name in _TIMES:
        if isinstance(shown.get(name), str):
            shown[name] = iso(shown[name])
    for name in _OBSERVATION_REFS:
        if isinstance(shown.get(name), int):
            shown[name] = wire_id(OBSERVATION, shown[name])
    for name in _ENTITY_REFS:
        if isinstance(shown.get(name), int):
            shown[name] = wire_id(ENTITY, shown[name])
    return shown


def wire(version: Version) -> dict[str, Any]:
    """One version as every surface shows it."""
    return {
        "id": wire_id(version.kind, version.object_id),
        "kind": version.kind,
        "namespace": version.namespace,
        "version": version.version,
        "action": version.action,
        "before": wire_state(version.before),
        "after": wire_state(version.after),
        "changedAt": iso(version.changed_at),
        "key": f"key:{version.key_prefix}" if version.key_prefix else "",
        "userId": version.user_id,
        "actorId": version.actor_id,
        "surface": version.surface,
        "operation": version.operation,
    }


class EntityHistory(TypedDict):
    name: str
    entities: list[str]
    versions: list[dict[str, Any]]


def entity_history(*, namespace: str, name: str) -> EntityHistory:
    """The history of an entity: its own versions (create, rename, merge, delete, restore) and
    those of its observations and relations, newest first (at most 1,000).

    `name` finds the entity called so now and any entity called so before (renamed, deleted or
    merged away, within the retention window); `entities` lists their ids (ent_<n>: what
    restore_memory takes to bring a deleted one back). EntityNotFound when there is none."""
    name = limits.name(name, field="name")
    ns_id = namespaces.lookup(namespace)
    ids = entities_named(ns_id, name) if ns_id is not None else []
    if not ids or ns_id is None:
        raise EntityNotFound(name)
    return {
        "name": name,
        "entities": [wire_id(ENTITY, ident) for ident in ids],
        "versions": [wire(version) for version in entity_versions(ns_id, ids)],
    }


# --- retention ---------------------------------------------------------------------------------------


def retention_cutoff() -> str:
    """Versions of objects removed before this time (stored format) are past the retention
    window: such objects can no longer be restored, and `purge_history` deletes their versions."""
    days = settings.MEMORYHUB_HISTORY_RETENTION_DAYS
    return stored_time(timezone.now() - timedelta(days=days))


def purge_gone(*, batch: int = 1000) -> int:
    """Delete, `batch` objects at a time, every version of the objects removed (deleted, expired,
    merged away) before the retention cutoff and not restored since; return how many versions.
    Live objects keep their whole history."""
    cutoff = retention_cutoff()
    removed = 0
    while True:
        with transaction.atomic():
            gone = (
                db()
                .execute(
                    f"SELECT v.kind, v.object_id FROM graph_version v WHERE {REMOVED} AND v.changed_at < ?1 "
                    "AND v.version = (SELECT MAX(w.version) FROM graph_version w WHERE w.kind = v.kind "
                    "AND w.object_id = v.object_id) "
                    "AND NOT (CASE v.kind WHEN 'observation' THEN EXISTS (SELECT 1 FROM graph_observation WHERE id = v.object_id) "
                    "WHEN 'entity' THEN EXISTS (SELECT 1 FROM graph_entity WHERE id = v.object_id) "
                    "ELSE EXISTS (SELECT 1 FROM graph_relation WHERE id = v.object_id) END) LIMIT ?2",
                    (cutoff, batch),
                )
                .fetchall()
            )
            if gone:
                removed += (
                    db()
                    .execute(
                        "DELETE FROM graph_version WHERE (kind, object_id) IN "
                        f"(SELECT value ->> 0, {typed('value ->> 1', 'bigint')} FROM {json_rows()})",
                        (as_json([list(row) for row in gone]),),
                    )
                    .rowcount
                )
        if len(gone) < batch:
            return removed


def forget(kind: str, object_id: int) -> int:
    """Delete every version of one object (an erasure: `purge: true`); return how many."""
    return db().execute("DELETE FROM graph_version WHERE kind = ? AND object_id = ?", (kind, object_id)).rowcount
