"""Reads of free-text memories: search by meaning, list, get by id. Reached through the runner
(`access.operations.perform`, declared in memory/operations.py), which passes `namespaces`, {id:
name} of those the caller may read (the ones it named, else all of them).

Search covers free memories and knowledge-graph observations alike, because both are what a
namespace remembers; listing covers free memories (what the memory APIs store). Expired memories
(ttl) are never returned, whatever the purge job has or has not deleted yet.

Time (graph/validity.py): search and list return what is valid now; `as_of` (a client's `asOf`)
returns what was valid then, `include_expired` every fact, past and future too. Every memory on
the wire carries its validity and lineage (`validFrom`, `validTo`, `current`, `supersedes`,
`supersededBy`, `sourceId`, `extractedBy`), the successors found with one query per page. By id
(`get_memory`) a past fact is found too, marked.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict

import numpy as np

from graph import observations, validity
from graph.fts import has_cjk
from graph.observations import AllOf, ObservationRow, Test, Where
from graph.validity import When
from kernel.errors import InvalidArgument
from kernel.sql import iso, now
from memory import limits
from memory.wire import memory_id, parse_memory_id
from vectors import backlog, retrieval, store
from vectors.ann import Allowed
from vectors.embedders import default_embedder
from vectors.embedding import embed_texts
from vectors.indexes import registry
from vectors.models import OwnerKind
from vectors.store import IndexKey

# Candidates fetched from each side before fusion: enough that a keyword-lifted memory ranked far
# down by vector similarity is still seen.
MIN_CANDIDATES = 50
# With asOf or includeExpired the ANN index is asked without the current-facts filter and its
# candidates are checked after (graph.validity.valid_ids): it fetches this many times more, so
# facts valid then are not crowded out by others.
PAST_OVER_FETCH = 4
# Likewise with filters on tags, key or time written (checked on the candidates after).
FILTER_OVER_FETCH = 4
# A key prefix (access.keys: "mh_" and a few characters) is matched by its start.
MAX_KEY_PREFIX_LENGTH = 32


class Lineage(TypedDict):
    # When it was (is) true: validFrom (ISO 8601 UTC), validTo (null while current).
    validFrom: str | None
    validTo: str | None
    current: bool
    # The memory it replaced and the one that replaced it (mem_<n> or null).
    supersedes: str | None
    supersededBy: str | None
    # The message it was extracted from (mem_<n>) and by which model; null when written as is.
    sourceId: str | None
    extractedBy: str | None


class StoredMemory(Lineage):
    """A memory on the wire: its fields, then its validity and lineage (Lineage)."""

    id: str
    text: str
    namespace: str
    tags: list[str]
    createdAt: str | None
    expiresAt: str | None
    actorId: str
    entityName: str | None
    # How often the text was written (a repeat is folded into it: memory/dedupe.py) and when last.
    mentionCount: int
    lastSeen: str | None


class MemoryHit(Lineage):
    id: str
    text: str
    namespace: str
    tags: list[str]
    score: float
    createdAt: str | None
    expiresAt: str | None
    actorId: str
    entityName: str | None
    mentionCount: int
    lastSeen: str | None


class SearchResult(TypedDict):
    results: list[MemoryHit]
    totalResults: int
    queryTime: int


def _actors(namespaces: Mapping[int, str], actor_id: str | None, actor_in: Mapping[str, str] | None) -> dict[int, str]:
    """{namespace id: the only actor read there} of the namespaces read."""
    found: dict[int, str] = {}
    for ns_id, name in namespaces.items():
        actor = (actor_in or {}).get(name, actor_id)
        if actor is not None:
            found[ns_id] = limits.actor(actor, field="user_id")
    return found


def _ids(value: int | None) -> str | None:
    return memory_id(value) if value is not None else None


def lineage_of(rows: list[ObservationRow]) -> dict[int, Lineage]:
    """{id: validity and lineage on the wire} of these rows: one query for their successors."""
    successors = validity.lineage([row.id for row in rows])
    found: dict[int, Lineage] = {}
    stamp = now()
    for row in rows:
        marks = validity.marks(row.valid_from, row.valid_to, row.created_at, at=stamp)
        found[row.id] = {
            "validFrom": marks["validFrom"],
            "validTo": marks["validTo"],
            "current": marks["current"],
            "supersedes": _ids(row.supersedes_id),
            "supersededBy": _ids(successors.get(row.id, (None, None))[1]),
            "sourceId": _ids(row.source_id),
            "extractedBy": row.extracted_by or None,
        }
    return found


def _stored(row: ObservationRow, namespaces: Mapping[int, str], lineage: Lineage) -> StoredMemory:
    return {
        "id": memory_id(row.id),
        "text": row.body,
        "namespace": namespaces[row.namespace_id],
        "tags": row.tags,
        "createdAt": iso(row.created_at),
        "expiresAt": iso(row.expires_at),
        "actorId": row.actor_id,
        "entityName": row.entity_name,
        "mentionCount": row.mention_count,
        "lastSeen": iso(row.last_seen_at or row.created_at),
        **lineage,
    }


# --- search ---------------------------------------------------------------------------------------


def search_memories(
    *,
    namespaces: Mapping[int, str],
    query: Any,
    actor_id: Any = None,
    actor_in: Mapping[str, str] | None = None,
    top_k: Any = None,
    mode: Any = "hybrid",
    memories_only: bool = False,
    as_of: Any = None,
    include_expired: Any = None,
    tags: Any = None,
    key: Any = None,
    written_from: Any = None,
    written_to: Any = None,
) -> SearchResult:
    """Memories of `namespaces` ranked by meaning (and, in hybrid mode, exact terms), best first,
    scores in [0, 1]; `top_k` of them (1..MAX_TOP_K, default DEFAULT_TOP_K).

    `mode` is "hybrid" (the default), "vector" or "keyword" (the last two for evaluation and for
    callers who want one side only). Only `actor_id`'s memories when given, and in the namespaces
    of `actor_in` ({namespace: actor}) only that actor's (a user's own memories, see
    memory.scopes).

    What is valid now is searched; `as_of` (ISO 8601) searches what was valid then, and
    `include_expired` every fact (graph.validity.when checks both: InvalidArgument naming
    asOf / includeExpired).

    Filters (the console's; no other edge passes them): `tags` (each one carried), `key` (written,
    in its first version, by a key whose prefix starts so; "key:" as the history shows it is
    accepted), `written_from` / `written_to` (created at or after / before, ISO 8601). Each is
    checked here (InvalidArgument naming it)."""
    started = time.perf_counter()
    moment = validity.when(as_of, include_expired)
    where = search_filter(tags=tags, key=key, written_from=written_from, written_to=written_to)
    wanted = limits.top_k(top_k)
    text = limits.query(query)
    actor = limits.actor(actor_id) if actor_id is not None else None
    ranking = limits.mode(mode)
    actors = _actors(namespaces, actor, actor_in)
    results, total = (
        rank(
            namespaces,
            query=text,
            actors=actors,
            top_k=wanted,
            mode=ranking,
            memories_only=memories_only,
            moment=moment,
            where=where,
        )
        if namespaces
        else ([], 0)
    )
    elapsed = round((time.perf_counter() - started) * 1000)
    return {"results": results, "totalResults": total, "queryTime": elapsed}


def search_filter(
    *, tags: Any = None, key: Any = None, written_from: Any = None, written_to: Any = None
) -> Where | None:
    """The search filters as one condition on observations, or None when none is given."""
    parts: list[Where] = []
    wanted_tags = limits.tags(tags)
    if wanted_tags:
        parts.append(Test("tags", "all", tuple(wanted_tags)))
    if key is not None and key != "":
        if not isinstance(key, str) or len(key) > MAX_KEY_PREFIX_LENGTH + len("key:"):
            raise InvalidArgument(
                f"key must be a key prefix of at most {MAX_KEY_PREFIX_LENGTH} characters", field="key"
            )
        prefix = key.strip().removeprefix("key:")
        if prefix:
            parts.append(Test("key", "prefix", (prefix,)))
    start = datetime.fromisoformat(validity.parse_time(written_from, field="writtenFrom")) if written_from else None
    end = datetime.fromisoformat(validity.parse_time(written_to, field="writtenTo")) if written_to else None
    if start is not None and end is not None and end <= start:
        raise InvalidArgument("writtenTo must be after writtenFrom", field="writtenTo")
    if start is not None:
        parts.append(Test("created_at", "gte", (start.replace(tzinfo=start.tzinfo or UTC),)))
    if end is not None:
        parts.append(Test("created_at", "lt", (end.replace(tzinfo=end.tzinfo or UTC),)))
    return AllOf(tuple(parts)) if parts else None


def _allowed(ns_id: int, actor_id: str | None, memories_only: bool, moment: When) -> Allowed | None:
    """The filter a vector hit of a namespace must pass (not expired; the actor's; a free memory
    when only memories are wanted; for a current read, valid now), or None when every stored
    vector qualifies. A read of another time filters its candidates after (`_vector_side`)."""
    expired = observations.expired_ids(ns_id)
    if moment.current:
        # Few (closed and later facts, found by partial indexes): left out of what ANN returns.
        expired |= validity.not_current_ids(validity.OBSERVATIONS, ns_id)
    if actor_id is not None or memories_only:
        keep = observations.ids_in(ns_id, actor_id=actor_id, free_only=memories_only) - expired
        return keep.__contains__
    if expired:
        return lambda ident: ident not in expired
    return None


def _vector_side(
    namespaces: Mapping[int, str],
    query_vector: np.ndarray,
    model: str,
    *,
    k: int,
    actors: Mapping[int, str],
    memories_only: bool,
    moment: When,
    where: Where | None = None,
) -> dict[int, float]:
    found: dict[int, float] = {}
    indexes = registry()
    fetched = k if moment.current or moment.include_expired else k * PAST_OVER_FETCH
    if where is not None:
        fetched *= FILTER_OVER_FETCH
    for ns_id in store.namespaces_with_vectors(list(namespaces), OwnerKind.OBSERVATION, model):
        allowed = _allowed(ns_id, actors.get(ns_id), memories_only, moment)
        for owner, score in indexes.search(
            IndexKey(ns_id, OwnerKind.OBSERVATION, model), query_vector, k=fetched, allowed=allowed
        ):
            found[owner] = score
    if moment.at is not None:
        # asOf: keep the candidates valid then, the best k of them.
        valid = validity.valid_ids(validity.OBSERVATIONS, list(found), moment)
        kept = sorted((owner for owner in found if owner in valid), key=lambda owner: -found[owner])[:k]
        found = {owner: found[owner] for owner in kept}
    if where is not None:
        # Filters: keep the candidates that pass, the best k of them.
        passing = observations.matching(list(found), where)
        kept = sorted((owner for owner in found if owner in passing), key=lambda owner: -found[owner])[:k]
        found = {owner: found[owner] for owner in kept}
    return found


def rank(
    namespaces: Mapping[int, str],
    *,
    query: str,
    actors: Mapping[int, str],
    top_k: int,
    mode: str,
    memories_only: bool,
    moment: When = validity.CURRENT,
    where: Where | None = None,
) -> tuple[list[MemoryHit], int]:
    """Fetch candidates from each side (both narrowed by `where`, the search filters), fuse,
    hydrate the best `top_k`; also the candidate count."""
    k = max(MIN_CANDIDATES, 4 * top_k)
    terms = retrieval.query_terms(query)
    embedder = default_embedder()
    similarities: dict[int, float] = {}
    if mode != "keyword":
        # Read-your-writes: texts of these namespaces still waiting for their vectors get them now.
        backlog.catch_up(namespaces)
        query_vector = embed_texts([query], embedder=embedder)[0]
        similarities = _vector_side(
            namespaces,
            query_vector,
            embedder.model_id,
            k=k,
            actors=actors,
            memories_only=memories_only,
            moment=moment,
            where=where,
        )
    keyword: dict[int, tuple[str, float]] = {}
    if mode != "vector":
        keyword = observations.keyword_candidates(
            list(namespaces),
            actors,
            identifiers=list(terms.identifiers),
            words=list(terms.words),
            k=k,
            free_only=memories_only,
            moment=moment,
            where=where,
        )

    if mode == "keyword":
        scores = {owner: strength for owner, (_, strength) in keyword.items()}
    elif mode == "vector":
        scores = {owner: retrieval.fuse(similarity, 0.0) for owner, similarity in similarities.items()}
    elif has_cjk(query) and not embedder.multilingual:
        # An English-only model embeds Chinese as noise: keyword matches lead, ranked by bm25, and
        # vector-only candidates follow.
        scores = {owner: 0.5 * retrieval.fuse(similarity, 0.0) for owner, similarity in similarities.items()}
        scores.update((owner, 0.5 + 0.5 * strength) for owner, (_, strength) in keyword.items())
    else:
        missing = [owner for owner in keyword if owner not in similarities]
        if missing:
            similarities.update(_similarities(namespaces, missing, query_vector, embedder.model_id))
        # Every candidate's text is weighed, not only the keyword side's: a vector hit that holds
        # the identifier asked for must be lifted too.
        texts = {owner: body for owner, (body, _) in keyword.items()}
        texts.update(observations.bodies([owner for owner in similarities if owner not in keyword]))
        scores = {
            owner: retrieval.fuse(similarity, retrieval.keyword_lift(texts.get(owner, ""), terms))
            for owner, similarity in similarities.items()
        }
    order = sorted(scores, key=lambda owner: (-scores[owner], owner))
    return _hydrate(order[:top_k], scores, namespaces), len(order)


def _similarities(
    namespaces: Mapping[int, str], owners: list[int], query_vector: np.ndarray, model: str
) -> dict[int, float]:
    """Cosine similarity to the query of observations found only by keyword."""
    query_unit = retrieval.unit(query_vector[None, :])[0]
    found: dict[int, float] = {}
    for ns_id in namespaces:
        vectors = store.vectors_of(IndexKey(ns_id, OwnerKind.OBSERVATION, model), owners)
        for owner, vector in vectors.items():
            if vector.shape[0] == query_unit.shape[0]:
                found[owner] = float(retrieval.unit(vector[None, :])[0] @ query_unit)
    for owner in owners:
        found.setdefault(owner, 0.0)  # text with no vector (yet): keyword evidence only
    return found


def _hydrate(owners: list[int], scores: dict[int, float], namespaces: Mapping[int, str]) -> list[MemoryHit]:
    found = {
        owner: row
        for owner, row in observations.rows(owners).items()
        if row.namespace_id in namespaces  # else deleted since the index saw it
    }
    lineages = lineage_of(list(found.values()))
    hits: list[MemoryHit] = []
    for owner in owners:
        row = found.get(owner)
        if row is None:
            continue
        stored = _stored(row, namespaces, lineages[owner])
        hits.append(
            {
                "id": stored["id"],
                "text": stored["text"],
                "namespace": stored["namespace"],
                "tags": stored["tags"],
                "score": round(scores[owner], 6),
                "createdAt": stored["createdAt"],
                "expiresAt": stored["expiresAt"],
                "actorId": stored["actorId"],
                "entityName": stored["entityName"],
                "mentionCount": stored["mentionCount"],
                "lastSeen": stored["lastSeen"],
                "validFrom": stored["validFrom"],
                "validTo": stored["validTo"],
                "current": stored["current"],
                "supersedes": stored["supersedes"],
                "supersededBy": stored["supersededBy"],
                "sourceId": stored["sourceId"],
                "extractedBy": stored["extractedBy"],
            }
        )
    return hits


# --- listing and by id (the MemOS API's get_all / get_memory) -------------------------------------


class MemoryPage(TypedDict):
    memories: list[StoredMemory]
    # How many memories match in all (not only this page), and per namespace.
    total: int
    totals: dict[str, int]


def list_memories(
    *,
    namespaces: Mapping[int, str],
    limit: Any,
    offset: Any = 0,
    where: Where | None = None,
    actor_in: Mapping[str, str] | None = None,
    as_of: Any = None,
    include_expired: Any = None,
) -> MemoryPage:
    """The free memories (observations without an entity: what the memory APIs store) of
    `namespaces`, newest first, expired ones left out, `limit` (1..MAX_LIST_LIMIT) from `offset`.
    In the namespaces of `actor_in` ({namespace: actor}) only that actor's memories are listed (a
    user's own, see memory.scopes). `where` narrows the listing further (a filter description
    the graph compiles, e.g. the MemOS API's `filter`). Current memories only, unless `as_of`
    (those valid then) or `include_expired` (all, each marked)."""
    moment = validity.when(as_of, include_expired)
    wanted, skipped = limits.page(limit, offset)
    if not namespaces:
        return {"memories": [], "total": 0, "totals": {}}
    actors = {ns_id: (actor_in or {})[name] for ns_id, name in namespaces.items() if name in (actor_in or {})}
    found, totals = observations.free_memories(
        list(namespaces), actors, limit=wanted, offset=skipped, where=where, moment=moment
    )
    by_name = {namespaces[ns_id]: count for ns_id, count in totals.items()}
    lineages = lineage_of(found)
    return {
        "memories": [_stored(row, namespaces, lineages[row.id]) for row in found],
        "total": sum(by_name.values()),
        "totals": by_name,
    }


def get_memory(*, namespaces: Mapping[int, str], id: Any) -> StoredMemory | None:
    """One memory (a free memory or a knowledge-graph observation, as search returns them) by its
    `mem_<n>` id, or None: for an id that is not a memory id, does not exist, has expired, or lives
    outside `namespaces`. All look the same, so ids reveal nothing about other tenants. A past
    fact (closed, superseded) is found too, marked (`current: false`, `supersededBy`)."""
    try:
        owner = parse_memory_id(id)
    except InvalidArgument:
        return None
    row = observations.live_row(owner, list(namespaces))
    return _stored(row, namespaces, lineage_of([row])[row.id]) if row is not None else None
