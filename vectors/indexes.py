"""The process's in-memory ANN indexes: built lazily from the stored vectors, kept current from the
change log, evicted least-recently-used.

Every search first applies the change-log rows written since the index last looked (one indexed
query, microseconds when nothing changed), so a vector written or deleted by any process (this
one, another server, a Celery worker) is reflected before the search runs. The stored blobs stay
the source of truth: an index can be dropped at any time and is rebuilt on next use.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from kernel.sql import POSTGRES
from vectors import store
from vectors.ann import Allowed, ExactIndex, Hit, HnswIndex, IvfFlatIndex, Metric, VectorIndex
from vectors.exceptions import InvalidVector
from vectors.store import IndexKey

logger = logging.getLogger(__name__)


# A rebuild asked for by a maintenance job (a marker in the change log) runs inline in the search
# that finds it up to this many vectors (milliseconds); above, it runs in a background thread while
# searches keep using the current index, which is swapped for the new one when it is ready (HNSW
# over 100k vectors takes about a minute to build).
INLINE_REBUILD_MAX = 2000


def kind_for(size: int) -> str:
    """The index kind a newly built index of `size` vectors gets under the current settings."""
    kind: str = settings.MEMORYHUB_VECTOR_INDEX
    if kind == "auto":
        kind = "exact" if size <= settings.MEMORYHUB_VECTOR_EXACT_MAX else "hnsw"
    return kind


def _new_index(size: int, dims: int) -> VectorIndex:
    metric = cast(Metric, settings.MEMORYHUB_VECTOR_METRIC)
    kind = kind_for(size)
    if kind == "hnsw":
        return HnswIndex(
            dims=dims,
            metric=metric,
            M=settings.MEMORYHUB_HNSW_M,
            ef_construction=settings.MEMORYHUB_HNSW_EF_CONSTRUCTION,
            ef_search=settings.MEMORYHUB_HNSW_EF_SEARCH,
            initial_capacity=max(1024, size + size // 4),
        )
    if kind == "ivf":
        return IvfFlatIndex(
            dims=dims, metric=metric, nlist=settings.MEMORYHUB_IVF_NLIST, nprobe=settings.MEMORYHUB_IVF_NPROBE
        )
    return ExactIndex(dims=dims, metric=metric, initial_capacity=max(1024, size))


@dataclass
class Loaded:
    index: VectorIndex | None  # None: nothing stored yet (dims unknown)
    seq: int
    lock: threading.Lock
    # PostgreSQL: changes to look at again besides those after `seq` (vectors/store.py).
    tail: store.LogTail = store.NO_TAIL
    # How many times the index was built from the stored vectors (the first build included), and
    # whether a background rebuild is under way.
    builds: int = 0
    rebuilding: bool = False


def _index_from(snapshot: store.Snapshot) -> VectorIndex | None:
    if snapshot.dims is None:
        return None
    index = _new_index(len(snapshot.ids), snapshot.dims)
    index.upsert(snapshot.ids, snapshot.matrix)
    if isinstance(index, IvfFlatIndex) and not index.trained:
        index.train()  # a no-op below nlist vectors; a bulk upsert past the threshold trained already
    return index


class IndexRegistry:
    """The loaded indexes of this process, by IndexKey."""

    def __init__(self, max_loaded: int, *, inline_rebuild_max: int = INLINE_REBUILD_MAX) -> None:
        self._max_loaded = max_loaded
        self._inline_rebuild_max = inline_rebuild_max
        self._loaded: OrderedDict[IndexKey, Loaded] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._loaded)

    def clear(self) -> None:
        with self._lock:
            self._loaded.clear()

    def drop(self, key: IndexKey) -> None:
        with self._lock:
            self._loaded.pop(key, None)

    def _entry(self, key: IndexKey) -> tuple[Loaded, bool]:
        with self._lock:
            entry = self._loaded.get(key)
            if entry is not None:
                self._loaded.move_to_end(key)
                return entry, False
            entry = self._loaded[key] = Loaded(None, -1, threading.Lock())
            while len(self._loaded) > self._max_loaded:
                self._loaded.popitem(last=False)
            return entry, True

    def current(self, key: IndexKey) -> VectorIndex | None:
        """The index of `key`, built or brought up to date with the change log; None if empty."""
        entry, _ = self._entry(key)
        with entry.lock:
            if entry.seq < 0 or (not POSTGRES and store.last_seq() < entry.seq):
                # Never built, or the log went backwards (a rolled-back transaction this process
                # had read, or a restored database): build from the blobs. (On PostgreSQL the
                # catch-up's own statement tells, and a rollback is undone there.)
                self._build(entry, key)
            else:
                self._catch_up(entry, key)
            return entry.index

    def refresh(self, key: IndexKey) -> bool:
        """Bring `key`'s index up to date if this process has it loaded (a maintenance job that
        just wrote a rebuild marker applies it here at once); whether it was loaded."""
        with self._lock:
            loaded = key in self._loaded
        if loaded:
            self.current(key)
        return loaded

    def _build(self, entry: Loaded, key: IndexKey) -> None:
        snapshot = store.load(key)
        entry.index = None  # the old index is garbage before the new one is built
        entry.index = _index_from(snapshot)
        entry.seq, entry.tail = snapshot.seq, snapshot.tail
        entry.builds += 1

    def _catch_up(self, entry: Loaded, key: IndexKey) -> None:
        changes = store.changes_since(key, entry.seq, entry.tail)
        if changes is None:
            return
        if changes.behind:
            # The log was pruned past this index's position (it sat unused for the whole retention
            # window): changes it never saw are gone from the log, so rebuild from the vectors.
            self._build(entry, key)
            return
        if changes.rebuild and (entry.index is None or len(entry.index) <= self._inline_rebuild_max):
            self._build(entry, key)
            return
        if changes.deleted and entry.index is not None:
            entry.index.delete(sorted(changes.deleted))
        if changes.upserted:
            vectors = list(changes.upserted.values())
            dims = int(vectors[0].shape[0])
            if entry.index is None or entry.index.dims != dims:
                # First vectors of this index, or its space was replaced (all rows rewritten).
                self._build(entry, key)
                return
            size = len(entry.index) + len(vectors)
            if isinstance(entry.index, ExactIndex) and _outgrew_exact(size):
                self._build(entry, key)
                return
            entry.index.upsert(list(changes.upserted), np.stack(vectors))
        entry.seq, entry.tail = changes.seq, changes.tail
        if changes.rebuild:
            self._rebuild_in_background(entry, key)

    def _rebuild_in_background(self, entry: Loaded, key: IndexKey) -> None:
        """Build a fresh index from the stored vectors in a thread and swap it in (the caller holds
        entry.lock). Searches meanwhile use the current index, kept current as usual."""
        if entry.rebuilding:
            return
        entry.rebuilding = True
        thread = threading.Thread(
            target=self._rebuild, args=(entry, key, entry.builds), name="memoryhub-index-rebuild", daemon=True
        )
        with _rebuilds_lock:
            _rebuilds.add(thread)
        thread.start()

    def _rebuild(self, entry: Loaded, key: IndexKey, builds: int) -> None:
        from django.db import connection

        try:
            snapshot = store.load(key)
            index = _index_from(snapshot)
            with entry.lock:
                entry.rebuilding = False
                if entry.builds != builds:
                    return  # rebuilt inline meanwhile (the log was pruned past it): this one is older
                entry.index, entry.seq, entry.tail = index, snapshot.seq, snapshot.tail
                entry.builds += 1
                self._catch_up(entry, key)
            logger.info(
                "vector index rebuilt: namespace %s, %s vectors of %s (%d)",
                key.namespace_id,
                key.kind,
                key.model,
                len(index) if index is not None else 0,
            )
        except Exception:  # the current index keeps serving; the next marker tries again
            with entry.lock:
                entry.rebuilding = False
            logger.exception(
                "vector index rebuild failed: namespace %s, %s of %s", key.namespace_id, key.kind, key.model
            )
        finally:
            connection.close()
            with _rebuilds_lock:
                _rebuilds.discard(threading.current_thread())

    def search(
        self, key: IndexKey, query: npt.NDArray[np.float32], *, k: int, allowed: Allowed | None = None
    ) -> list[Hit]:
        index = self.current(key)
        if index is None or k <= 0:
            return []
        if index.dims != query.shape[0]:
            raise InvalidVector(
                f"the query has {query.shape[0]} dimensions but the {key.kind} vectors of model "
                f"{key.model!r} in this namespace have {index.dims}",
                expected=index.dims,
                got=int(query.shape[0]),
                model=key.model,
            )
        return index.search(query, k=k, allowed=allowed)

    def stats(self) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._loaded.items())
        return [
            {
                "namespace_id": key.namespace_id,
                "kind": key.kind,
                "model": key.model,
                "seq": entry.seq,
                "builds": entry.builds,
                "rebuilding": entry.rebuilding,
            }
            | (entry.index.stats() if entry.index is not None else {"size": 0})
            # The index's stats name its own kind (exact, hnsw, ivf) under "kind": the owner kind
            # (entity, observation) is repeated under its own name.
            | {"owner": key.kind}
            for key, entry in items
        ]


def _outgrew_exact(size: int) -> bool:
    return settings.MEMORYHUB_VECTOR_INDEX == "auto" and size > 2 * max(settings.MEMORYHUB_VECTOR_EXACT_MAX, 1)


_registry: IndexRegistry | None = None
_registry_lock = threading.Lock()
_rebuilds: set[threading.Thread] = set()
_rebuilds_lock = threading.Lock()


def wait_for_rebuilds(timeout: float | None = None) -> bool:
    """Wait for the background rebuilds under way; whether they all ended within `timeout`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        with _rebuilds_lock:
            running = list(_rebuilds)
        if not running:
            return True
        for thread in running:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
            if thread.is_alive():
                return False


