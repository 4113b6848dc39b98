"""The history of memories as the memory operations show it: read the versions of a memory (or
of an entity or relation, by its id), change a memory's text in place, restore a memory (or an
entity or relation) to one of its versions or from its deletion.

The graph owns the rows and their versions (graph/history.py records them in every write,
graph.services updates and restores); what is decided here is what the callers may name (ids
`mem_<n>`, `ent_<n>`, `rel_<n>`), the checks of text and version, and the shape on the wire. The
runner (`access.operations`) gives every function the namespaces the caller's grants allow
({id: name}: read for the history, write for update and restore): an object outside them
answers as one that does not exist.

Time (graph/validity.py): a memory's versions include "close" (its validity ended: superseded,
invalidated). A closed memory is a past fact: `update_memory` refuses it (Conflict: a past fact is
corrected with `restore_memory`, or the current one superseded). `restore_memory` brings a
memory's validity back with the version's fields: to a version where it was closed, it is closed
as then; to one where it was current, it is reopened, unless a successor has replaced it since:
then it is refused (Conflict naming the successor) rather than leaving two current facts or
silently closing the successor, which another client may be reading as the current fact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from django.db import transaction

from graph import history, observations, validity
from graph import limits as store_limits
from graph import services as graph_services
from graph.exceptions import Conflict, NotFound
from graph.sql import now
from kernel.errors import InvalidArgument
from kernel.sql import iso
from memory.wire import stored


class History(TypedDict):
    id: str
    versions: list[dict[str, Any]]


def memory_history(*, namespaces: Mapping[int, str], id: Any) -> History:
    """The versions of a memory or observation (`mem_<n>`), an entity (`ent_<n>`: its own versions
    only; the entity's whole history is `entity_history`) or a relation (`rel_<n>`) in
    `namespaces`, newest first. Deleted objects keep their versions for the retention window.
    NotFound when there are none within reach."""
    kind, object_id = history.parse_id(id)
    found = history.versions(kind, object_id, list(namespaces))
    if not found:
        raise NotFound(f"no history for {history.wire_id(kind, object_id)}", id=history.wire_id(kind, object_id))
    return {"id": history.wire_id(kind, object_id), "versions": [history.wire(version) for version in found]}


class Author(TypedDict):
    # The key that wrote it ("key:<prefix>", "" when none: a session or a command), the surface
    # ("mcp", "rest", "console", ...), and when (ISO 8601 UTC).
    key: str
    surface: str
    changedAt: str | None
    # The user whose key or session it was (null: none, e.g. a command).
    userId: int | None


# Ids one authors call reads (a page of search hits or a listing).
MAX_AUTHOR_IDS = 1000


def memory_authors(*, namespaces: Mapping[int, str], ids: Any) -> dict[str, Author]:
    """{id: who wrote it} of the memories or observations (`mem_<n>`) of `namespaces` among `ids`,
    from their first versions; ids outside reach, without a recorded first version or not memory
    ids are left out."""
    if not isinstance(ids, list | tuple) or len(ids) > MAX_AUTHOR_IDS:
        raise InvalidArgument(f"ids must be a list of at most {MAX_AUTHOR_IDS} memory ids", field="ids")
    wanted: list[int] = []
    for value in ids:
        try:
            wanted.append(history.parse_id(value, kinds=(history.OBSERVATION,))[1])
        except InvalidArgument:
            continue
    if not namespaces:
        return {}
    found = history.first_versions(history.OBSERVATION, wanted, list(namespaces))
    return {
        history.wire_id(history.OBSERVATION, object_id): {
            "key": f"key:{version.key_prefix}" if version.key_prefix else "",
            "surface": version.surface,
            "changedAt": iso(version.changed_at),
            "userId": version.user_id,
        }
        for object_id, version in found.items()
    }


class UpdatedMemory(TypedDict):
    id: str
    text: str
    namespace: str
    version: int | None


def update_memory(*, namespaces: Mapping[int, str], id: Any, text: Any) -> UpdatedMemory:
    """Give a live memory or observation of `namespaces` new text; its id stays. The keyword index
    follows at once; its vector is made again (or queued); the history records the update.
    Empty or oversized text and ids not within reach are refused and change nothing; so is a
    closed memory (a past fact: Conflict)."""
    _, object_id = history.parse_id(id, kinds=(history.OBSERVATION,))
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument("text must be a non-empty string", field="text")
    checked = store_limits.observation(text, field="text")
    row = observations.live_row(object_id, list(namespaces)) if namespaces else None
    if row is not None and row.valid_to is not None and stored(row.valid_to) <= now():
        label = history.wire_id(history.OBSERVATION, object_id)
        later = validity.successor(object_id)
        by = f" (superseded by {history.wire_id(history.OBSERVATION, later)})" if later is not None else ""
        raise Conflict(
            f"{label} is a past fact{by}: past facts are corrected with restore_memory (to one of their "
            "versions), or supersede the current one"
        )
    updated = graph_services.update_observation(namespace_ids=list(namespaces), observation_id=object_id, text=checked)
    return {
        "id": history.wire_id(history.OBSERVATION, object_id),
        "text": checked,
        "namespace": namespaces[updated["namespace_id"]],
        "version": updated["version"],
    }


def restore_memory(*, namespaces: Mapping[int, str], id: Any, version: Any = None) -> graph_services.Restored:
    """Restore a memory or observation (`mem_<n>`), an entity (`ent_<n>`) or a relation (`rel_<n>`)
    of `namespaces`: without `version` a deleted one comes back as it was (an entity with what the
    same call deleted with it); with `version` it gets that version's fields back. See
    graph.services.restore for the errors; each changes nothing.

    A memory's validity comes back with the version (the module says how): Conflict naming the
    successor when the version was current and another memory has superseded it since."""
    kind, object_id = history.parse_id(id)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise InvalidArgument(f"version must be a version number (1 or more), not {version!r}", field="version")
    ns_ids = list(namespaces)
    if kind != history.OBSERVATION:
        return graph_services.restore(namespace_ids=ns_ids, kind=kind, object_id=object_id, version=version)
    with transaction.atomic():
        state = _restored_state(ns_ids, object_id, version)
        row = observations.live_row(object_id, ns_ids)
        if state is not None and row is not None:
            # Before the restore, so that its version records the validity brought back.
            _bring_back_validity(object_id, state)
        restored = graph_services.restore(namespace_ids=ns_ids, kind=kind, object_id=object_id, version=version)
        if state is not None and row is None:
            # An undeleted row is inserted without its validity and lineage: they come back now.
            _bring_back_validity(object_id, state, lineage=True)
            after = history.states(history.OBSERVATION, [object_id]).get(object_id)
            restored = {**restored, "state": history.wire_state(after)}
    return restored


def _restored_state(ns_ids: list[int], object_id: int, version: int | None) -> dict[str, Any] | None:
    """The state a restore of the memory brings back (None: graph.services.restore will refuse)."""
    past = history.versions(history.OBSERVATION, object_id, ns_ids)
    if version is None:
        return dict(past[0].state) if past else None
    found = [v for v in past if v.version == version and v.action != "mention"]
    return dict(found[0].state) if found else None


def _bring_back_validity(object_id: int, state: dict[str, Any], *, lineage: bool = False) -> None:
    valid_from, valid_to = state.get("validFrom"), state.get("validTo")
    if "validFrom" not in state:
        return  # a version from before validity time: the memory keeps what it has
    if valid_to is None:
        later = validity.successor(object_id)
        if later is not None:
            label = history.wire_id(history.OBSERVATION, object_id)
            successor = history.wire_id(history.OBSERVATION, later)
            raise Conflict(
                f"{label} was superseded by {successor}: restoring a version where {label} was current would "
                f"make two current facts; supersede {successor} with this text instead, or restore a version of "
                f"{label} where it was closed"
            )
    validity.set_span(
        object_id,
        valid_from,
        valid_to,
        supersedes_id=state.get("supersedes") if lineage else None,
        source_id=state.get("source") if lineage else None,
        extracted_by=state.get("extractedBy") if lineage else None,
    )
