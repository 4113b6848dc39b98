"""Serialise a namespace's graph: the official server's JSONL, JSON, Mermaid and Graphviz DOT.

Exports stream in batches (an iterator of text chunks), so `export_memory` writes a 100k-entity
graph without holding it in memory. Order is creation order, which is also the official
server's file order, so an imported official file exports back to the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from graph.exceptions import InvalidArgument
from graph.sql import db, load_entities
from graph.types import EntityDict

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
        yield list(zip(ids, load_entities(ids), strict=True))
        after = ids[-1]


def _relation_batches(ns_id: int) -> Iterator[list[tuple[int, int, str, str, str]]]:
    """(from id, to id, from name, to name, type) in creation order."""
    after = 0
    conn = db()
    while True:
        rows = conn.execute(
            "SELECT r.id, r.from_id, r.to_id, f.name, t.name, ty.name FROM graph_relation r "
            "JOIN graph_entity f ON f.id = r.from_id JOIN graph_entity t ON t.id = r.to_id "
            "JOIN graph_typedict ty ON ty.id = r.type_id WHERE r.namespace_id = ? AND r.id > ? ORDER BY r.id LIMIT ?",
            (ns_id, after, BATCH),
        ).fetchall()
        if not rows:
            return
        yield [row[1:] for row in rows]
        after = rows[-1][0]


def _dumps(value: object) -> str:
    # Matches JavaScript's JSON.stringify: compact, non-ASCII kept as is.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _jsonl(ns_id: int) -> Iterator[str]:
    # The official format: entity lines, then relation lines, "\n" between them, none at the end.
    first = True
    for batch in _entity_batches(ns_id):
        for _, entity in batch:
            line = _dumps(
                {
                    "type": "entity",
                    "name": entity["name"],
                    "entityType": entity["entityType"],
                    "observations": entity["observations"],
                }
            )
            yield line if first else "\n" + line
            first = False
    for rows in _relation_batches(ns_id):
        for _, _, source, target, rel_type in rows:
            line = _dumps({"type": "relation", "from": source, "to": target, "relationType": rel_type})
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
        for _, _, source, target, rel_type in rows:
            yield ("" if first else ",") + _dumps({"from": source, "to": target, "relationType": rel_type})
            first = False
    yield "]}"


def _mermaid_label(text: str) -> str:
    # Inside a quoted Mermaid label only `"` is special; Mermaid's entity code is #quot;.
    return text.replace('"', "#quot;").replace("\n", " ")


def _mermaid(ns_id: int) -> Iterator[str]:
    yield "graph LR\n"
    for batch in _entity_batches(ns_id):
        for entity_id, entity in batch:
            yield f'  e{entity_id}["{_mermaid_label(entity["name"])}<br/>({_mermaid_label(entity["entityType"])})"]\n'
    for rows in _relation_batches(ns_id):
        for from_id, to_id, _, _, rel_type in rows:
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
    for rows in _relation_batches(ns_id):
        for _, _, source, target, rel_type in rows:
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
