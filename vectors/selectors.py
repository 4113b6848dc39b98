"""Reads of entity vectors: the Rust `mcp-memory` vector tools that search and report.

Scoped to one namespace (grants are checked by `vectors.operations`). Every search can take a
client `embedding` (searched among the entity vectors of its `model`, default "client"), or a text
`query` embedded here; a text query (or an embedding labelled with the server's model) also
searches the namespace's observations, and an entity scores the best of its own vector and its
observations' vectors. So entities are found by meaning whether or not anyone upserted entity
vectors: everything written through the graph tools is embedded on write (behind the write, and
before such a search: `backlog.catch_up`).
"""

from __future__ import annotations

import math
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

from access import namespaces
from graph import entities, limits, observations, validity
from graph.exceptions import InvalidArgument
from graph.sql import as_json, db, require_entity
from kernel.sql import in_json, iso
from vectors import backlog, retrieval, store
from vectors.embedders import default_embedder
from vectors.indexes import registry
from vectors.models import OwnerKind
from vectors.services import CLIENT_MODEL, model_label, resolve_vector
from vectors.store import IndexKey

# Results of one vector tool call (topK, fetchK). Memory search allows fewer (memory.limits).
MAX_TOP_K = 100
DEFAULT_TOP_K = 10
# Observations fetched per wanted entity when entities are ranked through their observations.
OBSERVATIONS_PER_ENTITY = 5


def _top_k(value: Any, *, field: str = "topK", default: int = DEFAULT_TOP_K) -> int:
    return limits.top_k(value, maximum=MAX_TOP_K, default=default, field=field)


def _entity_type(value: Any) -> str | None:
    return None if value is None else limits.name(value, field="entityType")


class EntityHit(TypedDict):
    entityName: str
    entityType: str
    score: float


class SearchResult(TypedDict):
    model: str
    results: list[EntityHit]


class _Scored:
    """Entity id -> best score, from entity vectors and from observation vectors."""

    def __init__(self) -> None:
        self.scores: dict[int, float] = {}

    def add(self, entity: int, score: float) -> None:
        if score > self.scores.get(entity, -math.inf):
            self.scores[entity] = score


def _semantic(
    ns_id: int, vector: npt.NDArray[np.float32], model: str, *, k: int, with_observations: bool
) -> dict[int, float]:
    scored = _Scored()
    indexes = registry()
    for entity, score in indexes.search(IndexKey(ns_id, OwnerKind.ENTITY, model), vector, k=k):
        scored.add(entity, score)
    if with_observations:
        # Read-your-writes: the namespace's texts still waiting for their vectors get them now.
        backlog.catch_up([ns_id])
        # Current facts only: a superseded observation ("works at Acme") does not lift its entity.
        past = validity.not_current_ids(validity.OBSERVATIONS, ns_id)
        hits = indexes.search(
            IndexKey(ns_id, OwnerKind.OBSERVATION, model),
            vector,
            k=k * OBSERVATIONS_PER_ENTITY,
            allowed=(lambda ident: ident not in past) if past else None,
        )
        owners = entities.of_observations([owner for owner, _ in hits])
        for owner, score in hits:
            if owner in owners:
                scored.add(owners[owner], score)
    return scored.scores


def _ranked(
    scores: dict[int, float], *, k: int, entity_type: str | None, exclude: int | None = None
) -> list[EntityHit]:
    order = sorted(scores, key=lambda ident: (-scores[ident], ident))
    described = entities.described(order)
    hits: list[EntityHit] = []
    for ident in order:
        if ident == exclude or ident not in described:
            continue
        name, kind = described[ident]
        if entity_type is not None and kind != entity_type:
            continue
        hits.append({"entityName": name, "entityType": kind, "score": round(float(scores[ident]), 6)})
        if len(hits) == k:
            break
    return hits


def _query_vector(ns_id: int | None, *, embedding: Any, query: Any, model: Any) -> tuple[str, npt.NDArray[np.float32]]:
    return resolve_vector(ns_id, embedding=embedding, text=query, model=model)


def _over_fetch(k: int, entity_type: str | None) -> int:
    # A type filter is applied after ranking: fetch more so k of that type usually survive.
    return min(k * (8 if entity_type else 2), 1000)


