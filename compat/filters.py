"""MemOS' memory `filter`, the part of it that has a meaning here.

MemOS filters are nested `and` / `or` lists of conditions on memory fields:

    {"and": [{"user_id": "u1"}, {"created_at": {"gt": "2024-01-01"}}]}

A plain object with several keys means all of them. Supported fields and operators:

| field | what it is here | operators |
|---|---|---|
| `id` | the memory id (`mem_<n>`) | equal, `in` |
| `user_id` | the actor the memory was recorded with | equal, `in` |
| `session_id` | the `session:<id>` tag /product/add records | equal, `in` |
| `cube_id`, `user_name` | the namespace | equal, `in` |
| `memory_type` | always `LongTermMemory` | equal, `in` |
| `tags` | tags the memory carries (all of those given) | equal / list, `contains` |
| `created_at`, `updated_at` | ISO 8601 date or datetime (UTC unless it says) | `gt`, `gte`, `lt`, `lte`, equal |

Anything else is refused with a message naming it, rather than ignored: a filter silently
dropped would return memories the caller asked to exclude.

A parsed filter is evaluated two ways, with the same meaning: `matches(memory)` on search hits and
listed memories (dicts with `id`, `namespace`, `tags`, `actorId`, `createdAt`), and `where()`, the
graph's description of the same conditions (`graph.observations`), which the graph compiles for
listings that page in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from graph import observations
from graph.exceptions import InvalidArgument
from memory.wire import parse_memory_id

MEMORY_TYPE = "LongTermMemory"
SESSION_TAG = "session:"
# Deeper than any real filter; bounds the work a hostile one can cause.
MAX_DEPTH = 8
MAX_CONDITIONS = 100

_EQUALITY_FIELDS = {"id", "user_id", "session_id", "cube_id", "user_name", "memory_type"}
_TIME_FIELDS = {"created_at", "updated_at"}
_FIELDS = _EQUALITY_FIELDS | _TIME_FIELDS | {"tags"}
_COMPARISONS = ("gt", "gte", "lt", "lte")


def _fail(message: str) -> InvalidArgument:
    return InvalidArgument(f"filter: {message}", field="filter")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # "eq", "in", "contains", "gt", "gte", "lt", "lte"
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Group:
    every: bool  # True: and, False: or
    parts: tuple[Condition | Group, ...]


Node = Condition | Group


# --- parsing --------------------------------------------------------------------------------------


def parse(value: Any) -> Group | None:
    """The filter as a tree, or None when there is none (null or {}). InvalidArgument otherwise."""
    if value is None or value == {}:
        return None
    counter = [0]
    return _group(value, depth=0, counter=counter)


def _group(value: Any, *, depth: int, counter: list[int]) -> Group:
    if depth > MAX_DEPTH:
        raise _fail(f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(value, dict) or not value:
        raise _fail('each part must be a non-empty object such as {"user_id": "u1"}')
    parts: list[Node] = []
    for key, inner in value.items():
        if key in ("and", "or"):
            if not isinstance(inner, list) or not inner:
                raise _fail(f"'{key}' must be a non-empty list of conditions")
            parts.append(Group(key == "and", tuple(_group(item, depth=depth + 1, counter=counter) for item in inner)))
        else:
            parts.append(_condition(key, inner))
            counter[0] += 1
            if counter[0] > MAX_CONDITIONS:
                raise _fail(f"more than {MAX_CONDITIONS} conditions")
    return Group(True, tuple(parts))


def _scalar(field: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(f"'{field}' must be compared with a string or a number, not {type(value).__name__}")
    return value


def _time(field: str, value: Any) -> datetime:
    """An ISO 8601 date or datetime, in UTC (UTC when it names no zone)."""
    if not isinstance(value, str):
        raise _fail(f"'{field}' must be compared with an ISO 8601 date such as '2024-01-01'")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _fail(f"'{field}': {value!r} is not an ISO 8601 date or datetime") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _condition(field: str, value: Any) -> Condition:
    if field not in _FIELDS:
        supported = ", ".join(sorted(_FIELDS))
        raise _fail(f"unsupported field {field!r}; supported: {supported} (combined with 'and' / 'or')")
    if field == "tags":
        if isinstance(value, dict):
            if set(value) != {"contains"}:
                raise _fail("'tags' supports only {\"contains\": ...}")
            value = value["contains"]
        tags = [value] if isinstance(value, str) else value
        if not isinstance(tags, list) or not tags or not all(isinstance(tag, str) for tag in tags):
            raise _fail("'tags' must be a tag or a non-empty list of tags")
        return Condition("tags", "contains", tuple(tags))
    if isinstance(value, dict):
        if len(value) != 1:
            raise _fail(f"'{field}' takes one operator per condition, e.g. {{\"gt\": ...}}")
        ((op, operand),) = value.items()
    elif isinstance(value, list):
        op, operand = "in", value
    else:
        op, operand = "eq", value
    if field in _TIME_FIELDS:
        if op not in (*_COMPARISONS, "eq"):
            raise _fail(f"'{field}' supports gt, gte, lt, lte and equality, not {op!r}")
        return Condition(field, op, (_time(field, operand),))
    if op == "in":
        if not isinstance(operand, list) or not operand:
            raise _fail(f"'{field}': 'in' takes a non-empty list")
        return Condition(field, "in", tuple(_scalar(field, item) for item in operand))
    if op != "eq":
        raise _fail(f"'{field}' supports equality and 'in', not {op!r}")
    return Condition(field, "eq", (_scalar(field, operand),))


# --- evaluation on memories as dicts --------------------------------------------------------------


def _moment(iso_value: str | None) -> datetime | None:
    return None if iso_value is None else datetime.fromisoformat(iso_value).astimezone(UTC)


def matches(node: Node | None, memory: Any) -> bool:
    """Whether a memory (a search hit or a listed memory) passes the filter."""
    if node is None:
        return True
    if isinstance(node, Group):
        results = (matches(part, memory) for part in node.parts)
        return all(results) if node.every else any(results)
    tags = set(memory["tags"])
    if node.field == "tags":
        return all(tag in tags for tag in node.values)
    if node.field in _TIME_FIELDS:
        # Hits carry createdAt to the second; the database compares what it stores.
        moment = _moment(memory["createdAt"])
        return moment is not None and _compare(moment, node.op, node.values[0])
    wanted = {str(value) for value in node.values}
    if node.field == "session_id":
        return any(f"{SESSION_TAG}{value}" in tags for value in wanted)
    actual = {
        "id": memory["id"],
        "user_id": memory["actorId"],
        "cube_id": memory["namespace"],
        "user_name": memory["namespace"],
        "memory_type": MEMORY_TYPE,
    }[node.field]
    return actual in wanted


def _compare(left: datetime, op: str, right: datetime) -> bool:
    if op == "eq":
        return left == right
    return {"gt": left > right, "gte": left >= right, "lt": left < right, "lte": left <= right}[op]


# --- as the graph's filter description ------------------------------------------------------------


def where(node: Node) -> observations.Where:
    """The filter as the graph's description of conditions on an observation, which the graph
    compiles for listings that page in the database."""
    if isinstance(node, Group):
        parts = tuple(where(part) for part in node.parts)
        return observations.AllOf(parts) if node.every else observations.AnyOf(parts)
    values = node.values
    if node.field == "tags":
        return observations.Test("tags", "all", values)
    if node.field in _TIME_FIELDS:
        # Memories are never edited, so updated_at is created_at.
        return observations.Test("created_at", cast(observations.Op, node.op), values)
    wanted = [str(value) for value in values]
    if node.field == "id":
        ids = []
        for value in wanted:
            try:
                ids.append(parse_memory_id(value))
            except InvalidArgument:
                continue  # not one of our ids (a MemOS uuid): it matches nothing
        return observations.Test("id", "in", tuple(ids))
    if node.field == "user_id":
        return observations.Test("actor", "in", tuple(wanted))
    if node.field == "session_id":
        return observations.Test("tags", "any", tuple(f"{SESSION_TAG}{value}" for value in wanted))
    if node.field in ("cube_id", "user_name"):
        return observations.Test("namespace", "in", tuple(wanted))
    # memory_type: every memory here is long-term.
    return MEMORY_TYPE in wanted
