"""The history of every memory, observation, entity and relation: one `graph_version` row per
change, with the state before and after, when, who and through which surface.

The stores record versions in the transaction of the change itself (a change and its version
commit together or not at all); who and through which surface come from the change the runner
opened (`access.changes.current()`). One statement per batch: a call that writes 500 observations
records 500 versions with one INSERT.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypedDict

from access import changes
from graph.sql import as_json, db, now

OBSERVATION = "observation"
ENTITY = "entity"
RELATION = "relation"

# What a version says happened.
ACTIONS = ("create", "update", "merge", "rename", "delete", "expire", "restore", "mention", "purge")


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
    number = (
        "1"
        if action == "create"
        else "COALESCE((SELECT MAX(v.version) FROM graph_version v WHERE v.kind = ?1 AND v.object_id = value ->> 0), 0) + 1"
    )
    db().execute(
        "INSERT INTO graph_version(kind, object_id, namespace_id, entity_id, other_entity_id, version, action, "
        "before, after, changed_at, operation, surface, key_id, key_prefix, user_id, actor_id, call) "
        f"SELECT ?1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, {number}, ?2, value ->> 4, value ->> 5, "
        "?3, ?4, ?5, ?6, ?7, ?8, value ->> 6, ?9 FROM json_each(?10)",
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


def _json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)
