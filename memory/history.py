"""The history of memories as the memory operations show it: read the versions of a memory (or
of an entity or relation, by its id), change a memory's text in place, restore a memory (or an
entity or relation) to one of its versions or from its deletion.

The graph owns the rows and their versions (graph/history.py records them in every write,
graph.services updates and restores); what is decided here is what the callers may name (ids
`mem_<n>`, `ent_<n>`, `rel_<n>`), the checks of text and version, and the shape on the wire. The
runner (`access.operations`) gives every function the namespaces the caller's grants allow
({id: name}: read for the history, write for update and restore): an object outside them
answers as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from graph import history
from graph import limits as store_limits
from graph import services as graph_services
from graph.exceptions import NotFound
from kernel.errors import InvalidArgument


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


class UpdatedMemory(TypedDict):
    id: str
    text: str
    namespace: str
    version: int | None


def update_memory(*, namespaces: Mapping[int, str], id: Any, text: Any) -> UpdatedMemory:
    """Give a live memory or observation of `namespaces` new text; its id stays. The keyword index
    follows at once; its vector is made again (or queued); the history records the update.
    Empty or oversized text and ids not within reach are refused and change nothing."""
    _, object_id = history.parse_id(id, kinds=(history.OBSERVATION,))
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument("text must be a non-empty string", field="text")
    checked = store_limits.observation(text, field="text")
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
    graph.services.restore for the errors; each changes nothing."""
    kind, object_id = history.parse_id(id)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise InvalidArgument(f"version must be a version number (1 or more), not {version!r}", field="version")
    return graph_services.restore(namespace_ids=list(namespaces), kind=kind, object_id=object_id, version=version)