def search_entities(
    *,
    namespace: str,
    embedding: Any = None,
    query: Any = None,
    top_k: Any = None,
    entity_type: Any = None,
    model: Any = None,
) -> SearchResult:
    """Entities nearest to a vector (or to a text's meaning), best first."""
    k = _top_k(top_k)
    kind = _entity_type(entity_type)
    ns_id = namespaces.lookup(namespace)
    label, vector = _query_vector(ns_id, embedding=embedding, query=query, model=model)
    if ns_id is None:
        return {"model": label, "results": []}
    scores = _semantic(
        ns_id, vector, label, k=_over_fetch(k, kind), with_observations=label == default_embedder().model_id
    )
    return {"model": label, "results": _ranked(scores, k=k, entity_type=kind)}


def entity_vector(ns_id: int, entity: int, model: str | None) -> tuple[str, npt.NDArray[np.float32]] | None:
    """An entity's own vector (of `model`, else the server model, else any), or, for the server's
    model, the mean of its observations' vectors; None if it has neither."""
    server = default_embedder().model_id
    candidates = store.get(OwnerKind.ENTITY, entity, model=model)
    if model is None:
        candidates.sort(key=lambda v: v.model != server)  # the server's space first
    if candidates:
        return candidates[0].model, candidates[0].vector
    wanted = model or server
    if wanted != server:
        return None
    backlog.catch_up([ns_id])
    vectors = store.vectors_of(IndexKey(ns_id, OwnerKind.OBSERVATION, server), entities.observation_ids(entity))
    if not vectors:
        return None
    return server, retrieval.unit(np.mean(retrieval.unit(np.stack(list(vectors.values()))), axis=0)[None, :])[0]


def search_by_entity(
    *,
    namespace: str,
    entity_name: str,
    top_k: Any = None,
    entity_type: Any = None,
    exclude_self: Any = True,
    model: Any = None,
) -> SearchResult:
    """Entities most similar to a given entity."""
    k = _top_k(top_k)
    kind = _entity_type(entity_type)
    label = model_label(model)
    ns_id = namespaces.lookup(namespace)
    entity = require_entity(ns_id, limits.name(entity_name, field="entityName"))
    assert ns_id is not None
    found = entity_vector(ns_id, entity, label)
    if found is None:
        raise InvalidArgument(
            f"entity {entity_name!r} has no vector{f' in model {label!r}' if label else ''}: "
            "upsert one with vector_upsert_embedding, or add observations to it"
        )
    space, vector = found
    scores = _semantic(
        ns_id, vector, space, k=_over_fetch(k, kind) + 1, with_observations=space == default_embedder().model_id
    )
    return {
        "model": space,
        "results": _ranked(scores, k=k, entity_type=kind, exclude=entity if exclude_self is not False else None),
    }


def recommend(
    *,
    namespace: str,
    positive: Any,
    negative: Any = None,
    top_k: Any = None,
    entity_type: Any = None,
    model: Any = None,
) -> SearchResult:
    """Entities like the `positive` ones and unlike the `negative` ones: mean(pos) - mean(neg)."""
    k = _top_k(top_k)
    kind = _entity_type(entity_type)
    label = model_label(model)
    liked = limits.names(positive, field="positive")
    if not liked:
        raise InvalidArgument("positive must name at least one entity", field="positive")
    disliked = limits.names(negative or [], field="negative")
    ns_id = namespaces.lookup(namespace)
    given: dict[str, int] = {name: require_entity(ns_id, name) for name in [*liked, *disliked]}
    assert ns_id is not None
    space = label
    sums: list[npt.NDArray[np.float32]] = []
    for group in (liked, disliked):
        vectors = []
        for name in group:
            found = entity_vector(ns_id, given[name], space)
            if found is None:
                raise InvalidArgument(f"entity {name!r} has no vector" + (f" in model {space!r}" if space else ""))
            space = found[0]  # every vector after the first must share its space
            vectors.append(retrieval.unit(found[1][None, :])[0])
        sums.append(np.mean(vectors, axis=0) if vectors else np.zeros_like(sums[0]))
    target = sums[0] - sums[1]
    if not np.any(target):
        raise InvalidArgument("the positive and negative entities cancel out: nothing to recommend from")
    assert space is not None
    scores = _semantic(
        ns_id,
        target.astype(np.float32),
        space,
        k=_over_fetch(k, kind) + len(given),
        with_observations=space == default_embedder().model_id,
    )
    for ident in given.values():
        scores.pop(ident, None)
    return {"model": space, "results": _ranked(scores, k=k, entity_type=kind)}


