"""Writes of entity vectors: the Rust `mcp-memory` vector tools that change state.

Keyword-only and scoped to one namespace, like graph/services.py; grants are checked by
`vectors.operations`. A vector is either given by the client (`embedding`, stored under `model`,
default "client") or computed here from `text` with the server's embedder (stored under its model
id). Within one namespace every vector of a (kind, model) pair has the same number of dimensions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from access import namespaces
from graph import limits
from graph.exceptions import InvalidArgument
from graph.sql import db, require_entity
from kernel.errors import DomainError
from vectors import store
from vectors.embedders import Embedder, check_vector, default_embedder
from vectors.embedding import count_missing, embed_missing, embed_texts
from vectors.indexes import kind_for, registry
from vectors.models import ChangeLogMark, IndexBaseline, OwnerKind
from vectors.store import IndexKey

logger = logging.getLogger(__name__)

CLIENT_MODEL = "client"
MAX_BATCH_UPSERT = 1024
MAX_MODEL_LENGTH = 255


def model_label(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_MODEL_LENGTH:
        raise InvalidArgument(f"model must be a non-empty string of at most {MAX_MODEL_LENGTH} characters")
    return value


def resolve_vector(
    ns_id: int | None, *, embedding: Any, text: Any, model: Any, kind: str = OwnerKind.ENTITY
) -> tuple[str, npt.NDArray[np.float32]]:
    """(model id, vector) from exactly one of a client `embedding` or a `text` to embed here.

    A client vector must match the dimensions already stored for its model in the namespace."""
    label = model_label(model)
    if (embedding is None) == (text is None):
        raise InvalidArgument("give exactly one of embedding (a list of numbers) or text (to embed on the server)")
    if text is not None:
        embedder = server_model(label)
        return embedder.model_id, embed_texts([text_to_embed(text)], embedder=embedder)[0]
    label = label or CLIENT_MODEL
    dims = store.dims_of(IndexKey(ns_id, kind, label)) if ns_id is not None else None
    if dims is None and label == default_embedder().model_id:
        dims = default_embedder().dims
    return label, check_vector(embedding, dims=dims)


def server_model(label: str | None) -> Embedder:
    """The server's embedder, if `label` names it (or is None)."""
    embedder = default_embedder()
    if label is not None and label != embedder.model_id:
        raise InvalidArgument(
            f"text is embedded with the server's model {embedder.model_id!r}; model {label!r} needs an embedding"
        )
    return embedder


