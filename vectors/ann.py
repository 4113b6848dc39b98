"""In-memory nearest-neighbour indexes over integer ids: exact (numpy), HNSW (hnswlib), IVF-Flat (numpy).

This is the pure index layer: no Django, no database. The vector store above it owns one index per
(namespace, owner kind, model), fills it from the stored blobs at start-up and replays changes by
`seq`; everything here is process-local and rebuilt, never persisted.

Contracts shared by every kind (see VectorIndex):

- **Ids** are non-negative integers below 2**63 (database primary keys). An id holds one vector;
  upserting it again replaces the vector.
- **Vectors** are float32 of exactly `dims` components (1..MAX_DIMS), all finite. For the "cos"
  metric they are normalised to unit length on the way in (so a zero vector is rejected) and the
  query is too. Bad input raises ValueError before anything changes.
- **Scores: higher is always better**, so results from different metrics and kinds sort the same
  way and fuse (RRF, MMR) without sign juggling:

  - "cos": cosine similarity, in [-1, 1];
  - "ip": inner product (unbounded);
  - "l2": the *negative* Euclidean distance, -‖q - v‖ (≤ 0; 0 is an exact match). Not squared,
    so scores are in the vectors' own units.

  `search` returns `(id, score)` pairs best first; equal scores are ordered by ascending id.
- **Deletes** are honoured by the very next search; deleting an unknown id is a no-op.
- **allowed** (optional) is a predicate on ids applied *during* the search, not to a fixed top-k
  after it: every kind returns k results whenever at least k live ids pass it (HNSW and IVF widen
  their search until they find them, falling back to a full scan at worst).
  It is called lazily, at most once per candidate, while the index lock is held: it must be fast
  and must not write to the same index from another thread.
- **Thread safety**: each public method holds the index's own re-entrant lock for its whole
  duration, so an index can be shared by threads. Reads are serialised too; see HnswIndex for why
  that is the right trade for hnswlib. hnswlib releases the GIL inside a query, so other Python
  threads (other indexes) keep running meanwhile.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal, get_args

import hnswlib
import numpy as np
import numpy.typing as npt

Metric = Literal["cos", "ip", "l2"]
IndexKind = Literal["hnsw", "ivf", "exact"]
Allowed = Callable[[int], bool]
Hit = tuple[int, float]

METRICS: tuple[str, ...] = get_args(Metric)
INDEX_KINDS: tuple[str, ...] = get_args(IndexKind)

# The protocol limit on embedding dims (DESIGN: "embedding dims 4,096").
MAX_DIMS = 4096
# hnswlib labels are size_t and numpy ids int64: ids must fit both.
MAX_ID = 2**63 - 1

_F32_MAX = float(np.finfo(np.float32).max)

F32Array = npt.NDArray[np.float32]
I64Array = npt.NDArray[np.int64]
IdsLike = Iterable[int] | npt.NDArray[np.integer[Any]]


# --- validation -------------------------------------------------------------------------------------


def _positive_int(value: Any, *, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def _check_metric(metric: Any) -> Metric:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    return metric


def _as_ids(ids: IdsLike, *, what: str = "ids") -> I64Array:
    arr = ids if isinstance(ids, np.ndarray) else np.asarray(list(ids))
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a flat sequence of integers, got an array of shape {arr.shape}")
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what} must be integers, got {arr.dtype}")
    if arr.dtype == np.uint64 and int(arr.max()) > MAX_ID:
        raise ValueError(f"{what} must be below 2**63")
    out: I64Array = arr.astype(np.int64, copy=False)
    if int(out.min()) < 0:
        raise ValueError(f"{what} must be non-negative, got {int(out.min())}")
    return out


def _as_matrix(vectors: npt.ArrayLike, *, rows: int, dims: int, metric: Metric, what: str) -> F32Array:
    """`vectors` as a C-contiguous float32 (rows, dims) matrix, unit rows for "cos"; ValueError otherwise."""
    arr = np.asarray(vectors)
    if arr.ndim == 1 and rows == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D array (one row per id), got shape {arr.shape}")
    if arr.shape[1] != dims:
        raise ValueError(f"{what}: got {arr.shape[1]} dims, but this index holds {dims}-dim vectors")
    if arr.shape[0] != rows:
        raise ValueError(f"{what}: got {arr.shape[0]} rows for {rows} ids")
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{what}: expected real numbers, got {arr.dtype}")
    if arr.dtype != np.float32:
        # Check range in the wide type first: a silent cast of 1e300 would make inf (and a warning).
        wide = arr.astype(np.float64)
        if not np.isfinite(wide).all():
            raise ValueError(f"{what}: NaN or infinite components are not allowed")
        if wide.size and float(np.abs(wide).max()) > _F32_MAX:
            raise ValueError(f"{what}: components beyond the float32 range are not allowed")
        arr = wide.astype(np.float32)
    elif not np.isfinite(arr).all():
        raise ValueError(f"{what}: NaN or infinite components are not allowed")
    if metric == "cos":
        # Norms in float64: squaring float32 components near their range would overflow.
        norms = np.linalg.norm(arr.astype(np.float64), axis=1)
        if (norms == 0).any():
            raise ValueError(f"{what}: a zero vector has no direction, so the cos metric cannot use it")
        arr = (arr / norms[:, None]).astype(np.float32)
    return np.ascontiguousarray(arr, dtype=np.float32)


# --- shared numeric helpers ---------------------------------------------------------------------------


def _scores(vecs: F32Array, sqnorms: F32Array, query: F32Array, q_sqnorm: float, metric: Metric) -> F32Array:
    """Scores of every row of `vecs` against `query`, higher is better (see the module docstring)."""
    dots = vecs @ query
    if metric != "l2":
        return dots
    # ‖v - q‖² = ‖v‖² - 2 v·q + ‖q‖²: one BLAS call instead of materialising v - q. Cancellation
    # can make it slightly negative (or imprecise) for near matches; results are re-scored exactly.
    d2 = sqnorms - 2.0 * dots + np.float32(q_sqnorm)
    np.maximum(d2, 0.0, out=d2)
    return -np.sqrt(d2)


def _exact_scores(vecs: F32Array, query: F32Array, metric: Metric) -> F32Array:
    """Precise scores for a few rows (used to report final scores, not to rank millions)."""
    if metric == "l2":
        diff = vecs - query
        return -np.sqrt(np.einsum("ij,ij->i", diff, diff))
    out = vecs @ query
    return np.clip(out, -1.0, 1.0) if metric == "cos" else out


def _select(scores: F32Array, ids: I64Array, k: int, allowed: Allowed | None) -> npt.NDArray[np.intp]:
    """Positions of the best k entries (score desc, id asc); with `allowed`, the best k that pass it.

    `allowed` is called in score order and only until k have passed, so a permissive filter costs
    about k calls; candidates are pulled in growing batches so a strict one stays O(n log n).
    """
    n = len(scores)
    if n == 0 or k <= 0:
        return np.empty(0, dtype=np.intp)
    if allowed is None:
        part = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
        return part[np.lexsort((ids[part], -scores[part]))]
    # NaN marks candidates already offered: partitioning sorts NaN after every real number.
    remaining = -scores.astype(np.float64)
    picked: list[int] = []
    offered = 0
    batch = max(4 * k, 64)
    while len(picked) < k and offered < n:
        m = min(batch, n - offered)
        part = np.argpartition(remaining, m - 1)[:m] if m < n else np.arange(n)
        part = part[np.lexsort((ids[part], remaining[part]))]
        for pos in part:
            if allowed(int(ids[pos])):
                picked.append(int(pos))
                if len(picked) == k:
                    break
        remaining[part] = np.nan
        offered += m
        batch *= 4
    return np.asarray(picked, dtype=np.intp)


class _Rows:
    """A growable, contiguous block of vectors with their ids and squared norms.

    Removal moves the last row into the hole (O(dims)), so live rows stay contiguous and a search
    is one BLAS call over `vecs[:n]`, with no tombstones to skip.
    """

    __slots__ = ("dims", "ids", "n", "sqnorms", "vecs")

    def __init__(self, dims: int, capacity: int = 0) -> None:
        self.dims = dims
        self.n = 0
        self.vecs: F32Array = np.empty((capacity, dims), dtype=np.float32)
        self.ids: I64Array = np.empty(capacity, dtype=np.int64)
        self.sqnorms: F32Array = np.empty(capacity, dtype=np.float32)

    def _reserve(self, extra: int) -> None:
        need = self.n + extra
        if need <= len(self.ids):
            return
        # Doubling keeps appends amortised O(1) per row.
        capacity = max(need, 2 * len(self.ids), 16)
        vecs = np.empty((capacity, self.dims), dtype=np.float32)
        vecs[: self.n] = self.vecs[: self.n]
        ids = np.empty(capacity, dtype=np.int64)
        ids[: self.n] = self.ids[: self.n]
        sqnorms = np.empty(capacity, dtype=np.float32)
        sqnorms[: self.n] = self.sqnorms[: self.n]
        self.vecs, self.ids, self.sqnorms = vecs, ids, sqnorms

    def append(self, ids: I64Array, vecs: F32Array) -> int:
        """Append rows; return the position of the first."""
        self._reserve(len(ids))
        start, end = self.n, self.n + len(ids)
        self.vecs[start:end] = vecs
        self.ids[start:end] = ids
        self.sqnorms[start:end] = np.einsum("ij,ij->i", vecs, vecs)
        self.n = end
        return start

    def set(self, pos: int, vec: F32Array) -> None:
        self.vecs[pos] = vec
        self.sqnorms[pos] = float(vec @ vec)

    def remove(self, pos: int) -> int | None:
        """Remove the row at `pos`; return the id of the row moved into it (None if none moved)."""
        last = self.n - 1
        self.n = last
        if pos == last:
            return None
        self.vecs[pos] = self.vecs[last]
        self.ids[pos] = self.ids[last]
        self.sqnorms[pos] = self.sqnorms[last]
        return int(self.ids[pos])

    def scores(self, query: F32Array, q_sqnorm: float, metric: Metric) -> F32Array:
        return _scores(self.vecs[: self.n], self.sqnorms[: self.n], query, q_sqnorm, metric)

    def matrix(self) -> F32Array:
        return self.vecs[: self.n]

    def id_array(self) -> I64Array:
        return self.ids[: self.n]


# --- the interface --------------------------------------------------------------------------------------


class VectorIndex(ABC):
    """A mutable set of (id, vector) pairs searchable by similarity. See the module docstring."""

    kind: ClassVar[str]

    def __init__(self, *, dims: int, metric: Metric) -> None:
        self._dims = _positive_int(dims, name="dims")
        if self._dims > MAX_DIMS:
            raise ValueError(f"dims is {self._dims}; the limit is {MAX_DIMS}")
        self._metric: Metric = _check_metric(metric)
        self._lock = threading.RLock()

    @property
    def dims(self) -> int:
        return self._dims

    @property
    def metric(self) -> Metric:
        return self._metric

    def __len__(self) -> int:
        """The number of live (not deleted) vectors."""
        with self._lock:
            return self._size()

    def __contains__(self, id: object) -> bool:
        return isinstance(id, int | np.integer) and not isinstance(id, bool) and self.contains(int(id))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} dims={self._dims} metric={self._metric} size={len(self)}>"

    def upsert(self, ids: IdsLike, vectors: npt.ArrayLike) -> None:
        """Insert or replace the vectors of `ids` (row i of `vectors` belongs to ids[i]).

        All-or-nothing on bad input: ValueError (wrong shape or dims, non-finite components, a zero
        vector under "cos", a negative or repeated id) before the index changes.
        """
        id_arr = _as_ids(ids)
        if len(np.unique(id_arr)) != len(id_arr):
            raise ValueError("ids repeat within one upsert; each id may appear once")
        mat = _as_matrix(vectors, rows=len(id_arr), dims=self._dims, metric=self._metric, what="vectors")
        if len(id_arr) == 0:
            return
        with self._lock:
            self._upsert(id_arr, mat)

    def delete(self, ids: IdsLike) -> int:
        """Remove `ids`; return how many were present. Unknown ids are ignored."""
        id_arr = _as_ids(ids)
        with self._lock:
            return self._delete([int(i) for i in np.unique(id_arr)])

    def search(self, query: npt.ArrayLike, *, k: int, allowed: Allowed | None = None) -> list[Hit]:
        """The best min(k, matches) live ids for `query` as (id, score), best first.

        `allowed`, when given, restricts results to ids for which it returns True (see the module
        docstring for when and how often it is called). An empty index returns [].
        """
        k = _positive_int(k, name="k", minimum=0)
        q = _as_matrix(query, rows=1, dims=self._dims, metric=self._metric, what="query")[0]
        if k == 0:
            return []
        with self._lock:
            if self._size() == 0:
                return []
            return self._search(q, k, allowed)

    def contains(self, id: int) -> bool:
        """Whether `id` currently has a live vector."""
        with self._lock:
            return self._contains(int(id))

    def stats(self) -> dict[str, Any]:
        """kind, size (live), deleted (tombstones still held), dims, metric, params, plus kind-specific keys."""
        with self._lock:
            return {
                "kind": self.kind,
                "size": self._size(),
                "deleted": 0,
                "dims": self._dims,
                "metric": self._metric,
                **self._stats(),
            }

    # Subclasses implement these; the public methods above have validated input and hold the lock.

    @abstractmethod
    def _size(self) -> int: ...

    @abstractmethod
    def _contains(self, id: int) -> bool: ...

    @abstractmethod
    def _upsert(self, ids: I64Array, vectors: F32Array) -> None: ...

    @abstractmethod
    def _delete(self, ids: list[int]) -> int: ...

    @abstractmethod
    def _search(self, query: F32Array, k: int, allowed: Allowed | None) -> list[Hit]: ...

    @abstractmethod
    def _stats(self) -> dict[str, Any]: ...


def _hits(ids: Iterable[int], scores: Iterable[float]) -> list[Hit]:
    """(id, score) pairs sorted best first, ties by ascending id."""
    return sorted(((int(i), float(s)) for i, s in zip(ids, scores, strict=True)), key=lambda h: (-h[1], h[0]))


# --- exact ----------------------------------------------------------------------------------------------


class ExactIndex(VectorIndex):
    """Brute force over one contiguous matrix: the ground truth, and the right choice for small sets.

    A search is one matrix-vector product over every live row (O(n·dims)); upsert and delete are
    O(dims) per id. Never approximate, never any tombstones.
    """

    kind = "exact"

    def __init__(self, *, dims: int, metric: Metric, initial_capacity: int = 1024) -> None:
        super().__init__(dims=dims, metric=metric)
        self._initial_capacity = _positive_int(initial_capacity, name="initial_capacity")
        self._rows = _Rows(self._dims, self._initial_capacity)
        self._pos: dict[int, int] = {}

    def _size(self) -> int:
        return len(self._pos)

    def _contains(self, id: int) -> bool:
        return id in self._pos

    def _upsert(self, ids: I64Array, vectors: F32Array) -> None:
        fresh: list[int] = []
        for i, ident in enumerate(ids.tolist()):
            pos = self._pos.get(ident)
            if pos is None:
                fresh.append(i)
            else:
                self._rows.set(pos, vectors[i])
        if fresh:
            start = self._rows.append(ids[fresh], vectors[fresh])
            for offset, ident in enumerate(ids[fresh].tolist()):
                self._pos[ident] = start + offset

    def _delete(self, ids: list[int]) -> int:
        removed = 0
        for ident in ids:
            pos = self._pos.pop(ident, None)
            if pos is None:
                continue
            removed += 1
            moved = self._rows.remove(pos)
            if moved is not None:
                self._pos[moved] = pos
        return removed

    def _search(self, query: F32Array, k: int, allowed: Allowed | None) -> list[Hit]:
        scores = self._rows.scores(query, float(query @ query), self._metric)
        best = _select(scores, self._rows.id_array(), k, allowed)
        return _hits(self._rows.ids[best], _exact_scores(self._rows.vecs[best], query, self._metric))

    def _stats(self) -> dict[str, Any]:
        return {"params": {"initial_capacity": self._initial_capacity}}


# --- HNSW -----------------------------------------------------------------------------------------------


class HnswIndex(VectorIndex):
    """A hnswlib graph (approximate; recall tuned by M, ef_construction and ef_search).

    - **Metric**: "cos" and "ip" use hnswlib's "ip" space ("cos" vectors arrive normalised, so
      1 - distance is the cosine); "l2" uses its "l2" space (squared distance, square-rooted here).
    - **Capacity**: starts at `initial_capacity` slots and doubles (resize_index) before an upsert
      would overflow it; hnswlib would otherwise add part of a batch and then fail.
    - **Upsert of an existing id** re-adds the same label, which hnswlib turns into an in-place
      update of that element (vector and links repaired). A deleted id is unmarked first and updated
      the same way. A brand-new id is added with `replace_deleted=True`, reusing the slot of some
      deleted element if there is one, so churn does not grow memory without bound. (The two paths
      must stay separate: hnswlib's replace path does not check whether the label already exists and
      would leave a stale duplicate of it.)
    - **Delete** is `mark_deleted`: searches skip the element at once, it still routes traversals,
      and its slot is reused by later new ids. `stats()["deleted"]` counts such slots; rebuilding
      the index from its live vectors is the compaction.
    - **Filtered search** passes `allowed` to `knn_query(filter=...)`: disallowed nodes are still
      traversed but not collected, so the graph keeps finding allowed neighbours. If fewer than k
      are reachable (a very strict filter, or a graph worn by deletes), hnswlib gives up, and this
      falls back to an exact scan of the live ids that pass the filter.
    - **ef** is max(ef_search, k) per query, so asking for more results never returns fewer.
    - **Threads**: hnswlib documents add_items as unsafe concurrently with knn_query, and
      mark_deleted/resize_index as unsafe with anything; ef is a per-index setting that a query must
      set and use atomically. So every operation holds the index lock (queries included).
      `num_threads` only parallelises a single large add_items call (bulk loads at start-up);
      queries are single-threaded, which also keeps the Python `allowed` callback on this thread.
    """

    kind = "hnsw"

    def __init__(
        self,
        *,
        dims: int,
        metric: Metric,
        M: int = 16,
        ef_construction: int = 200,
        ef_search: int = 64,
        initial_capacity: int = 1024,
        num_threads: int = -1,
        seed: int = 100,
    ) -> None:
        super().__init__(dims=dims, metric=metric)
        self._M = _positive_int(M, name="M", minimum=2)
        self._ef_construction = _positive_int(ef_construction, name="ef_construction")
        self._ef_search = _positive_int(ef_search, name="ef_search")
        self._initial_capacity = _positive_int(initial_capacity, name="initial_capacity")
        if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads == 0 or num_threads < -1:
            raise ValueError(f"num_threads must be -1 (all cores) or >= 1, not {num_threads!r}")
        self._num_threads = num_threads
        self._seed = _positive_int(seed, name="seed", minimum=0)
        self._index = hnswlib.Index(space="l2" if metric == "l2" else "ip", dim=self._dims)
        self._index.init_index(
            max_elements=self._initial_capacity,
            M=self._M,
            ef_construction=self._ef_construction,
            random_seed=self._seed,
            allow_replace_deleted=True,
        )
        self._index.set_ef(self._ef_search)
        self._live: set[int] = set()

    @property
    def ef_search(self) -> int:
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        with self._lock:
            self._ef_search = _positive_int(value, name="ef_search")

    def _size(self) -> int:
        return len(self._live)

    def _contains(self, id: int) -> bool:
        return id in self._live

    def _ensure_capacity(self, new_slots: int) -> None:
        capacity = int(self._index.max_elements)
        need = int(self._index.element_count) + new_slots
        if need <= capacity:
            return
        while capacity < need:
            capacity *= 2
        self._index.resize_index(capacity)

    def _upsert(self, ids: I64Array, vectors: F32Array) -> None:
        known: list[int] = []  # positions of ids the graph holds (live, or deleted and now unmarked)
        fresh: list[int] = []  # positions of ids the graph has never held (or whose slot was reused)
        for i, ident in enumerate(ids.tolist()):
            if ident in self._live:
                known.append(i)
                continue
            try:
                self._index.unmark_deleted(ident)
            except RuntimeError:  # "Label not found": not in the graph at all
                fresh.append(i)
            else:
                self._live.add(ident)
                known.append(i)
        if known:
            self._index.add_items(vectors[known], ids[known], num_threads=self._num_threads, replace_deleted=False)
        if fresh:
            # New ids fill deleted slots first; only the rest need room.
            vacant = int(self._index.element_count) - len(self._live)
            self._ensure_capacity(max(0, len(fresh) - vacant))
            self._index.add_items(vectors[fresh], ids[fresh], num_threads=self._num_threads, replace_deleted=True)
            self._live.update(ids[fresh].tolist())

    def _delete(self, ids: list[int]) -> int:
        removed = 0
        for ident in ids:
            if ident in self._live:
                self._index.mark_deleted(ident)
                self._live.remove(ident)
                removed += 1
        return removed

    def _score(self, distances: F32Array) -> F32Array:
        if self._metric == "l2":
            return -np.sqrt(np.maximum(distances, 0.0))
        similarity = 1.0 - distances  # hnswlib's "ip" distance is 1 - v·q
        return np.clip(similarity, -1.0, 1.0) if self._metric == "cos" else similarity

    def _search(self, query: F32Array, k: int, allowed: Allowed | None) -> list[Hit]:
        k = min(k, len(self._live))
        ef = max(self._ef_search, k)
        if self._index.ef != ef:
            self._index.set_ef(ef)
        try:
            labels, distances = self._index.knn_query(query, k=k, num_threads=1, filter=allowed)
        except RuntimeError as exc:
            # hnswlib found fewer than k (it cannot return a ragged array): scan instead.
            if "contiguous 2D array" not in str(exc):
                raise
            return self._scan(query, k, allowed)
        return _hits(labels[0].tolist(), self._score(distances[0]).tolist())

    def _scan(self, query: F32Array, k: int, allowed: Allowed | None) -> list[Hit]:
        candidates = sorted(self._live) if allowed is None else [i for i in sorted(self._live) if allowed(i)]
        if not candidates:
            return []
        ids = np.asarray(candidates, dtype=np.int64)
        scores = np.empty(len(ids), dtype=np.float32)
        step = 8192  # bounds the temporary copy get_items makes
        for start in range(0, len(ids), step):
            chunk = np.asarray(self._index.get_items(ids[start : start + step].tolist()), dtype=np.float32)
            scores[start : start + step] = _exact_scores(chunk, query, self._metric)
        best = _select(scores, ids, k, None)
        return _hits(ids[best], scores[best])

    def _stats(self) -> dict[str, Any]:
        return {
            "deleted": int(self._index.element_count) - len(self._live),
            "capacity": int(self._index.max_elements),
            "params": {
                "M": self._M,
                "ef_construction": self._ef_construction,
                "ef_search": self._ef_search,
                "initial_capacity": self._initial_capacity,
                "num_threads": self._num_threads,
                "seed": self._seed,
            },
        }


# --- IVF-Flat -------------------------------------------------------------------------------------------


def _nearest_centroids(x: F32Array, centroids: F32Array, c_sqnorms: F32Array) -> npt.NDArray[np.intp]:
    """Index of the L2-nearest centroid of each row of x (chunked to bound the n-by-nlist temporary)."""
    out = np.empty(len(x), dtype=np.intp)
    step = max(1, 2**22 // max(1, len(centroids)))
    for start in range(0, len(x), step):
        # argmin ‖x - c‖² = argmax (x·c - ‖c‖²/2)
        sims = x[start : start + step] @ centroids.T - 0.5 * c_sqnorms
        out[start : start + step] = np.argmax(sims, axis=1)
    return out


def _kmeans(x: F32Array, k: int, *, iters: int, rng: np.random.Generator) -> F32Array:
    """k centroids of x (len(x) >= k) by k-means++ seeding and at most `iters` Lloyd iterations."""
    n = len(x)
    sq = np.einsum("ij,ij->i", x, x)
    centroids = np.empty((k, x.shape[1]), dtype=np.float32)
    first = int(rng.integers(n))
    centroids[0] = x[first]
    # Squared distance of each point to its nearest chosen centroid (float64: it is summed).
    d2 = np.maximum(sq - 2.0 * (x @ x[first]) + sq[first], 0.0).astype(np.float64)
    for j in range(1, k):
        total = float(d2.sum())
        if total > 0.0:
            pick = int(np.searchsorted(np.cumsum(d2), rng.random() * total, side="right"))
            pick = min(pick, n - 1)
        else:  # every point coincides with a centroid already: any will do
            pick = int(rng.integers(n))
        centroids[j] = x[pick]
        np.minimum(d2, np.maximum(sq - 2.0 * (x @ x[pick]) + sq[pick], 0.0), out=d2)

    assign = np.full(n, -1, dtype=np.intp)
    for _ in range(iters):
        c_sq = np.einsum("ij,ij->i", centroids, centroids)
        new_assign = _nearest_centroids(x, centroids, c_sq)
        if np.array_equal(new_assign, assign):
            break
        assign = new_assign
        counts = np.bincount(assign, minlength=k)
        order = np.argsort(assign, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(counts)))
        grouped = x[order]
        for j in range(k):
            if counts[j]:
                centroids[j] = grouped[bounds[j] : bounds[j + 1]].sum(axis=0, dtype=np.float64) / counts[j]
        empty = np.flatnonzero(counts == 0)
        if len(empty):
            # Re-seed empty clusters with the points worst served by their current centroid.
            resid = np.einsum("ij,ij->i", x - centroids[assign], x - centroids[assign])
            centroids[empty] = x[np.argsort(-resid, kind="stable")[: len(empty)]]
            assign[:] = -1  # force another assignment round
    return centroids


class IvfFlatIndex(VectorIndex):
    """Inverted lists of full vectors around k-means centroids (approximate; recall set by nprobe).

    - **Untrained** it is exact: all vectors sit in one list and every search scans it.
    - **Training** (k-means++ then Lloyd, numpy, seeded) happens automatically, once, inside the
      upsert that brings the size to `auto_train_factor x nlist` (0 disables that), or whenever
      `train()` is called: `train()` is the retrain entry point for maintenance tasks, re-clustering
      the current vectors so lists follow the data as it drifts. Training uses at most
      `max_train_per_list x nlist` sampled vectors and then assigns every vector.
    - **After training**, an upsert files the vector under its nearest centroid (moving it between
      lists if it changed) and a delete removes it from its list at once; centroids stay fixed until
      the next `train()`.
    - **Search** scans the `nprobe` lists whose centroids are best for the query and, if they hold
      fewer than k matches (or fewer than k allowed by the filter), keeps widening in centroid
      order, so it returns k results whenever k exist. A filter is applied inside the probed lists:
      once they hold k allowed ids the search stops, so under a selective filter the true best
      allowed ids may sit in lists not probed and recall drops faster than unfiltered
      (bench/RESULTS.md, "Design measurements"). Raise nprobe, or use
      HNSW or exact, for heavily filtered queries.
    - Clustering, filing and probing all use L2 to the centroids, whatever the metric (for "cos"
      the vectors are unit length, so that is the cosine order).
    """

    kind = "ivf"

    def __init__(
        self,
        *,
        dims: int,
        metric: Metric,
        nlist: int = 100,
        nprobe: int = 8,
        auto_train_factor: int = 40,
        max_train_per_list: int = 256,
        kmeans_iters: int = 20,
        seed: int = 0,
    ) -> None:
        super().__init__(dims=dims, metric=metric)
        self._nlist = _positive_int(nlist, name="nlist")
        self._nprobe = _positive_int(nprobe, name="nprobe")
        self._auto_train_factor = _positive_int(auto_train_factor, name="auto_train_factor", minimum=0)
        self._max_train_per_list = _positive_int(max_train_per_list, name="max_train_per_list")
        self._kmeans_iters = _positive_int(kmeans_iters, name="kmeans_iters")
        self._seed = _positive_int(seed, name="seed", minimum=0)
        self._centroids: F32Array | None = None
        self._c_sqnorms: F32Array = np.empty(0, dtype=np.float32)
        self._lists: list[_Rows] = [_Rows(self._dims)]
        self._loc: dict[int, tuple[int, int]] = {}  # id → (list number, row in that list)
        self._trainings = 0

    @property
    def trained(self) -> bool:
        with self._lock:
            return self._centroids is not None

    @property
    def nprobe(self) -> int:
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        with self._lock:
            self._nprobe = _positive_int(value, name="nprobe")

    def train(self) -> bool:
        """(Re)cluster the current vectors into nlist lists; return whether the index is now trained.

        With fewer vectors than nlist there is nothing to cluster: the index becomes (or stays)
        untrained, i.e. exact, and auto-training applies again once it grows.
        """
        with self._lock:
            return self._train()

    def _train(self) -> bool:
        ids = np.concatenate([rows.id_array() for rows in self._lists])
        vecs = np.concatenate([rows.matrix() for rows in self._lists])
        n = len(ids)
        if n < self._nlist:
            self._centroids = None
            self._c_sqnorms = np.empty(0, dtype=np.float32)
            self._rebuild_lists(ids, vecs, np.zeros(n, dtype=np.intp), 1)
            return False
        # A fresh generator per training: the same vectors always give the same lists.
        rng = np.random.default_rng(self._seed)
        limit = self._max_train_per_list * self._nlist
        sample = vecs[np.sort(rng.choice(n, size=limit, replace=False))] if n > limit else vecs
        centroids = _kmeans(sample, self._nlist, iters=self._kmeans_iters, rng=rng)
        c_sqnorms = np.einsum("ij,ij->i", centroids, centroids)
        self._centroids, self._c_sqnorms = centroids, c_sqnorms
        self._rebuild_lists(ids, vecs, _nearest_centroids(vecs, centroids, c_sqnorms), self._nlist)
        self._trainings += 1
        return True

    def _rebuild_lists(self, ids: I64Array, vecs: F32Array, assign: npt.NDArray[np.intp], nlists: int) -> None:
        counts = np.bincount(assign, minlength=nlists)
        order = np.argsort(assign, kind="stable")
        bounds = np.concatenate(([0], np.cumsum(counts)))
        lists: list[_Rows] = []
        loc: dict[int, tuple[int, int]] = {}
        for j in range(nlists):
            rows = _Rows(self._dims, int(counts[j]))
            members = order[bounds[j] : bounds[j + 1]]
            rows.append(ids[members], vecs[members])
            loc.update((ident, (j, pos)) for pos, ident in enumerate(ids[members].tolist()))
            lists.append(rows)
        self._lists, self._loc = lists, loc

    def _size(self) -> int:
        return len(self._loc)

    def _contains(self, id: int) -> bool:
        return id in self._loc

    def _assign(self, vectors: F32Array) -> npt.NDArray[np.intp]:
        if self._centroids is None:
            return np.zeros(len(vectors), dtype=np.intp)
        return _nearest_centroids(vectors, self._centroids, self._c_sqnorms)

    def _remove_at(self, list_no: int, pos: int) -> None:
        moved = self._lists[list_no].remove(pos)
        if moved is not None:
            self._loc[moved] = (list_no, pos)

    def _upsert(self, ids: I64Array, vectors: F32Array) -> None:
        assign = self._assign(vectors)
        fresh: dict[int, list[int]] = {}  # list number → positions in this batch to append there
        for i, (ident, list_no) in enumerate(zip(ids.tolist(), assign.tolist(), strict=True)):
            where = self._loc.get(ident)
            if where is not None:
                if where[0] == list_no:
                    self._lists[list_no].set(where[1], vectors[i])
                    continue
                del self._loc[ident]
                self._remove_at(*where)
            fresh.setdefault(list_no, []).append(i)
        for list_no, members in fresh.items():
            start = self._lists[list_no].append(ids[members], vectors[members])
            self._loc.update((ident, (list_no, start + off)) for off, ident in enumerate(ids[members].tolist()))
        if (
            self._centroids is None
            and self._auto_train_factor
            and len(self._loc) >= self._auto_train_factor * self._nlist
        ):
            self._train()

    def _delete(self, ids: list[int]) -> int:
        removed = 0
        for ident in ids:
            where = self._loc.pop(ident, None)
            if where is not None:
                self._remove_at(*where)
                removed += 1
        return removed

    def _search(self, query: F32Array, k: int, allowed: Allowed | None) -> list[Hit]:
        q_sq = float(query @ query)
        if self._centroids is None:
            order: list[int] = [0]
        else:
            # Lists are probed nearest-centroid-first in L2, the rule vectors were filed by, for every
            # metric: for "ip", ranking centroids by inner product instead measured worse on
            # clustered data (it over-favours far, large-norm centroids).
            affinity = self._centroids @ query - 0.5 * self._c_sqnorms
            order = np.lexsort((np.arange(len(affinity)), -affinity)).tolist()
        check: Allowed | None = None
        if allowed is not None:
            # Widening re-ranks the candidates seen so far; ask about each id only once.
            verdicts: dict[int, bool] = {}
            user_allowed = allowed

            def check(ident: int) -> bool:
                verdict = verdicts.get(ident)
                if verdict is None:
                    verdict = verdicts[ident] = bool(user_allowed(ident))
                return verdict

        id_parts: list[I64Array] = []
        score_parts: list[F32Array] = []
        probed, step = 0, self._nprobe
        while True:
            for list_no in order[probed : probed + step]:
                rows = self._lists[list_no]
                if rows.n:
                    id_parts.append(rows.id_array())
                    score_parts.append(rows.scores(query, q_sq, self._metric))
            probed += step
            step *= 2
            ids = np.concatenate(id_parts) if id_parts else np.empty(0, dtype=np.int64)
            scores = np.concatenate(score_parts) if score_parts else np.empty(0, dtype=np.float32)
            best = _select(scores, ids, k, check)
            if len(best) >= k or probed >= len(order):
                break
        found = ids[best].tolist()
        located = [self._loc[i] for i in found]
        vecs = np.stack([self._lists[j].vecs[pos] for j, pos in located]) if located else np.empty((0, self._dims))
        return _hits(found, _exact_scores(vecs.astype(np.float32, copy=False), query, self._metric))

    def _stats(self) -> dict[str, Any]:
        sizes = [rows.n for rows in self._lists]
        return {
            "trained": self._centroids is not None,
            "trainings": self._trainings,
            "lists": len(self._lists),
            "largest_list": max(sizes) if sizes else 0,
            "params": {
                "nlist": self._nlist,
                "nprobe": self._nprobe,
                "auto_train_factor": self._auto_train_factor,
                "max_train_per_list": self._max_train_per_list,
                "kmeans_iters": self._kmeans_iters,
                "seed": self._seed,
            },
        }


# --- factory --------------------------------------------------------------------------------------------

_KINDS: dict[str, type[VectorIndex]] = {"exact": ExactIndex, "hnsw": HnswIndex, "ivf": IvfFlatIndex}


def build_index(kind: IndexKind, *, dims: int, metric: Metric, **params: Any) -> VectorIndex:
    """A new, empty index of `kind` ("hnsw", "ivf" or "exact"); `params` go to its constructor.

    ValueError for an unknown kind or a bad parameter value, TypeError for an unknown parameter.
    """
    cls = _KINDS.get(kind)
    if cls is None:
        raise ValueError(f"index kind must be one of {', '.join(INDEX_KINDS)}; got {kind!r}")
    return cls(dims=dims, metric=metric, **params)


__all__ = [
    "INDEX_KINDS",
    "MAX_DIMS",
    "MAX_ID",
    "METRICS",
    "ExactIndex",
    "HnswIndex",
    "IndexKind",
    "IvfFlatIndex",
    "Metric",
    "VectorIndex",
    "build_index",
]