# A rebuild thread still inside numpy or hnswlib while the interpreter finalizes can abort the
# process (see warm_up_in_background): exit waits for them, up to 10 s.
atexit.register(wait_for_rebuilds, 10)


def registry() -> IndexRegistry:
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = IndexRegistry(settings.MEMORYHUB_VECTOR_MAX_LOADED)
        return _registry


@receiver(setting_changed)
def _reset_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    global _registry
    if setting.startswith(("MEMORYHUB_VECTOR", "MEMORYHUB_HNSW", "MEMORYHUB_IVF")):
        with _registry_lock:
            _registry = None


def warm_up_in_background() -> threading.Thread | None:
    """Build the stored indexes (largest first, up to MEMORYHUB_VECTOR_MAX_LOADED) in a thread, so
    the first search after a start-up does not pay for the build (HNSW over 100k vectors takes
    about a minute). Searches that arrive first simply build what they need.

    The thread stops between indexes when the process exits, and exit waits for it (up to 10 s):
    a thread still inside SQLite or numpy while the interpreter finalizes can abort the process,
    which a client sees as a crash on SIGTERM."""
    if not settings.MEMORYHUB_VECTOR_WARMUP:
        return None
    stop = threading.Event()
    thread = threading.Thread(target=_warm_up, args=(stop,), name="memoryhub-vector-warm-up", daemon=True)
    atexit.register(_stop_warm_up, thread, stop)
    thread.start()
    return thread


def _stop_warm_up(thread: threading.Thread, stop: threading.Event) -> None:
    stop.set()
    thread.join(timeout=10)


def _warm_up(stop: threading.Event) -> None:
    from django.db import connection

    try:
        keys = sorted(store.index_keys(), key=lambda item: -item[1])[: settings.MEMORYHUB_VECTOR_MAX_LOADED]
        for key, _, _ in keys:
            if stop.is_set():
                return
            registry().current(key)
        if keys:
            logger.info("vector indexes ready: %d built from the stored vectors", len(keys))
    except Exception:  # a failed warm-up only means the first searches build lazily
        logger.exception("vector index warm-up failed")
    finally:
        connection.close()
