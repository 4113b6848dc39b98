"""Writes of free-text memories: write, delete by id, clear. The one implementation behind the REST
memory API (`/v1/memory/*`), the MCP memory tools, the MemOS API and chat, which reach it through
the runner (`access.operations.perform`, declared in memory/operations.py): the functions here get
the namespaces the caller's grants allow, never the caller.

A memory is an observation without an entity (DESIGN.md); the graph owns the rows
(`graph.services.insert_memories`, `delete_memory`, `clear_memories` are its table primitives).
What makes them memories is decided here: the checks of text, actor, tags and ttl, the expiry
time, the dedupe keys and repeats, the ids and the shape on the wire.

The write pipeline is `write_memories`, in order: check every memory, find the repeats (a text
that says the same as a current memory of the same actor in the namespace, or as an earlier text
of the same call: memory/dedupe.py), then in one transaction insert the others in one statement
(the graph's triggers keep FTS5 and the counters; the vectors app queues them for embedding in the
same transaction, or with MEMORYHUB_EMBED_MODE=inline stores vectors embedded before it) and note
the repeats as mentions of what they repeat (graph.dedupe.note_mentions: mention count, last
seen, a "mention" version in its history); answer with ids and times, a repeat with the id of
the memory it repeats as both `id` and `duplicateOf`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from django.db import transaction
from django.utils import timezone

from access import namespaces
from graph import dedupe as dedupe_rules
from graph import limits as store_limits
from graph import observations, validity
from graph import services as graph_services
from graph.exceptions import NotFound
from kernel.errors import InvalidArgument
from kernel.sql import iso, stored_time
from memory import dedupe as judging
from memory import extraction, limits
from memory.wire import memory_id, parse_memory_id, stored
from vectors.embedding import embedded_ahead


class WrittenMemory(TypedDict):
    id: str
    namespace: str
    createdAt: str | None
    expiresAt: str | None
    # The id of the memory this one repeats (then `id` is that id too, and nothing was stored);
    # null when it was stored.
    duplicateOf: str | None
    # When it is (was) true: validFrom (default: when written), validTo (null: still). A repeat
    # shows the validity of the memory it repeats.
    validFrom: str | None
    validTo: str | None
    # With `infer`: "queued" (its facts will be extracted: memory/extraction.py) or "disabled".
    inferred: NotRequired[str]


@dataclass(frozen=True)
class NewMemory:
    """One memory to write, its values as the caller received them: `write_memories` checks them.
    `valid_from` / `valid_to` (ISO 8601; default: from now, with no end) say when the fact holds
    (a message's chat_time, a fact known to have held from a past date)."""

    text: Any
    actor_id: Any = ""
    tags: Any = ()
    ttl_ms: Any = None
    valid_from: Any = None
    valid_to: Any = None


def write_memories(
    *, namespace: str, memories: Sequence[NewMemory], dedupe: Any = True, infer: Any = False
) -> list[WrittenMemory]:
    """Store memories in `namespace` in one transaction, keyword-searchable when this returns and
    found by meaning from the next search on (docs/operations/write-pipeline.md); nothing
    is written when any of them is refused.

    With `dedupe` (and the namespace's setting) on, a memory that says the same as a current
    (unexpired) free memory of the same actor in the namespace, or as an earlier memory of this
    call, is not stored: the memory it repeats is mentioned instead, and the answer gives its id
    as `id` and `duplicateOf` (with its createdAt and expiresAt; a repeat's tags and ttl are
    not applied to it). A memory given a `valid_to` (a past fact) is never a repeat: it is stored.

    `valid_from` after (or at) `valid_to`, or either not a time, is refused (InvalidArgument
    naming validFrom / validTo).

    With `infer` (and a model configured) each memory is also queued, in the same transaction,
    for its facts to be extracted behind the write (memory/extraction.py; a repeat queues the
    memory it repeats, as said at its own validFrom or now); each answer then says `inferred`."""
    store_limits.items(memories, field="memories")
    inferred = extraction.requested(infer)
    if not isinstance(dedupe, bool):
        raise InvalidArgument("dedupe must be true or false", field="dedupe")
    stamp = timezone.now()
    rows: list[graph_services.MemoryInput] = []
    for index, memory in enumerate(memories):
        actor = limits.actor(memory.actor_id)
        tags = limits.tags(memory.tags)
        text = memory.text
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgument(
                "text must be a non-empty string", field="text" if len(memories) == 1 else f"[{index}]"
            )
        ttl = limits.ttl(memory.ttl_ms)
        start, end = validity.check_range(memory.valid_from, memory.valid_to)
        rows.append(
            {
                "body": store_limits.observation(text, field="text"),
                "actor_id": actor,
                "tags": tags,
                "expires_at": stored_time(stamp + ttl) if ttl else None,
                "valid_from": start,
                "valid_to": end,
            }
        )
    for row in rows:
        # Keyed whether or not this call dedupes: a later write that does finds it.
        row["dedupe_key"] = judging.key_of(row["body"])
    ns_id = namespaces.lookup(namespace)
    check = dedupe and (ns_id is None or dedupe_rules.enabled(ns_id))
    earlier: dict[int, int] = {}  # index: index of the first occurrence in this call
    repeated: dict[int, int] = {}  # index of a first occurrence: id of the current memory it repeats
    keyed: list[tuple[int, str, str, str]] = []  # older memories keyed now (id, body, actor, key)
    if check:
        earlier = _repeats_within(rows)
        if ns_id is not None:
            keyed = judging.unkeyed(ns_id)
            # A past fact (given its end) repeats no current memory: it is stored as it is.
            firsts = [index for index in range(len(rows)) if index not in earlier and rows[index]["valid_to"] is None]
            repeated = judging.free_repeats(
                ns_id, [(rows[i]["body"], rows[i]["actor_id"]) for i in firsts], extra=keyed
            )
            repeated = {firsts[position]: ident for position, ident in repeated.items()}
    created = stored_time(stamp)
    ahead = [row["body"] for index, row in enumerate(rows) if index not in earlier and index not in repeated]
    with embedded_ahead(ahead), transaction.atomic():
        graph_services.set_dedupe_keys([(ident, body, key) for ident, body, _, key in keyed])
        current = _current(ns_id, set(repeated.values())) if repeated else {}
        # A memory repeated may have been deleted or expired since it was judged: store the text.
        repeated = {index: ident for index, ident in repeated.items() if ident in current}
        fresh = [index for index in range(len(rows)) if index not in earlier and index not in repeated]
        written = graph_services.insert_memories(
            namespace=namespace, memories=[rows[i] for i in fresh], created_at=created
        )
        answers: dict[int, WrittenMemory] = {
            index: _answer(
                namespace,
                owner,
                when,
                rows[index]["expires_at"],
                None,
                (rows[index].get("valid_from"), rows[index].get("valid_to")),
            )
            for index, (owner, when) in zip(fresh, written, strict=True)
        }
        answers.update(
            (index, _answer(namespace, ident, *current[ident][:2], memory_id(ident), current[ident][2]))
            for index, ident in repeated.items()
        )
        mentions: dict[int, int] = {}
        for ident in repeated.values():
            mentions[ident] = mentions.get(ident, 0) + 1
        for index, first in earlier.items():
            answer = answers[first]
            answers[index] = {**answer, "duplicateOf": answer["id"]}
            owner = parse_memory_id(answer["id"])
            mentions[owner] = mentions.get(owner, 0) + 1
        if mentions:
            dedupe_rules.note_mentions(namespaces.ensure(namespace), mentions)
        if inferred == extraction.QUEUED:
            firsts = sorted(index for index in answers if index not in earlier)
            said = [rows[i].get("valid_from") or created for i in firsts]  # a repeat: when it was said again
            extraction.enqueue(
                namespaces.ensure(namespace),
                [(parse_memory_id(answers[i]["id"]), at) for i, at in zip(firsts, said, strict=True)],
            )
    if inferred is not None:
        return [{**answers[index], "inferred": inferred} for index in range(len(rows))]
    return [answers[index] for index in range(len(rows))]


def _repeats_within(rows: Sequence[graph_services.MemoryInput]) -> dict[int, int]:
    """{index: index of the earlier row of the same actor and validity it repeats}."""
    by_actor: dict[tuple[str, str | None, str | None], list[int]] = {}
    for index, row in enumerate(rows):
        # The same text valid over another span is another fact (a history written at once).
        by_actor.setdefault((row["actor_id"], row.get("valid_from"), row.get("valid_to")), []).append(index)
    found: dict[int, int] = {}
    for indexes in by_actor.values():
        repeats = judging.within([rows[i]["body"] for i in indexes])
        found.update((indexes[position], indexes[first]) for position, first in repeats.items())
    return found


Span = tuple[str | None, str | None]  # (valid_from, valid_to) as stored


def _current(ns_id: int | None, ids: set[int]) -> dict[int, tuple[str, str | None, Span]]:
    """{id: (created_at, expires_at, (valid_from, valid_to))} of those of `ids` that are still
    current free memories of the namespace (unexpired, and valid now: a superseded or closed
    memory is a past fact, not one a repeat is folded into)."""
    if ns_id is None:
        return {}
    now = stored_time(timezone.now())
    return {
        row.id: (stored(row.created_at), stored(row.expires_at), (stored(row.valid_from), stored(row.valid_to)))
        for row in observations.rows(sorted(ids)).values()
        if row.namespace_id == ns_id
        and row.entity_name is None
        and (row.expires_at is None or stored(row.expires_at) > now)
        and validity.marks(row.valid_from, row.valid_to, row.created_at)["current"]
    }


def _answer(
    namespace: str, owner: int, created: str, expires: str | None, duplicate_of: str | None, span: Span
) -> WrittenMemory:
    return {
        "id": memory_id(owner),
        "namespace": namespace,
        "createdAt": iso(created),
        "expiresAt": iso(expires),
        "duplicateOf": duplicate_of,
        "validFrom": iso(span[0] or created),
        "validTo": iso(span[1]),
    }


class DeleteResult(TypedDict):
    deleted: bool
    id: str


def delete_memory(
    *, namespaces: Mapping[int, str], id: Any, actor_in: Mapping[str, str] | None = None, purge: Any = False
) -> DeleteResult:
    """Delete one free memory of `namespaces` ({id: name}: those the caller may write), in the
    namespaces of `actor_in` ({namespace: actor}) only if it is that actor's (a user's own, see
    memory.scopes). (Search also returns knowledge-graph observations, with their `entityName`;
    those belong to their entity and are deleted with the graph tools, so their ids answer
    `deleted: false` here.)

    An id that does not exist and one outside the reach get the same answer, `deleted: false`, so
    ids reveal nothing about other tenants. A malformed id is refused (InvalidArgument).

    A deleted memory can be restored (memory.history) for MEMORYHUB_HISTORY_RETENTION_DAYS. With
    `purge` it is erased with all of its versions at once (also one deleted earlier), for
    erasure requests: nothing of it is left to restore."""
    owner = parse_memory_id(id)
    if not isinstance(purge, bool):
        raise InvalidArgument("purge must be true or false", field="purge")
    actors = {ns_id: (actor_in or {})[name] for ns_id, name in namespaces.items() if name in (actor_in or {})}
    deleted = (
        bool(namespaces)
        and graph_services.delete_memory(namespace_ids=list(namespaces), memory_id=owner, actors=actors, purge=purge)
        is not None
    )
    return {"deleted": deleted, "id": memory_id(owner)}


class SupersededMemory(TypedDict):
    # The successor (the current fact now), the memory it replaced, and when the one ended and
    # the other began.
    id: str
    supersedes: str
    validFrom: str | None
    namespace: str


def supersede_memory(
    *, namespaces: Mapping[int, str], id: Any, text: Any, actor_in: Mapping[str, str] | None = None
) -> SupersededMemory:
    """Replace a current free memory of `namespaces` ({id: name}: those the caller may write) by
    a new one with `text`: the old one is closed (validTo = now, kept for asOf reads and in its
    history as a "close" version) and its successor, with the same actor and tags, is valid from
    the same instant, linked both ways, in one transaction (graph.validity.supersede). In the
    namespaces of `actor_in` ({namespace: actor}) only that actor's memories are reached (a
    user's own, memory.scopes).

    NotFound for an id that does not exist, is not a free memory, lives outside the reach or is
    another actor's there (the same answer for each); Conflict naming the current successor when
    it is already superseded (of two supersessions at once, one wins and the other gets this)."""
    owner = parse_memory_id(id)
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument("text must be a non-empty string", field="text")
    checked = store_limits.observation(text, field="text")
    missing = NotFound(f"no memory {memory_id(owner)}", id=memory_id(owner))
    row = observations.live_row(owner, list(namespaces)) if namespaces else None
    if row is None or row.entity_name is not None:
        raise missing
    actor = (actor_in or {}).get(namespaces[row.namespace_id])
    if actor is not None and row.actor_id != limits.actor(actor, field="user_id"):
        raise missing
    # The same checks again inside the write transaction (it may have gone since).
    done = validity.supersede(
        owner,
        checked,
        namespace_ids=[row.namespace_id],
        free_only=True,
        dedupe_key=judging.key_of(checked),
    )
    return {
        "id": memory_id(done.id),
        "supersedes": memory_id(done.supersedes),
        "validFrom": iso(done.at),
        "namespace": namespaces[done.namespace_id],
    }


class ClearResult(TypedDict):
    cleared: int
    namespace: str


def clear_memories(*, namespace: str, actor_id: Any = None) -> ClearResult:
    """Delete the free memories of `namespace`, or only one actor's. Knowledge-graph observations
    are left alone: they belong to their entities."""
    actor = limits.actor(actor_id) if actor_id is not None else None
    cleared = graph_services.clear_memories(namespace=namespace, actor_id=actor)
    return {"cleared": cleared, "namespace": namespace}
