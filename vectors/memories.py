"""Text memories: write, search by meaning, delete, clear. The one implementation behind the REST
memory API (`/v1/memory/*`), the MCP memory tools and the MemOS facade.

A memory is an observation without an entity (DESIGN.md); search covers free memories and
knowledge-graph observations alike, because both are what a namespace remembers. Every function
takes the caller's `Access` and checks it here, so no edge can forget to.

Ids on the wire are `mem_<observation id>`. Expired memories (ttl) are never returned, whatever the
purge job has or has not deleted yet.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import numpy as np
from django.conf import settings
from django.db import connection
from django.utils import timezone

from access import namespaces
from access.permissions import Access, Permission
from access.selectors import reachable_namespaces
from graph import limits
from graph import services as graph_services
from graph.exceptions import InvalidArgument
from graph.fts import build_match, build_match_any, has_cjk
from graph.sql import as_json, db, narrowed_match, now
from vectors import retrieval, store
from vectors.ann import Allowed
from vectors.embedders import default_embedder
from vectors.embedding import embed_texts, embedded_ahead
from vectors.indexes import registry
from vectors.models import OwnerKind
from vectors.store import IndexKey

ID_PREFIX = "mem_"
MAX_TOP_K = 50
DEFAULT_TOP_K = 10
MAX_TAGS = 64
MAX_TAG_LENGTH = 255
MAX_ACTOR_LENGTH = 255
# 100 years: beyond that a TTL is a mistake, not an intention.
MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000
# Candidates fetched from each side before fusion: enough that a keyword-lifted memory ranked far
# down by vector similarity is still seen.
MIN_CANDIDATES = 50

_MEMORY_ID = re.compile(r"^mem_([1-9][0-9]{0,18})$")
MAX_ROW_ID = 2**63 - 1


# --- wire helpers ---------------------------------------------------------------------------------


def memory_id(observation_id: int) -> str:
    return f"{ID_PREFIX}{observation_id}"


def parse_memory_id(value: Any) -> int:
    match = _MEMORY_ID.fullmatch(value) if isinstance(value, str) else None
    # 19 digits can exceed SQLite's 64-bit INTEGER (the driver would raise OverflowError).
    if match is None or int(match.group(1)) > MAX_ROW_ID:
        raise InvalidArgument(f"id must be a memory id such as 'mem_123', not {value!r}", field="id")
    return int(match.group(1))


def iso(value: str | datetime | None) -> str | None:
    """A stored datetime as ISO 8601 UTC with a Z, to the second (the seed's format)."""
    if value is None:
        return None
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _db_time(value: datetime) -> str:
    return str(connection.ops.adapt_datetimefield_value(value))


# --- validation -----------------------------------------------------------------------------------


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise InvalidArgument("tags must be a list of strings", field="tags")
    if len(value) > MAX_TAGS:
        raise InvalidArgument(f"at most {MAX_TAGS} tags per memory", field="tags")
    for tag in value:
        if not tag.strip() or len(tag) > MAX_TAG_LENGTH:
            raise InvalidArgument(f"each tag must be 1 to {MAX_TAG_LENGTH} characters", field="tags")
        limits.observation(tag, field="tags")  # NUL and lone surrogates cannot be stored
    return list(dict.fromkeys(value))


def _actor(value: Any, *, field: str = "actorId") -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_ACTOR_LENGTH:
        raise InvalidArgument(f"{field} must be a string of at most {MAX_ACTOR_LENGTH} characters", field=field)
    if value:
        limits.observation(value, field=field)  # NUL and lone surrogates cannot be stored
    return value


def _ttl(value: Any) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TTL_MS:
        raise InvalidArgument(f"ttlMs must be a whole number of milliseconds from 1 to {MAX_TTL_MS}", field="ttlMs")
    return timedelta(milliseconds=value)


def top_k(value: Any, *, maximum: int = MAX_TOP_K, default: int = DEFAULT_TOP_K, field: str = "topK") -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidArgument(f"{field} must be a whole number from 1 to {maximum}", field=field)
    return value


_checked_top_k = top_k  # search_memories' parameter is also called top_k


def _query(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument("query must be a non-empty string", field="query")
    return limits.observation(value, field="query")


# --- writes ---------------------------------------------------------------------------------------


class WrittenMemory(TypedDict):
    id: str
    namespace: str
    createdAt: str | None
    expiresAt: str | None


@dataclass(frozen=True)
class NewMemory:
    text: str
    actor_id: str = ""
    tags: tuple[str, ...] = ()
    ttl_ms: int | None = None


def write_memories(access: Access, *, namespace: str | None, memories: list[NewMemory]) -> list[WrittenMemory]:
    """Store memories in `namespace` (None: the key's default), embedded before this returns."""
    target = namespaces.validate(access.resolve_namespace(namespace))
    access.require(target, Permission.WRITE)
    limits.items(memories, field="memories")
    stamp = timezone.now()
    rows: list[graph_services.MemoryInput] = []
    expiries: list[str | None] = []
    for index, memory in enumerate(memories):
        text = memory.text
        if not isinstance(text, str) or not text.strip():
            raise InvalidArgument(
                "text must be a non-empty string", field="text" if len(memories) == 1 else f"[{index}]"
            )
        ttl = _ttl(memory.ttl_ms)
        expires = _db_time(stamp + ttl) if ttl else None
        expiries.append(expires)
        rows.append(
            {
                "body": limits.observation(text, field="text"),
                "actor_id": _actor(memory.actor_id),
                "tags": _tags(list(memory.tags)),
                "expires_at": expires,
            }
        )
    with embedded_ahead(row["body"] for row in rows):
        written = graph_services.insert_memories(namespace=target, memories=rows, created_at=_db_time(stamp))
    return [
        {"id": memory_id(owner), "namespace": target, "createdAt": iso(created), "expiresAt": iso(expires)}
        for (owner, created), expires in zip(written, expiries, strict=True)
    ]


def write_memory(
    access: Access,
    *,
    namespace: str | None,
    text: Any,
    actor_id: Any = None,
    tags: Any = None,
    ttl_ms: Any = None,
) -> WrittenMemory:
    memory = NewMemory(text=text, actor_id=_actor(actor_id), tags=tuple(_tags(tags)), ttl_ms=ttl_ms)
    return write_memories(access, namespace=namespace, memories=[memory])[0]


class DeleteResult(TypedDict):
    deleted: bool
    id: str


def delete_memory(access: Access, *, id: Any) -> DeleteResult:
    """Delete one free memory the key may write. (Search also returns knowledge-graph
    observations, with their `entityName`; those belong to their entity and are deleted with the
    graph tools, so their ids answer `deleted: false` here.)

    An id that does not exist and one in a namespace the key cannot write get the same answer,
    `deleted: false`, so ids reveal nothing about other tenants."""
    owner = parse_memory_id(id)
    row = (
        db()
        .execute(
            "SELECT n.name, n.id FROM graph_observation o JOIN graph_namespace n ON n.id = o.namespace_id WHERE o.id = ?",
            (owner,),
        )
        .fetchone()
    )
    deleted = False
    if row is not None and access.can(row[0], Permission.WRITE):
        deleted = graph_services.delete_memory(namespace_ids=[row[1]], memory_id=owner) is not None
    return {"deleted": deleted, "id": memory_id(owner)}


class ClearResult(TypedDict):
    cleared: int
    namespace: str


def clear_memories(access: Access, *, namespace: str | None, actor_id: Any = None) -> ClearResult:
    """Delete the free memories of a namespace (None: the key's default), or only one actor's.
    Knowledge-graph observations are left alone: they belong to their entities."""
    target = namespaces.validate(access.resolve_namespace(namespace))
    access.require(target, Permission.WRITE)
    actor = _actor(actor_id) if actor_id is not None else None
    cleared = graph_services.clear_memories(namespace=target, actor_id=actor)
    return {"cleared": cleared, "namespace": target}


# --- search ---------------------------------------------------------------------------------------


class MemoryHit(TypedDict):
    id: str
    text: str
    namespace: str
    tags: list[str]
    score: float
    createdAt: str | None
    expiresAt: str | None
    actorId: str
    entityName: str | None


class SearchResult(TypedDict):
    results: list[MemoryHit]
    totalResults: int
    queryTime: int


def readable_namespaces(access: Access, namespace: str | list[str] | None) -> dict[int, str]:
    """{id: name} of the namespaces a search covers: those named (each of which the key must be
    able to read), or every existing namespace the key can read."""
    if namespace is None:
        return dict(reachable_namespaces(access).values_list("id", "name"))
    names = [namespace] if isinstance(namespace, str) else namespace
    if not isinstance(names, list) or not names:
        raise InvalidArgument("namespace must be a namespace name or a non-empty list of them", field="namespace")
    spaces: dict[int, str] = {}
    for name in dict.fromkeys(names):
        target = namespaces.validate(name)
        access.require(target, Permission.READ)
        ns_id = namespaces.lookup(target)
        if ns_id is not None:
            spaces[ns_id] = target
    return spaces


# --- users under one key ---------------------------------------------------------------------------
#
# MemOS clients (a Coze bot, MemOS' MCP servers) send one key for all of their users and tell them
# apart by `user_id`. As in MemOS, each user_id has its own memories by default: here, those
# recorded with it as actor in the caller's own namespace (the key's default, or an MCP
# connection's). A namespace named explicitly is shared: whoever may read it under the key's
# grants reads all of it. Where a namespace is expected, the user_id itself names the user's own
# memories (MemOS' default cube id is the user_id). Without a user_id a request reaches everything
# the key can. This partitions what one key reaches, it does not authenticate users: the key
# holder says which user is asking, as MemOS' server key does.


@dataclass(frozen=True)
class Scope:
    """What a request reads: `namespace` as `search_memories` and `list_memories` take it (None:
    every namespace the key can read), and `actor_in`, the namespaces where only one actor's
    memories are read."""

    namespace: list[str] | None
    actor_in: dict[str, str] = field(default_factory=dict)
    # {namespace: the cube name the caller used for it}: a user's own memories named by user_id.
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, namespace: str) -> str:
        return self.labels.get(namespace, namespace)

    def holds(self, memory: Mapping[str, Any]) -> bool:
        """Whether a memory (found by id) is within this scope."""
        name = memory["namespace"]
        if self.namespace is not None and name not in self.namespace:
            return False
        return self.actor_in.get(name, memory["actorId"]) == memory["actorId"]


def user_scope(user_id: str | None, named: list[str] | None, own: Callable[[], str]) -> Scope:
    """The scope of a read for `user_id` (see above). `named` are the namespaces the request names
    (None: none), where `user_id` may stand for the user's own memories; `own()` is the caller's
    own namespace, called only when needed (it raises NamespaceRequired when there is none)."""
    if not user_id:
        return Scope(named)
    if named is None:
        home = own()
        return Scope([home], {home: user_id})
    if user_id not in named:
        return Scope(named)
    home = own()
    spaces = list(dict.fromkeys(home if name == user_id else name for name in named))
    if home in named:  # the namespace itself is named too: all of it is read
        return Scope(spaces)
    return Scope(spaces, {home: user_id}, {home: user_id})


def user_targets(user_id: str | None, named: list[str] | None, own: Callable[[], str]) -> list[tuple[str, str]]:
    """(namespace, cube name) of each place a write for `user_id` goes: the namespaces named (the
    user_id naming the caller's own namespace), else the caller's own namespace."""
    if named is None:
        home = own()
        return [(home, home)]
    targets = {(own() if name == user_id and user_id else name): name for name in named}
    return list(targets.items())


def search_memories(
    access: Access,
    *,
    query: Any,
    namespace: str | list[str] | None = None,
    actor_id: Any = None,
    actor_in: Mapping[str, str] | None = None,
    top_k: int = DEFAULT_TOP_K,
    mode: str = "hybrid",
    memories_only: bool = False,
) -> SearchResult:
    """Memories ranked by meaning (and, in hybrid mode, exact terms), best first, scores in [0, 1].

    `mode` is "hybrid" (the default), "vector" or "keyword" (the last two for evaluation and for
    callers who want one side only). Searches `namespace` (a name or a list of names), or every
    namespace the key can read; only `actor_id`'s memories when given, and in the namespaces of
    `actor_in` ({namespace: actor}) only that actor's (a user's own memories, see `Scope`)."""
    started = time.perf_counter()
    wanted = _checked_top_k(top_k)
    text = _query(query)
    actor = _actor(actor_id) if actor_id is not None else None
    if mode not in ("hybrid", "vector", "keyword"):
        raise InvalidArgument("mode must be 'hybrid', 'vector' or 'keyword'", field="mode")
    spaces = readable_namespaces(access, namespace)
    actors = _actors(spaces, actor, actor_in)
    hits = (
        rank(spaces, query=text, actors=actors, top_k=wanted, mode=mode, memories_only=memories_only)
        if spaces
        else ([], 0)
    )
    results, total = hits
    elapsed = round((time.perf_counter() - started) * 1000)
    return {"results": results, "totalResults": total, "queryTime": elapsed}


def _actors(spaces: dict[int, str], actor_id: str | None, actor_in: Mapping[str, str] | None) -> dict[int, str]:
    """{namespace id: the only actor read there} of the namespaces searched."""
    found: dict[int, str] = {}
    for ns_id, name in spaces.items():
        actor = (actor_in or {}).get(name, actor_id)
        if actor is not None:
            found[ns_id] = _actor(actor, field="user_id")
    return found


def scope_sql(ns_ids: list[int], actors: Mapping[int, str]) -> tuple[str, list[Any]]:
    """An SQL condition (on alias o): in these namespaces, and in those of `actors` only that
    actor's observations."""
    if not actors:
        return "o.namespace_id IN (SELECT value FROM json_each(?))", [as_json(ns_ids)]
    by_actor: dict[str, list[int]] = {}
    for ns_id in ns_ids:
        if ns_id in actors:
            by_actor.setdefault(actors[ns_id], []).append(ns_id)
    anyone = [ns_id for ns_id in ns_ids if ns_id not in actors]
    parts: list[str] = []
    params: list[Any] = []
    if anyone:
        parts.append("o.namespace_id IN (SELECT value FROM json_each(?))")
        params.append(as_json(anyone))
    for actor, ids in by_actor.items():
        parts.append("(o.namespace_id IN (SELECT value FROM json_each(?)) AND o.actor_id = ?)")
        params += [as_json(ids), actor]
    return f"({' OR '.join(parts)})", params


def _filters(ns_ids: list[int], actors: Mapping[int, str], memories_only: bool) -> tuple[str, list[Any]]:
    """SQL conditions (on alias o) shared by both sides: namespaces, not expired, actor, kind."""
    scope, params = scope_sql(ns_ids, actors)
    sql = f" AND {scope} AND (o.expires_at IS NULL OR o.expires_at > ?)"
    params.append(now())
    if memories_only:
        sql += " AND o.entity_id IS NULL"
    return sql, params


def _allowed(ns_id: int, actor_id: str | None, memories_only: bool) -> Allowed | None:
    """The filter a vector hit of a namespace must pass (not expired; the actor's; a free memory
    when only memories are wanted), or None when every stored vector qualifies."""
    conn = db()
    expired = {
        row[0]
        for row in conn.execute(
            # `+namespace_id` keeps SQLite on the small partial index of expiring rows.
            "SELECT id FROM graph_observation WHERE expires_at IS NOT NULL AND expires_at <= ? AND +namespace_id = ?",
            (now(), ns_id),
        )
    }
    included: set[int] | None = None
    if actor_id is not None or memories_only:
        sql = "SELECT id FROM graph_observation WHERE namespace_id = ?"
        params: list[Any] = [ns_id]
        if actor_id is not None:
            sql += " AND actor_id = ?"
            params.append(actor_id)
        if memories_only:
            sql += " AND entity_id IS NULL"
        included = {row[0] for row in conn.execute(sql, params)}
    if included is not None:
        keep = included - expired
        return keep.__contains__
    if expired:
        return lambda ident: ident not in expired
    return None


def _vector_side(
    spaces: dict[int, str],
    query_vector: np.ndarray,
    model: str,
    *,
    k: int,
    actors: Mapping[int, str],
    memories_only: bool,
) -> dict[int, float]:
    found: dict[int, float] = {}
    indexes = registry()
    for ns_id in store.namespaces_with_vectors(list(spaces), OwnerKind.OBSERVATION, model):
        allowed = _allowed(ns_id, actors.get(ns_id), memories_only)
        for owner, score in indexes.search(
            IndexKey(ns_id, OwnerKind.OBSERVATION, model), query_vector, k=k, allowed=allowed
        ):
            found[owner] = score
    return found


def _keyword_side(
    spaces: dict[int, str], terms: retrieval.QueryTerms, *, k: int, actors: Mapping[int, str], memories_only: bool
) -> dict[int, tuple[str, float]]:
    """{observation id: (body, strength)} of up to 2k keyword candidates, best first: the texts
    holding every identifier of the query (exact evidence, strength 1, newest first), then the best
    bm25 matches of any content word (strength = bm25 relative to the best match, in (0, 1]).

    bm25 is computed for the newest MEMORYHUB_SEARCH_RANK_WINDOW matches only (as search_nodes
    does): SQLite ranks every match before cutting, and a common word in 100k memories would cost
    ~100 ms. Identifiers are looked up on their own so a rare one is never crowded out of that
    window by common words."""
    conditions, params = _filters(list(spaces), actors, memories_only)
    source = f"FROM obs_fts JOIN graph_observation o ON o.id = obs_fts.rowid WHERE obs_fts MATCH ?{conditions}"
    conn = db()
    found: dict[int, tuple[str, float]] = {}
    if terms.identifiers:
        exact = build_match(" ".join(f'"{term}"' for term in terms.identifiers))
        if exact is not None:
            rows = conn.execute(
                f"SELECT o.id, o.body {source} ORDER BY obs_fts.rowid DESC LIMIT ?", (exact, *params, k)
            )
            found.update((owner, (body, 1.0)) for owner, body in rows)
    match = build_match_any(list(terms.words))
    if match is not None:
        # The window is cut to the best k in SQL (ties newest first), so k rows come back to
        # Python rather than the whole window (graph/sql.py says why rows cost more than SQL).
        best_k = conn.execute(
            f"WITH recent AS MATERIALIZED (SELECT o.id AS id, o.body AS body, obs_fts.rank AS score {source} "
            "ORDER BY obs_fts.rowid DESC LIMIT ?) SELECT id, body, score FROM recent ORDER BY score, id DESC LIMIT ?",
            (narrowed_match("obs_fts", match), *params, settings.MEMORYHUB_SEARCH_RANK_WINDOW, k),
        ).fetchall()
        best = best_k[0][2] if best_k else 0.0
        for owner, body, bm25 in best_k:
            # bm25 ranks are negative, best lowest; a ratio to the best keeps the order in (0, 1].
            found.setdefault(owner, (body, bm25 / best if best < 0 else 1.0))
    return found


def rank(
    spaces: dict[int, str],
    *,
    query: str,
    actors: Mapping[int, str],
    top_k: int,
    mode: str,
    memories_only: bool,
) -> tuple[list[MemoryHit], int]:
    """Fetch candidates from each side, fuse, hydrate the best `top_k`; also the candidate count."""
    k = max(MIN_CANDIDATES, 4 * top_k)
    terms = retrieval.query_terms(query)
    embedder = default_embedder()
    similarities: dict[int, float] = {}
    if mode != "keyword":
        query_vector = embed_texts([query], embedder=embedder)[0]
        similarities = _vector_side(
            spaces, query_vector, embedder.model_id, k=k, actors=actors, memories_only=memories_only
        )
    keyword: dict[int, tuple[str, float]] = {}
    if mode != "vector":
        keyword = _keyword_side(spaces, terms, k=k, actors=actors, memories_only=memories_only)

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
            similarities.update(_similarities(spaces, missing, query_vector, embedder.model_id))
        # Every candidate's text is weighed, not only the keyword side's: a vector hit that holds
        # the identifier asked for must be lifted too.
        texts = {owner: body for owner, (body, _) in keyword.items()}
        texts.update(_bodies([owner for owner in similarities if owner not in keyword]))
        scores = {
            owner: retrieval.fuse(similarity, retrieval.keyword_lift(texts.get(owner, ""), terms))
            for owner, similarity in similarities.items()
        }
    order = sorted(scores, key=lambda owner: (-scores[owner], owner))
    return _hydrate(order[:top_k], scores), len(order)


def _similarities(spaces: dict[int, str], owners: list[int], query_vector: np.ndarray, model: str) -> dict[int, float]:
    """Cosine similarity to the query of observations found only by keyword."""
    query_unit = retrieval.unit(query_vector[None, :])[0]
    found: dict[int, float] = {}
    for ns_id in spaces:
        vectors = store.vectors_of(IndexKey(ns_id, OwnerKind.OBSERVATION, model), owners)
        for owner, vector in vectors.items():
            if vector.shape[0] == query_unit.shape[0]:
                found[owner] = float(retrieval.unit(vector[None, :])[0] @ query_unit)
    for owner in owners:
        found.setdefault(owner, 0.0)  # text with no vector (yet): keyword evidence only
    return found


def _bodies(owners: list[int]) -> dict[int, str]:
    if not owners:
        return {}
    return dict(
        db()
        .execute(
            "SELECT id, body FROM graph_observation WHERE id IN (SELECT value FROM json_each(?))", (as_json(owners),)
        )
        .fetchall()
    )


def _hydrate(owners: list[int], scores: dict[int, float]) -> list[MemoryHit]:
    if not owners:
        return []
    rows = (
        db()
        .execute(
            "SELECT o.id, o.body, n.name, o.tags, o.created_at, o.expires_at, o.actor_id, e.name "
            "FROM graph_observation o JOIN graph_namespace n ON n.id = o.namespace_id "
            "LEFT JOIN graph_entity e ON e.id = o.entity_id WHERE o.id IN (SELECT value FROM json_each(?))",
            (as_json(owners),),
        )
        .fetchall()
    )
    by_id = {row[0]: row for row in rows}
    hits: list[MemoryHit] = []
    for owner in owners:
        row = by_id.get(owner)
        if row is None:  # deleted since the index saw it
            continue
        _, body, namespace, tags, created, expires, actor, entity = row
        hits.append(
            {
                "id": memory_id(owner),
                "text": body,
                "namespace": namespace,
                "tags": json.loads(tags) if tags else [],
                "score": round(scores[owner], 6),
                "createdAt": iso(created),
                "expiresAt": iso(expires),
                "actorId": actor,
                "entityName": entity,
            }
        )
    return hits
