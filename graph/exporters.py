"""Serialise a namespace's graph: the official server's JSONL, JSON, Mermaid and Graphviz DOT.

Exports stream in batches (an iterator of text chunks), so `export_memory` writes a 100k-entity
graph without holding it in memory. Order is creation order, which is also the official
server's file order, so an imported official file exports back to the same bytes.

Validity time survives a round trip (graph/validity.py): in `jsonl` and `json`, an entity with a
closed, superseded or dated observation gains `observationDetails` (every observation with its
id, validFrom, validTo and the id it supersedes; `observations` stays the current texts), and a
closed or dated relation gains `validFrom` and `validTo`. A graph without them (an official file)
exports exactly as before. Mermaid and DOT draw what holds now.

Free memories (observations without an entity) follow the relations, one `{"type":"memory"}`
line each in `jsonl` (a `memories` list in `json`), with their actor, tags, expiry, validity and
lineage (`supersedes`, `sourceId`: ids of this file, `mem_<n>`); a namespace without any exports
as before. The official server skips lines of other types when it reads a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from graph.exceptions import InvalidArgument
from graph.reads import load_entities
from graph.sql import as_json, db, in_json, now
from graph.types import EntityDict
from kernel.sql import iso

FORMATS = ("jsonl", "json", "mermaid", "dot")
BATCH = 1000


def _entity_batches(ns_id: int) -> Iterator[list[tuple[int, EntityDict]]]:
    after = 0
    conn = db()
    while True:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM graph_entity WHERE namespace_id = ? AND id > ? ORDER BY id LIMIT ?",
                (ns_id, after, BATCH),
            )
        ]
        if not ids:
            return
        entities = load_entities(ids)
        details = _observation_details(ids)
        for ident, entity in zip(ids, entities, strict=True):
            if ident in details:
                entity["observationDetails"] = details[ident]  # type: ignore[typeddict-item]
        yield list(zip(ids, entities, strict=True))
        after = ids[-1]


def _observation_details(ids: list[int]) -> dict[int, list[dict[str, object]]]:
    """{entity id: every live observation with its validity and lineage} of those of `ids` that
    have a closed, superseded or dated observation (the others export as the official format)."""
    rows = db().execute(
        "SELECT o.entity_id, o.id, o.body, coalesce(o.valid_from, o.created_at), o.valid_to, o.supersedes_id "
        "FROM graph_observation o WHERE o.entity_id IN (SELECT DISTINCT entity_id FROM graph_observation "
        f"WHERE entity_id {in_json('?1')} "
        "AND (valid_from IS NOT NULL OR valid_to IS NOT NULL OR supersedes_id IS NOT NULL)) "
        "AND (o.expires_at IS NULL OR o.expires_at > ?2) ORDER BY o.id",
        (as_json(ids), now()),
    )
    found: dict[int, list[dict[str, object]]] = {}
    for entity, ident, body, valid_from, valid_to, supersedes in rows:
        found.setdefault(entity, []).append(
            {
                "id": f"mem_{ident}",
                "text": body,
                "validFrom": iso(valid_from),
                "validTo": iso(valid_to),
                "supersedes": f"mem_{supersedes}" if supersedes is not None else None,
            }
        )
    return found


# (from id, to id, from name, to name, type, valid from, valid to), in creation order.
RelationRow = tuple[int, int, str, str, str, str | None, str | None]


def _relation_batches(ns_id: int, *, current_only: bool = False) -> Iterator[list[RelationRow]]:
    """Relation rows in creation order; every one (with validity), or those holding now.

    Validity is given (valid from, else None) on every row of a namespace with a closed or dated
    relation, so the periods of a history come back whole; in one without (an official file's),
    none, so it exports as the official format."""
    after = 0
    conn = db()
    timed = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM graph_relation WHERE namespace_id = ?1 AND valid_to IS NOT NULL) "
        "OR EXISTS (SELECT 1 FROM graph_relation WHERE namespace_id = ?1 AND valid_from IS NOT NULL)",
        (ns_id,),
    ).fetchone()[0]
    valid_from = "coalesce(r.valid_from, r.created_at)" if timed else "NULL"
    held = " AND (r.valid_to IS NULL OR r.valid_to > :now) AND coalesce(r.valid_from, r.created_at) <= :now"
    while True:
        rows = conn.execute(
            f"SELECT r.id, r.from_id, r.to_id, f.name, t.name, ty.name, {valid_from}, r.valid_to FROM graph_relation r "
            "JOIN graph_entity f ON f.id = r.from_id JOIN graph_entity t ON t.id = r.to_id "
            "JOIN graph_typedict ty ON ty.id = r.type_id WHERE r.namespace_id = :ns AND r.id > :after"
            f"{held if current_only else ''} ORDER BY r.id LIMIT :batch",
            {"ns": ns_id, "after": after, "batch": BATCH, "now": now()},
        ).fetchall()
        if not rows:
            return
        yield [row[1:] for row in rows]
        after = rows[-1][0]


def _relation_record(
    source: str, target: str, rel_type: str, valid_from: str | None, valid_to: str | None
) -> dict[str, object]:
    record: dict[str, object] = {"from": source, "to": target, "relationType": rel_type}
    if valid_from is not None or valid_to is not None:
        record["validFrom"] = iso(valid_from)
        record["validTo"] = iso(valid_to)
    return record


def _memory_batches(ns_id: int) -> Iterator[list[dict[str, object]]]:
    """The namespace's live free memories in creation order, as file records."""
    after = 0
    conn = db()
    while True:
        rows = conn.execute(
            # The index graph_observation_ns_recent (namespace_id, id) WHERE entity_id IS NULL.
            "SELECT o.id, o.body, o.actor_id, o.tags, o.expires_at, coalesce(o.valid_from, o.created_at), "
            "o.valid_to, o.supersedes_id, o.source_id, o.extracted_by FROM graph_observation o "
            "WHERE o.namespace_id = ? AND o.entity_id IS NULL AND o.id > ? "
            "AND (o.expires_at IS NULL OR o.expires_at > ?) ORDER BY o.id LIMIT ?",
            (ns_id, after, now(), BATCH),
        ).fetchall()
        if not rows:
            return
        yield [
            {
                "id": f"mem_{ident}",
                "text": body,
                "actorId": actor,
                "tags": (json.loads(tags) if isinstance(tags, str) else tags) if tags else [],
                "expiresAt": iso(expires),
                "validFrom": iso(valid_from),
                "validTo": iso(valid_to),
                "supersedes": f"mem_{supersedes}" if supersedes is not None else None,
                "sourceId": f"mem_{source}" if source is not None else None,
                "extractedBy": extracted or None,
            }
            for ident, body, actor, tags, expires, valid_from, valid_to, supersedes, source, extracted in rows
        ]
        after = rows[-1][0]


def _dumps(value: object) -> str:
    # Matches JavaScript's JSON.stringify: compact, non-ASCII kept as is.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _jsonl(ns_id: int) -> Iterator[str]:
    # The official format: entity lines, then relation lines, "\n" between them, none at the end.
    first = True
    for batch in _entity_batches(ns_id):
        for _, entity in batch:
            record: dict[str, object] = {
                "type": "entity",
                "name": entity["name"],
                "entityType": entity["entityType"],
                "observations": entity["observations"],
            }
            if "observationDetails" in entity:
                record["observationDetails"] = entity["observationDetails"]
            line = _dumps(record)
            yield line if first else "\n" + line
            first = False
    for rows in _relation_batches(ns_id):
        for _, _, source, target, rel_type, valid_from, valid_to in rows:
            line = _dumps({"type": "relation", **_relation_record(source, target, rel_type, valid_from, valid_to)})
            yield line if first else "\n" + line
            first = False
    for memories in _memory_batches(ns_id):
        for memory in memories:
            line = _dumps({"type": "memory", **memory})
            yield line if first else "\n" + line
            first = False


def _json(ns_id: int) -> Iterator[str]:
    yield '{"entities":['
    first = True
    for batch in _entity_batches(ns_id):
        for _, entity in batch:
            yield ("" if first else ",") + _dumps(entity)
            first = False
    yield '],"relations":['
    first = True
    for rows in _relation_batches(ns_id):
        for _, _, source, target, rel_type, valid_from, valid_to in rows:
            yield ("" if first else ",") + _dumps(_relation_record(source, target, rel_type, valid_from, valid_to))
            first = False
    yield "]"
    first = True
    for memories in _memory_batches(ns_id):
        for memory in memories:
            yield (',"memories":[' if first else ",") + _dumps(memory)
            first = False
    yield "}" if first else "]}"


def official_chunks(ns_id: int | None) -> Iterator[str]:
    """The namespace as the official memory server writes its `memory.jsonl`, and nothing more:
    entity lines with their current observations, then the relations that hold now, without
    validity, `observationDetails` or free memories (the `jsonl` format keeps those, for a full
    round trip; this one is for handing the graph to the official server or another tool that
    knows only its format)."""
    if ns_id is None:
        return
    first = True
    for batch in _entity_batches(ns_id):
        for _, entity in batch:
            record = {"type": "entity", "name": entity["name"], "entityType": entity["entityType"]}
            line = _dumps({**record, "observations": entity["observations"]})
            yield line if first else "\n" + line
            first = False
    for rows in _relation_batches(ns_id, current_only=True):
        for _, _, source, target, rel_type, _, _ in rows:
            line = _dumps({"type": "relation", "from": source, "to": target, "relationType": rel_type})
            yield line if first else "\n" + line
            first = False


def _mermaid_label(text: str) -> str:
    # Inside a quoted Mermaid label only `"` is special; Mermaid's entity code is #quot;.
    return text.replace('"', "#quot;").replace("\n", " ")


def _mermaid(ns_id: int) -> Iterator[str]:
    yield "graph LR\n"
    for batch in _entity_batches(ns_id):
        for entity_id, entity in batch:
            yield f'  e{entity_id}["{_mermaid_label(entity["name"])}<br/>({_mermaid_label(entity["entityType"])})"]\n'
    for rows in _relation_batches(ns_id, current_only=True):
        for from_id, to_id, _, _, rel_type, _, _ in rows:
            yield f'  e{from_id} -->|"{_mermaid_label(rel_type)}"| e{to_id}\n'


def _dot_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "")
    return f'"{escaped}"'


def _dot(ns_id: int) -> Iterator[str]:
    yield "digraph memory {\n  node [shape=box];\n"
    for batch in _entity_batches(ns_id):
        for _, entity in batch:
            label = _dot_string(f"{entity['name']}\n({entity['entityType']})")
            yield f"  {_dot_string(entity['name'])} [label={label}];\n"
    for rows in _relation_batches(ns_id, current_only=True):
        for _, _, source, target, rel_type, _, _ in rows:
            yield f"  {_dot_string(source)} -> {_dot_string(target)} [label={_dot_string(rel_type)}];\n"
    yield "}\n"


_EMPTY = {
    "jsonl": "",
    "json": '{"entities":[],"relations":[]}',
    "mermaid": "graph LR\n",
    "dot": "digraph memory {\n}\n",
}
_WRITERS = {"jsonl": _jsonl, "json": _json, "mermaid": _mermaid, "dot": _dot}


def export_chunks(ns_id: int | None, fmt: str) -> Iterator[str]:
    if fmt not in _WRITERS:
        raise InvalidArgument(f"format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    if ns_id is None:
        return iter([_EMPTY[fmt]])
    return _WRITERS[fmt](ns_id)