def mmr_search(
    *,
    namespace: str,
    embedding: Any = None,
    query: Any = None,
    top_k: Any = None,
    fetch_k: Any = None,
    lambda_: Any = None,
    entity_type: Any = None,
    model: Any = None,
) -> SearchResult:
    """Entities relevant to the query yet unlike each other (maximal marginal relevance)."""
    k = _top_k(top_k)
    fetch = _top_k(fetch_k, field="fetchK", default=min(max(4 * k, 20), MAX_TOP_K))
    if fetch < k:
        raise InvalidArgument("fetchK must be at least topK", field="fetchK")
    weight = 0.5 if lambda_ is None else lambda_
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
        raise InvalidArgument("lambda must be a number from 0 to 1", field="lambda")
    kind = _entity_type(entity_type)
    ns_id = namespaces.lookup(namespace)
    label, vector = _query_vector(ns_id, embedding=embedding, query=query, model=model)
    if ns_id is None:
        return {"model": label, "results": []}
    scores = _semantic(
        ns_id, vector, label, k=_over_fetch(fetch, kind), with_observations=label == default_embedder().model_id
    )
    pool = _ranked(scores, k=fetch, entity_type=kind)
    described = {hit["entityName"]: hit for hit in pool}
    ids = {name: require_entity(ns_id, name) for name in described}
    vectors = []
    kept = []
    for name in described:
        found = entity_vector(ns_id, ids[name], label)
        if found is not None:
            vectors.append(found[1])
            kept.append(name)
    if not kept:
        return {"model": label, "results": []}
    picks = retrieval.mmr(
        vector, np.stack(vectors), k=k, lambda_=float(weight), relevance=[described[n]["score"] for n in kept]
    )
    return {"model": label, "results": [described[kept[i]] for i in picks]}


class HybridHit(TypedDict):
    entityName: str
    entityType: str
    score: float
    vectorScore: float
    textScore: float


class HybridResult(TypedDict):
    model: str
    results: list[HybridHit]


def _weight(value: Any, field: str, *, maximum: float = 1000.0) -> float:
    if value is None:
        return 0.5
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= maximum:
        raise InvalidArgument(f"{field} must be a number from 0 to {maximum:g}", field=field)
    return float(value)


def hybrid_search(
    *,
    namespace: str,
    query_text: Any,
    query_embedding: Any = None,
    text_weight: Any = None,
    vec_weight: Any = None,
    top_k: Any = None,
    centrality: Any = None,
    model: Any = None,
) -> HybridResult:
    """Entities ranked by meaning and exact terms together (see vectors/retrieval.py), optionally
    nudged toward well-connected entities (`centrality`, 0..1)."""
    k = _top_k(top_k)
    if not isinstance(query_text, str) or not query_text.strip():
        raise InvalidArgument("queryText must be a non-empty string", field="queryText")
    text = limits.observation(query_text, field="queryText")
    t_weight, v_weight = _weight(text_weight, "textWeight"), _weight(vec_weight, "vecWeight")
    if t_weight + v_weight == 0:
        raise InvalidArgument("textWeight and vecWeight cannot both be 0")
    boost = _weight(centrality, "centrality", maximum=1.0) if centrality is not None else 0.0
    ns_id = namespaces.lookup(namespace)
    if query_embedding is not None:
        label, vector = resolve_vector(ns_id, embedding=query_embedding, text=None, model=model)
    else:
        label, vector = resolve_vector(ns_id, embedding=None, text=text, model=model)
    if ns_id is None:
        return {"model": label, "results": []}
    fetch = max(4 * k, 50)
    terms = retrieval.query_terms(text)
    similarities = _semantic(ns_id, vector, label, k=fetch, with_observations=label == default_embedder().model_id)
    keyword = entities.keyword_matches(ns_id, list(terms.words), k=fetch, per_entity=OBSERVATIONS_PER_ENTITY)
    for ident in keyword - similarities.keys():
        found = entity_vector(ns_id, ident, label)
        similarities[ident] = (
            float(retrieval.unit(found[1][None, :])[0] @ retrieval.unit(vector[None, :])[0]) if found else 0.0
        )
    texts = entities.texts(list(similarities))
    degrees = entities.degrees(list(similarities))
    top_degree = max(degrees.values(), default=0)
    scores: dict[int, float] = {}
    text_scores: dict[int, float] = {}
    for ident, similarity in similarities.items():
        lift = retrieval.keyword_lift(texts.get(ident, ""), terms)
        text_scores[ident] = lift
        score = retrieval.fuse(similarity, lift, vector_weight=v_weight, text_weight=t_weight)
        if boost and top_degree:
            score += (1.0 - score) * boost * 0.1 * math.log1p(degrees.get(ident, 0)) / math.log1p(top_degree)
        scores[ident] = min(score, 1.0)
    ranked = _ranked(scores, k=k, entity_type=None)
    ids = {name: ident for ident, (name, _) in entities.described(list(scores)).items()}
    return {
        "model": label,
        "results": [
            {
                **hit,
                "vectorScore": round(max(similarities[ids[hit["entityName"]]], 0.0), 6),
                "textScore": round(text_scores[ids[hit["entityName"]]], 6),
            }
            for hit in ranked
        ],
    }


