"""Read the official memory server's files: `memory.jsonl` and the legacy `memory.json`.

The official server writes one JSON object per line (`{"type":"entity",...}` or
`{"type":"relation",...}`); its legacy `memory.json` holds the same lines under the old name.
A single JSON document `{"entities": [...], "relations": [...]}` (a read_graph dump) is accepted
too. Parsing is strict: a bad line is an error naming the line, and nothing is imported.

MemoryHub's own exports add validity time (graph/exporters.py): an entity's `observationDetails`
and a relation's `validFrom`/`validTo` are read too, so closed facts and their lineage come back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.exceptions import InvalidArgument
from graph.types import EntityDict, RelationDict


@dataclass
class ParsedGraph:
    entities: list[EntityDict] = field(default_factory=list)
    relations: list[RelationDict] = field(default_factory=list)
    # Free memories of a MemoryHub export (graph/exporters.py), checked by `_memory`.
    memories: list[dict[str, Any]] = field(default_factory=list)


_MEMORY_TIMES = ("expiresAt", "validFrom", "validTo")
_MEMORY_IDS = ("id", "supersedes", "sourceId")


def _memory(record: dict[str, Any], where: str) -> dict[str, Any]:
    """A free memory record: text, actorId, tags, times (ISO 8601 or null), ids (`mem_<n>` of the
    file, or null), extractedBy."""
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(f"{where}: 'text' must be a non-empty string")
    actor, tags, model = record.get("actorId") or "", record.get("tags") or [], record.get("extractedBy") or ""
    if not isinstance(actor, str) or not isinstance(model, str):
        raise InvalidArgument(f"{where}: 'actorId' and 'extractedBy' must be strings")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise InvalidArgument(f"{where}: 'tags' must be a list of strings")
    memory: dict[str, Any] = {"text": text, "actorId": actor, "tags": tags, "extractedBy": model}
    for key in _MEMORY_TIMES + _MEMORY_IDS:
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidArgument(f"{where}: '{key}' must be a string or null")
        memory[key] = value
    return memory


def _entity(record: dict[str, Any], where: str) -> EntityDict:
    name, entity_type, observations = record.get("name"), record.get("entityType"), record.get("observations", [])
    if not isinstance(name, str) or not isinstance(entity_type, str):
        raise InvalidArgument(f"{where}: an entity needs string 'name' and 'entityType'")
    if not isinstance(observations, list) or not all(isinstance(o, str) for o in observations):
        raise InvalidArgument(f"{where}: 'observations' must be a list of strings")
    entity: EntityDict = {"name": name, "entityType": entity_type, "observations": observations}
    details = record.get("observationDetails")
    if details is not None:
        if not isinstance(details, list) or not all(
            isinstance(d, dict)
            and isinstance(d.get("text"), str)
            and all(
                d.get(key) is None or isinstance(d.get(key), str)
                for key in ("id", "validFrom", "validTo", "supersedes")
            )
            for d in details
        ):
            raise InvalidArgument(
                f"{where}: 'observationDetails' must be a list of objects with a string 'text' and string or null "
                "'id', 'validFrom', 'validTo', 'supersedes'"
            )
        entity["observationDetails"] = details
    return entity


def _relation(record: dict[str, Any], where: str) -> RelationDict:
    values = [record.get(key) for key in ("from", "to", "relationType")]
    if not all(isinstance(v, str) for v in values):
        raise InvalidArgument(f"{where}: a relation needs string 'from', 'to' and 'relationType'")
    relation: RelationDict = {"from": values[0], "to": values[1], "relationType": values[2]}  # type: ignore[typeddict-item]
    for key in ("validFrom", "validTo"):
        if key in record:
            value = record[key]
            if value is not None and not isinstance(value, str):
                raise InvalidArgument(f"{where}: '{key}' must be an ISO 8601 time or null")
            relation[key] = value
    return relation


def parse_text(text: str) -> ParsedGraph:
    graph = ParsedGraph()
    stripped = text.strip()
    if not stripped:
        return graph
    if stripped.startswith("{"):
        try:
            document = json.loads(stripped)
        except json.JSONDecodeError:
            document = None  # not one document: read it as JSONL below
        if isinstance(document, dict) and "type" not in document:
            entities, relations = document.get("entities", []), document.get("relations", [])
            if not isinstance(entities, list) or not isinstance(relations, list):
                raise InvalidArgument("a JSON graph document needs 'entities' and 'relations' lists")
            for i, record in enumerate(entities):
                graph.entities.append(_entity(record if isinstance(record, dict) else {}, f"entities[{i}]"))
            for i, record in enumerate(relations):
                graph.relations.append(_relation(record if isinstance(record, dict) else {}, f"relations[{i}]"))
            memories = document.get("memories", [])
            if not isinstance(memories, list):
                raise InvalidArgument("'memories' must be a list")
            for i, record in enumerate(memories):
                graph.memories.append(_memory(record if isinstance(record, dict) else {}, f"memories[{i}]"))
            return graph
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise InvalidArgument(f"{where}: expected a JSON object")
        kind = record.get("type")
        if kind == "entity":
            graph.entities.append(_entity(record, where))
        elif kind == "relation":
            graph.relations.append(_relation(record, where))
        elif kind == "memory":
            graph.memories.append(_memory(record, where))
        else:
            raise InvalidArgument(f"{where}: 'type' must be 'entity', 'relation' or 'memory' (got {kind!r})")
    return graph


def parse_file(path: Path) -> ParsedGraph:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"{path} is not UTF-8 text") from None
    return parse_text(text)