def text_to_embed(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument("text must be a non-empty string")
    return limits.observation(text, field="text")


class UpsertResult(TypedDict):
    entityName: str
    model: str
    dims: int
    upserted: bool


def upsert_embedding(
    *, namespace: str, entity_name: str, embedding: Any = None, text: Any = None, model: Any = None
) -> UpsertResult:
    """Set the vector of an existing entity (replacing the one it had in that model)."""
    name = limits.name(entity_name, field="entityName")
    # A text is embedded before the transaction (the model must not hold SQLite's write lock).
    ahead = (
        resolve_vector(None, embedding=None, text=text, model=model) if text is not None and embedding is None else None
    )
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        owner = require_entity(ns_id, name)
        assert ns_id is not None
        label, vector = ahead or resolve_vector(ns_id, embedding=embedding, text=text, model=model)
        store.put(IndexKey(ns_id, OwnerKind.ENTITY, label), [(owner, vector)])
    return {"entityName": name, "model": label, "dims": int(vector.shape[0]), "upserted": True}


class BatchError(TypedDict):
    index: int
    entityName: Any
    error: str


class BatchUpsertResult(TypedDict):
    upserted: int
    errors: list[BatchError]


def batch_upsert(*, namespace: str, items: list[dict[str, Any]]) -> BatchUpsertResult:
    """Upsert up to 1,024 entity vectors; an item that fails is reported in `errors` (by its
    position) and the others are still written."""
    if not isinstance(items, list):
        raise InvalidArgument("items must be a list")
    if len(items) > MAX_BATCH_UPSERT:
        raise InvalidArgument(f"at most {MAX_BATCH_UPSERT} items per batch, got {len(items)}")
    errors: list[BatchError] = []
    upserted = 0
    texts: list[tuple[int, int, str]] = []  # (position, owner, text): stored together below
    # The texts to embed, embedded in one call before the transaction: the model must not hold
    # SQLite's one write lock (an item refused below only wasted its embedding).
    wanted = [_text_of(item) for item in items]
    embedder = default_embedder()
    embedded = dict(
        zip(
            (given := list(dict.fromkeys(text for text in wanted if text is not None))),
            embed_texts(given, embedder=embedder),
            strict=True,
        )
    )
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        for position, item in enumerate(items):
            name = item.get("entityName") if isinstance(item, dict) else None
            try:
                if not isinstance(item, dict):
                    raise InvalidArgument("each item must be an object")
                owner = require_entity(ns_id, limits.name(name, field="entityName"))
                assert ns_id is not None
                if item.get("embedding") is None and item.get("text") is not None:
                    server_model(model_label(item.get("model")))
                    texts.append((position, owner, text_to_embed(item["text"])))
                    continue
                label, vector = resolve_vector(
                    ns_id, embedding=item.get("embedding"), text=item.get("text"), model=item.get("model")
                )
                store.put(IndexKey(ns_id, OwnerKind.ENTITY, label), [(owner, vector)])
                upserted += 1
            except DomainError as error:  # a missing entity, a bad vector: reported per item
                errors.append({"index": position, "entityName": name, "error": error.message})
        if texts and ns_id is not None:
            store.put(
                IndexKey(ns_id, OwnerKind.ENTITY, embedder.model_id),
                [(owner, embedded[text]) for _, owner, text in texts],
            )
            upserted += len(texts)
    errors.sort(key=lambda e: e["index"])
    return {"upserted": upserted, "errors": errors}


def _text_of(item: Any) -> str | None:
    """The text a batch item asks the server to embed, when it is one it can embed (else None:
    the item is checked, and refused, in the transaction, with its position)."""
    if not isinstance(item, dict) or item.get("embedding") is not None or item.get("text") is None:
        return None
    try:
        server_model(model_label(item.get("model")))
        return text_to_embed(item["text"])
    except DomainError:
        return None


class DeleteEmbeddingResult(TypedDict):
    entityName: str
    deleted: int


def delete_embedding(*, namespace: str, entity_name: str, model: Any = None) -> DeleteEmbeddingResult:
    """Delete an entity's vector (of one model, or of every model). Honoured by the next search."""
    name = limits.name(entity_name, field="entityName")
    label = model_label(model)
    with transaction.atomic():
        ns_id = namespaces.lookup(namespace)
        owner = require_entity(ns_id, name)
        deleted = store.delete(OwnerKind.ENTITY, [owner], model=label)
    return {"entityName": name, "deleted": deleted}


class ReindexResult(TypedDict):
    embedded: int
    indexes: list[dict[str, Any]]


def reindex(*, namespace: str) -> ReindexResult:
    """Embed the namespace's observations that lack a vector, then rebuild its indexes from the
    stored vectors (this retrains IVF-Flat lists and drops HNSW's deleted slots)."""
    ns_id = namespaces.lookup(namespace)
    if ns_id is None:
        return {"embedded": 0, "indexes": []}
    embedded = embed_missing(namespace_id=ns_id)
    rebuilt = []
    indexes = registry()
    for key, count, dims in store.index_keys(ns_id):
        indexes.drop(key)
        index = indexes.current(key)
        rebuilt.append(
            {"kind": key.kind, "model": key.model, "vectors": count, "dims": dims}
            | ({"index": index.stats().get("kind", type(index).__name__)} if index is not None else {})
        )
    return {"embedded": embedded, "indexes": rebuilt}


# --- Maintenance (vectors/tasks.py runs these on a schedule; see kernel/maintenance.py) --------
#
# Indexes live in each process's memory, so a job that runs in one process (a Celery worker, or
# whichever server process holds the job's lease) cannot retrain another's. The jobs decide from
# the database, which every process shares, and append a rebuild marker to the change log; each
# process holding that index rebuilds it when it next catches up (in the background for large
# indexes, see vectors/indexes.py), and the process running the job applies it at once.


class IndexRebuildNote(TypedDict):
    namespace: str
    kind: str
    model: str
    vectors: int
    reason: str


class IndexMaintenanceResult(TypedDict):
    checked: int
    rebuilt: list[IndexRebuildNote]


def _namespace_names(ids: list[int]) -> dict[int, str]:
    return namespaces.names(ids)


def _baseline(key: IndexKey) -> IndexBaseline | None:
    return IndexBaseline.objects.filter(namespace_id=key.namespace_id, owner_kind=key.kind, model=key.model).first()


def _mark_rebuild(key: IndexKey, baseline: IndexBaseline | None, vectors: int) -> None:
    """Write the rebuild marker and start the index's new baseline at it (inside the caller's
    transaction)."""
    seq = store.add_rebuild_marker(key)
    if baseline is None:
        baseline = IndexBaseline(namespace_id=key.namespace_id, owner_kind=key.kind, model=key.model)
    baseline.vectors, baseline.deletes, baseline.seq, baseline.rebuilt_seq = vectors, 0, seq, seq
    baseline.updated_at = timezone.now()
    baseline.save()


def _start_baseline(key: IndexKey, vectors: int) -> None:
    IndexBaseline.objects.create(
        namespace_id=key.namespace_id, owner_kind=key.kind, model=key.model, vectors=vectors, seq=store.last_seq()
    )


def retrain_grown_ivf(*, namespace_id: int | None = None) -> IndexMaintenanceResult:
    """Rebuild (retrain the k-means lists of) every IVF-Flat index, of one namespace or all, that
    holds MEMORYHUB_IVF_RETRAIN_GROWTH_PERCENT more vectors than at its last rebuild: lists trained
    on the first vectors of a namespace grow lopsided as it fills, and recall drops. An index seen
    for the first time only gets its baseline."""
    growth = settings.MEMORYHUB_IVF_RETRAIN_GROWTH_PERCENT
    pending: list[tuple[IndexKey, int, str]] = []
    checked = 0
    for key, count, _ in store.index_keys(namespace_id):
        if kind_for(count) != "ivf":
            continue
        checked += 1
        with transaction.atomic():
            baseline = _baseline(key)
            if baseline is None:
                _start_baseline(key, count)
                continue
            if count < settings.MEMORYHUB_IVF_NLIST or count * 100 < baseline.vectors * (100 + growth):
                continue
            reason = f"grew from {baseline.vectors} to {count} vectors"
            _mark_rebuild(key, baseline, count)
        pending.append((key, count, reason))
    return {"checked": checked, "rebuilt": _apply_rebuilds(pending)}


def compact_deleted_hnsw(*, namespace_id: int | None = None) -> IndexMaintenanceResult:
    """Rebuild every HNSW index, of one namespace or all, whose deletes since its last rebuild
    reach MEMORYHUB_HNSW_COMPACT_DELETED_PERCENT of the vectors it holds: a deleted vector stays in
    the graph as a tombstone that searches route through and skip (new vectors reuse some slots,
    which wears the graph too). An index seen for the first time only gets its baseline."""
    percent = settings.MEMORYHUB_HNSW_COMPACT_DELETED_PERCENT
    pending: list[tuple[IndexKey, int, str]] = []
    checked = 0
    for key, count, _ in store.index_keys(namespace_id):
        with transaction.atomic():
            baseline = _baseline(key)
            # Under "auto" an index shrunk by deletes below the exact-search size is still the HNSW
            # graph it was built as (the one a baseline was started for), with its tombstones.
            if kind_for(count) != "hnsw" and (baseline is None or settings.MEMORYHUB_VECTOR_INDEX != "auto"):
                continue
            checked += 1
            if baseline is None:
                _start_baseline(key, count)
                continue
            last = store.last_seq()
            deletes = baseline.deletes + store.deletes_between(key, baseline.seq, last)
            if deletes == 0 or deletes * 100 < percent * count:
                if (deletes, last) != (baseline.deletes, baseline.seq):
                    # Count the deletes seen so far into the baseline, so pruning the log loses none.
                    baseline.deletes, baseline.seq, baseline.updated_at = deletes, last, timezone.now()
                    baseline.save(update_fields=["deletes", "seq", "updated_at"])
                continue
            _mark_rebuild(key, baseline, count)
        pending.append((key, count, f"{deletes} deletes since the last rebuild, {count} vectors left"))
    return {"checked": checked, "rebuilt": _apply_rebuilds(pending)}


def _apply_rebuilds(pending: list[tuple[IndexKey, int, str]]) -> list[IndexRebuildNote]:
    names = _namespace_names([key.namespace_id for key, _, _ in pending])
    notes: list[IndexRebuildNote] = []
    for key, count, reason in pending:
        # After the commit: this process's copy (if it holds one) rebuilds now, not at next search.
        registry().refresh(key)
        notes.append(
            {
                "namespace": names.get(key.namespace_id, str(key.namespace_id)),
                "kind": key.kind,
                "model": key.model,
                "vectors": count,
                "reason": reason,
            }
        )
        logger.info("vector index rebuild asked: %s %s of %s (%s)", notes[-1]["namespace"], key.kind, key.model, reason)
    return notes


class PruneResult(TypedDict):
    pruned: int
    upto: int | None


def prune_change_log(*, retention_seconds: int | None = None) -> PruneResult:
    """Delete the vector change-log rows older than the retention window
    (MEMORYHUB_VECTOR_CHANGE_RETENTION_SECONDS unless given). Every process catches up from the
    log; one whose index is older than the pruned point rebuilds it from the stored vectors
    instead (vectors/store.py changes_since), so nothing is missed, only recomputed."""
    retention = settings.MEMORYHUB_VECTOR_CHANGE_RETENTION_SECONDS if retention_seconds is None else retention_seconds
    stamp = timezone.now()
    with transaction.atomic():
        ChangeLogMark.objects.create(seq=store.last_seq(), created_at=stamp)
        # Baselines of indexes that no longer hold any vector (a deleted namespace, a dropped model).
        db().execute(
            "DELETE FROM vectors_indexbaseline WHERE NOT EXISTS (SELECT 1 FROM vectors_embedding v "
            "WHERE v.namespace_id = vectors_indexbaseline.namespace_id "
            "AND v.owner_kind = vectors_indexbaseline.owner_kind AND v.model = vectors_indexbaseline.model)"
        )
        mark = (
            ChangeLogMark.objects.filter(created_at__lte=stamp - timedelta(seconds=retention))
            .order_by("-created_at", "-seq")
            .first()
        )
        if mark is None:
            return {"pruned": 0, "upto": None}
        # Deletes about to leave the log are counted into the HNSW baselines first.
        for baseline in IndexBaseline.objects.filter(seq__lt=mark.seq):
            key = IndexKey(baseline.namespace_id, baseline.owner_kind, baseline.model)
            baseline.deletes += store.deletes_between(key, baseline.seq, mark.seq)
            baseline.seq = mark.seq
            baseline.save(update_fields=["deletes", "seq"])
        ChangeLogMark.objects.filter(created_at__lt=mark.created_at).delete()
    pruned = store.prune_changes(mark.seq)
    if pruned:
        logger.info("vector change log: pruned %d rows up to #%d", pruned, mark.seq)
    return {"pruned": pruned, "upto": mark.seq}


class ReembedNamespace(TypedDict):
    namespace: str
    embedded: int
    total: int


class ReembedResult(TypedDict):
    model: str
    namespaces: list[ReembedNamespace]


# progress(done, total, namespace): texts embedded so far of all the run will embed.
ReembedProgress = Callable[[int, int, str], object]


def reembed(
    *, namespace: str | None = None, batch: int = 256, progress: ReembedProgress | None = None
) -> ReembedResult:
    """Embed, in the server's current embedding model, the observations and memories that have no
    vector in it: of `namespace`, or of every namespace whose stored vectors are of another model
    (its embedder changed: MEMORYHUB_EMBEDDER, or a new version of the built-in model). Batches
    commit one by one, so an interrupted run keeps its work and the next continues. The old
    model's vectors are kept (switching back needs no re-embedding); search uses the current
    model's only."""
    model = default_embedder().model_id
    if namespace is not None:
        ns_id = namespaces.lookup(namespace)
        if ns_id is None:
            raise InvalidArgument(f"namespace {namespace!r} does not exist")
        targets = [ns_id]
    else:
        targets = store.namespaces_with_other_models(OwnerKind.OBSERVATION, model)
    plan = [(ns_id, missing) for ns_id in targets if (missing := count_missing(namespace_id=ns_id))]
    names = _namespace_names([ns_id for ns_id, _ in plan])
    total = sum(missing for _, missing in plan)
    done = 0
    results: list[ReembedNamespace] = []
    for ns_id, missing in plan:
        name = names.get(ns_id, str(ns_id))

        def step(rows: int, name: str = name) -> None:
            nonlocal done
            done += rows
            if progress is not None:
                progress(min(done, total), total, name)

        embedded = embed_missing(namespace_id=ns_id, batch=batch, progress=step)
        results.append({"namespace": name, "embedded": embedded, "total": missing})
    return {"model": model, "namespaces": results}