class StoredEmbedding(TypedDict, total=False):
    found: bool
    entityName: str
    model: str
    dims: int
    embedding: list[float]


def get_embedding(*, namespace: str, entity_name: str, model: Any = None) -> StoredEmbedding:
    """An entity's stored vector ({found: false} when it has none in that model)."""
    name = limits.name(entity_name, field="entityName")
    ns_id = namespaces.lookup(namespace)
    entity = require_entity(ns_id, name)
    stored = store.get(OwnerKind.ENTITY, entity, model=model_label(model))
    if not stored:
        return {"found": False, "entityName": name}
    first = stored[0]
    return {
        "found": True,
        "entityName": name,
        "model": first.model,
        "dims": first.dims,
        "embedding": [float(x) for x in first.vector],
    }


def store_stats(*, namespace: str) -> dict[str, Any]:
    """Vectors stored in the namespace per (kind, model), the server's embedder, and the indexes
    this process has loaded for the namespace."""
    ns_id = namespaces.lookup(namespace)
    embedder = default_embedder()
    if ns_id is not None:
        # The counts below are of vectors: texts still queued are embedded first, so a text written
        # just before is not reported as without a vector.
        backlog.catch_up([ns_id])
    stored = store.index_keys(ns_id) if ns_id is not None else []
    loaded = [entry for entry in registry().stats() if entry["namespace_id"] == ns_id]
    observation_count = observations.count(ns_id) if ns_id is not None else 0
    embedded = sum(
        count for key, count, _ in stored if key.kind == OwnerKind.OBSERVATION and key.model == embedder.model_id
    )
    return {
        "namespace": namespace,
        "embedder": {"model": embedder.model_id, "dims": embedder.dims},
        "clientModelDefault": CLIENT_MODEL,
        "vectors": [
            {"kind": key.kind, "model": key.model, "count": count, "dims": dims} for key, count, dims in stored
        ],
        "observations": observation_count,
        "observationsWithoutVector": max(observation_count - embedded, 0),
        "loadedIndexes": [{k: v for k, v in entry.items() if k != "namespace_id"} for entry in loaded],
    }


def refresh_graph_cache(*, namespace: str) -> dict[str, Any]:
    """Rust's tool refreshes a cached centrality table. Here degrees are live counters kept by
    triggers, so there is nothing to refresh; this reports them and reloads the namespace's
    vector indexes from the stored vectors."""
    ns_id = namespaces.lookup(namespace)
    if ns_id is None:
        return {"refreshed": True, "entities": 0, "maxDegree": 0, "indexes": 0}
    count, top = entities.count_and_top_degree(ns_id)
    keys = store.index_keys(ns_id)
    for key, _, _ in keys:
        registry().drop(key)
    return {"refreshed": True, "entities": count, "maxDegree": top, "indexes": len(keys)}


def embedding_backlog(*, namespaces: dict[int, str]) -> dict[str, dict[str, Any]]:
    """{namespace: {"pending", "failing", "oldest"}} for the namespaces that have texts waiting to
    be embedded (vectors_pending; vectors/backlog.py): how many wait, how many of those failed at
    least once (`attempts` > 0, retried later), and when the oldest was queued. Namespaces with
    nothing waiting are left out. One grouped read over the index (namespace_id, owner_id): the
    backlog is drained continuously, so it stays small."""
    if not namespaces:
        return {}
    rows = db().execute(
        "SELECT namespace_id, count(*), count(*) FILTER (WHERE attempts > 0), min(enqueued_at) FROM vectors_pending "
        f"WHERE namespace_id {in_json()} GROUP BY namespace_id",
        (as_json(namespaces),),
    )
    return {
        namespaces[ns_id]: {"pending": pending, "failing": failing, "oldest": iso(oldest)}
        for ns_id, pending, failing, oldest in rows
    }
