"""The in-memory ANN layer (vectors.ann): exact, HNSW and IVF-Flat against one contract.

No database: these are pure data structures. Data are seeded Gaussian blobs (clustered, like real
embeddings), and ExactIndex is the ground truth the approximate kinds are measured against.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vectors.ann import (
    MAX_DIMS,
    ExactIndex,
    HnswIndex,
    IvfFlatIndex,
    VectorIndex,
    build_index,
)

KINDS = ["exact", "hnsw", "ivf"]
METRICS = ["cos", "ip", "l2"]


def blobs(n: int, dims: int, *, centers: int = 100, spread: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(centers, dims))
    return (means[rng.integers(centers, size=n)] + spread * rng.normal(size=(n, dims))).astype(np.float32)


def make(kind: str, metric: str = "cos", dims: int = 32, **params) -> VectorIndex:
    if kind == "ivf":
        # Small lists so a few hundred vectors are enough to train (auto-train at 40 x nlist).
        params = {"nlist": 4, "nprobe": 2, **params}
    return build_index(kind, dims=dims, metric=metric, **params)


def reference_scores(vectors: np.ndarray, query: np.ndarray, metric: str) -> np.ndarray:
    """The documented score convention, computed independently in float64."""
    v, q = vectors.astype(np.float64), query.astype(np.float64)
    if metric == "cos":
        return (v / np.linalg.norm(v, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    if metric == "ip":
        return v @ q
    return -np.linalg.norm(v - q, axis=1)


def ids_of(hits: list[tuple[int, float]]) -> list[int]:
    return [i for i, _ in hits]


# --- nearest neighbour and the score convention ------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", KINDS)
def test_planted_vector_is_the_nearest_neighbour(kind: str, metric: str) -> None:
    rng = np.random.default_rng(1)
    data = blobs(600, 32, seed=1)
    index = make(kind, metric)
    index.upsert(np.arange(600), data)
    query = rng.normal(size=32).astype(np.float32)
    # For ip the best match is the longest vector in the query's direction; for cos and l2 a
    # near-copy of the query.
    planted = query * 20 if metric == "ip" else query + 1e-3 * rng.normal(size=32).astype(np.float32)
    index.upsert([10_000], planted[None, :])

    hits = index.search(query, k=5)

    assert hits[0][0] == 10_000
    assert len(hits) == 5
    if kind == "ivf":
        assert index.stats()["trained"] is True
    expected = {"cos": 1.0, "ip": float(query @ planted), "l2": -float(np.linalg.norm(query - planted))}[metric]
    assert hits[0][1] == pytest.approx(expected, rel=1e-3, abs=1e-3)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", KINDS)
def test_scores_follow_the_convention_and_are_sorted_best_first(kind: str, metric: str) -> None:
    data = blobs(400, 16, seed=2)
    index = make(kind, metric, dims=16)
    index.upsert(np.arange(400) + 1_000, data)
    query = blobs(1, 16, seed=3)[0]

    hits = index.search(query, k=20)

    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    expected = reference_scores(data[np.array(ids_of(hits)) - 1_000], query, metric)
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
    if metric == "l2":
        assert all(s <= 0 for s in scores)
    if metric == "cos":
        assert all(-1 <= s <= 1 for s in scores)


# --- recall against the exact index ------------------------------------------------------------------


@pytest.fixture(scope="module")
def recall_data() -> tuple[np.ndarray, np.ndarray]:
    x = blobs(5_200, 64, seed=42)
    return x[:5_000], x[5_000:]


def recall_at_10(index: VectorIndex, truth: VectorIndex, queries: np.ndarray) -> float:
    found = 0
    for q in queries:
        expected = set(ids_of(truth.search(q, k=10)))
        found += len(expected & set(ids_of(index.search(q, k=10))))
    return found / (10 * len(queries))


# Measured on this data (seeded): HNSW defaults 1.00 for every metric; IVF nlist=50/nprobe=8
# about 0.99 for every metric. The bounds leave room for hnswlib's multi-threaded inserts.
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(
    ("kind", "params", "minimum"),
    [("hnsw", {}, 0.95), ("ivf", {"nlist": 50, "nprobe": 8}, 0.9)],
)
def test_recall_at_10_against_exact(recall_data, kind: str, params: dict, minimum: float, metric: str) -> None:
    data, queries = recall_data
    ids = np.arange(len(data)) * 2 + 1  # sparse ids, like primary keys after deletes
    truth = ExactIndex(dims=64, metric=metric)
    truth.upsert(ids, data)
    index = build_index(kind, dims=64, metric=metric, **params)
    for start in range(0, len(data), 1_000):  # batches, as the store will load them
        index.upsert(ids[start : start + 1_000], data[start : start + 1_000])
    if kind == "ivf":
        assert index.stats()["trained"] is True

    assert recall_at_10(index, truth, queries) >= minimum


# --- deletes ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", KINDS)
def test_deleted_ids_never_come_back(kind: str, metric: str) -> None:
    data = blobs(500, 16, seed=4)
    index = make(kind, metric, dims=16)
    index.upsert(np.arange(500), data)
    query = data[7]
    assert index.search(query, k=1)[0][0] == 7

    assert index.delete([7, 123_456]) == 1  # the unknown id is ignored
    assert index.search(query, k=1)[0][0] != 7  # at once
    index.delete(range(0, 500, 2))
    deleted = {7, *range(0, 500, 2)}

    assert not index.contains(7)
    assert len(index) == 249
    for q in data[:50]:
        hits = index.search(q, k=50)
        assert len(hits) == 50
        assert not deleted & set(ids_of(hits))
    everything = index.search(query, k=1_000)
    assert sorted(ids_of(everything)) == sorted(set(range(500)) - deleted)
    assert index.delete([7]) == 0


def test_ivf_deletes_are_honoured_before_and_after_training() -> None:
    data = blobs(400, 16, seed=5)
    index = IvfFlatIndex(dims=16, metric="l2", nlist=8, nprobe=2)  # auto-trains at 320
    index.upsert(np.arange(100), data[:100])
    assert index.stats()["trained"] is False
    index.delete([0, 1])
    assert {0, 1}.isdisjoint(ids_of(index.search(data[0], k=100)))

    assert index.train() is True  # deleted ids must not be resurrected by re-clustering
    assert len(index) == 98
    assert {0, 1}.isdisjoint(ids_of(index.search(data[0], k=100)))

    index.upsert(np.arange(100, 400), data[100:])
    index.delete([200, 201])
    assert index.search(data[200], k=1)[0][0] != 200
    assert {0, 1, 200, 201}.isdisjoint(ids_of(index.search(data[200], k=1_000)))
    assert len(index.search(data[200], k=1_000)) == 396


@pytest.mark.parametrize("kind", KINDS)
def test_deleting_everything_leaves_an_empty_index(kind: str) -> None:
    data = blobs(200, 8, seed=6)
    index = make(kind, dims=8)
    index.upsert(np.arange(200), data)
    index.delete(range(200))
    assert len(index) == 0
    assert index.search(data[0], k=5) == []


# --- upsert replaces ----------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", KINDS)
def test_upsert_replaces_the_vector_of_an_existing_id(kind: str, metric: str) -> None:
    data = blobs(400, 16, seed=7)
    index = make(kind, metric, dims=16)
    index.upsert(np.arange(400), data)
    far = -data[3] * 3  # a different place (and direction) from where id 3 was

    index.upsert([3], far[None, :])

    assert len(index) == 400
    hit = index.search(far, k=1)[0]
    assert hit[0] == 3
    assert hit[1] == pytest.approx(reference_scores(far[None, :], far, metric)[0], rel=1e-4, abs=1e-4)
    old_place = index.search(data[3], k=400)
    assert ids_of(old_place).count(3) == 1  # replaced, not duplicated
    assert ids_of(old_place)[0] != 3


def test_hnsw_delete_then_upsert_revives_and_new_ids_reuse_deleted_slots() -> None:
    data = blobs(600, 16, seed=8)
    index = HnswIndex(dims=16, metric="l2", initial_capacity=400)
    index.upsert(np.arange(400), data[:400])
    index.delete(range(100, 300))
    assert index.stats()["deleted"] == 200

    index.upsert([150], data[150][None, :])  # a deleted id comes back in its own slot
    index.upsert(np.arange(400, 599), data[400:599])  # 199 new ids fill the other deleted slots

    stats = index.stats()
    assert stats["capacity"] == 400  # no growth: slots were reused
    assert stats["deleted"] == 0
    assert len(index) == 400
    everything = ids_of(index.search(data[0], k=1_000))
    assert len(everything) == len(set(everything)) == 400
    assert set(everything) == set(range(100)) | {150} | set(range(300, 599))
    index.upsert([599], data[599][None, :])  # now it must grow
    assert index.stats()["capacity"] == 800
    for i in (0, 150, 399, 450, 598, 599):
        assert index.search(data[i], k=1)[0] == (i, pytest.approx(0.0, abs=1e-3))


# --- filtered search ----------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", KINDS)
def test_filtered_search_returns_only_allowed_ids_and_k_of_them(kind: str, metric: str) -> None:
    data = blobs(2_000, 16, seed=9)
    index = make(kind, metric, dims=16, **({"nlist": 16, "nprobe": 4} if kind == "ivf" else {}))
    index.upsert(np.arange(2_000), data)
    truth = ExactIndex(dims=16, metric=metric)
    truth.upsert(np.arange(2_000), data)
    calls: list[int] = []

    def one_in_seven(i: int) -> bool:
        calls.append(i)
        return i % 7 == 0

    found = 0
    for q in data[:20]:
        hits = index.search(q, k=10, allowed=one_in_seven)
        assert len(hits) == 10
        assert all(i % 7 == 0 for i in ids_of(hits))
        found += len(set(ids_of(hits)) & set(ids_of(truth.search(q, k=10, allowed=one_in_seven))))
    calls.clear()
    index.search(data[1], k=10, allowed=one_in_seven)
    assert len(calls) == len(set(calls))  # at most once per candidate
    if kind != "ivf":
        # The graph walk filters as it goes: measured 1.0 here. (IVF filters inside the probed
        # lists only, so its filtered recall is bounded by nprobe; see its docstring.)
        assert found / 200 >= 0.9
    else:
        assert isinstance(index, IvfFlatIndex)
        index.nprobe = 16  # every list probed: exact
        for q in data[:5]:
            assert ids_of(index.search(q, k=10, allowed=one_in_seven)) == ids_of(
                truth.search(q, k=10, allowed=one_in_seven)
            )

    # A filter that only a handful of ids pass, scattered over every cluster: all of them come
    # back, however few the graph walk or the probed lists would have met.
    few = {5, 777, 1_234, 1_999}
    hits = index.search(data[0], k=10, allowed=few.__contains__)
    assert set(ids_of(hits)) == few
    assert ids_of(index.search(data[0], k=3, allowed=few.__contains__)) == ids_of(
        truth.search(data[0], k=3, allowed=few.__contains__)
    )
    assert index.search(data[0], k=10, allowed=lambda i: False) == []


@pytest.mark.parametrize("kind", KINDS)
def test_filter_never_admits_deleted_ids(kind: str) -> None:
    data = blobs(500, 8, seed=10)
    index = make(kind, dims=8)
    index.upsert(np.arange(500), data)
    index.delete(range(0, 500, 3))
    hits = index.search(data[0], k=100, allowed=lambda i: i % 2 == 0)
    assert len(hits) == 100
    assert all(i % 2 == 0 and i % 3 != 0 for i in ids_of(hits))


# --- growth and IVF training ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_grows_beyond_initial_capacity(kind: str) -> None:
    data = blobs(1_000, 16, seed=11)
    index = build_index(kind, dims=16, metric="l2", initial_capacity=16)
    for start in range(0, 1_000, 7):
        index.upsert(np.arange(start, min(start + 7, 1_000)), data[start : start + 7])
    assert len(index) == 1_000
    if kind == "hnsw":
        assert index.stats()["capacity"] >= 1_000
    for i in range(0, 1_000, 97):
        assert index.search(data[i], k=1)[0][0] == i


def test_ivf_is_exact_until_trained_then_trains_itself() -> None:
    data = blobs(700, 16, centers=20, seed=12)
    exact = ExactIndex(dims=16, metric="cos")
    exact.upsert(np.arange(700), data)
    index = IvfFlatIndex(dims=16, metric="cos", nlist=8, nprobe=1)  # auto-trains at 40 x 8 = 320

    index.upsert(np.arange(319), data[:319])
    stats = index.stats()
    assert (stats["trained"], stats["lists"], stats["trainings"]) == (False, 1, 0)
    partial = ExactIndex(dims=16, metric="cos")
    partial.upsert(np.arange(319), data[:319])
    for q in data[600:620]:
        assert ids_of(index.search(q, k=10)) == ids_of(partial.search(q, k=10))  # exact, untrained

    index.upsert([319], data[319:320])
    stats = index.stats()
    assert (stats["trained"], stats["lists"], stats["trainings"]) == (True, 8, 1)
    index.upsert(np.arange(320, 700), data[320:])  # filed into lists, no retraining
    assert index.stats()["trainings"] == 1
    assert index.stats()["largest_list"] < 700

    assert index.train() is True  # the retrain entry point
    assert index.stats()["trainings"] == 2
    assert len(index) == 700
    assert recall_at_10(index, exact, data[:50]) >= 0.6  # nprobe=1 of 8: approximate (measured 0.74)
    index.nprobe = 8
    assert recall_at_10(index, exact, data[:50]) == 1.0  # probing every list is exact again


def test_ivf_train_needs_at_least_nlist_vectors() -> None:
    data = blobs(40, 8, seed=13)
    index = IvfFlatIndex(dims=8, metric="l2", nlist=16, auto_train_factor=0)
    index.upsert(np.arange(10), data[:10])
    assert index.train() is False
    index.upsert(np.arange(10, 40), data[10:])
    assert index.stats()["trained"] is False  # auto-training disabled
    assert index.train() is True
    index.delete(range(30))
    assert index.train() is False  # back to one exact list
    assert index.stats()["lists"] == 1
    assert sorted(ids_of(index.search(data[0], k=100))) == list(range(30, 40))


# --- validation and edges --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_is_rejected_before_anything_changes(kind: str) -> None:
    index = make(kind, "cos", dims=4)
    index.upsert([1], [[1, 0, 0, 0]])
    with pytest.raises(ValueError, match="got 3 dims, but this index holds 4-dim"):
        index.upsert([2], [[1, 0, 0]])
    with pytest.raises(ValueError, match="got 5 dims, but this index holds 4-dim"):
        index.search(np.ones(5), k=1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.upsert([2, 3], [[1, 0, 0, 0], [np.nan, 0, 0, 0]])
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.upsert([2], np.array([[np.inf, 0, 0, 0]], dtype=np.float32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.search([0, np.nan, 0, 0], k=1)
    with pytest.raises(ValueError, match="float32 range"):
        index.upsert([2], [[1e300, 0, 0, 0]])
    with pytest.raises(ValueError, match="zero vector"):
        index.upsert([2], [[0, 0, 0, 0]])
    with pytest.raises(ValueError, match="zero vector"):
        index.search([0, 0, 0, 0], k=1)
    with pytest.raises(ValueError, match="got 2 rows for 1 ids"):
        index.upsert([2], [[1, 0, 0, 0], [0, 1, 0, 0]])
    with pytest.raises(ValueError, match="repeat"):
        index.upsert([2, 2], [[1, 0, 0, 0], [0, 1, 0, 0]])
    with pytest.raises(ValueError, match="non-negative"):
        index.upsert([-1], [[1, 0, 0, 0]])
    with pytest.raises(ValueError, match="integers"):
        index.upsert([1.5], [[1, 0, 0, 0]])
    with pytest.raises(ValueError, match="k must be"):
        index.search([1, 0, 0, 0], k=-1)
    assert len(index) == 1
    assert index.search([1, 0, 0, 0], k=5) == [(1, pytest.approx(1.0))]


def test_constructor_and_factory_validation() -> None:
    with pytest.raises(ValueError, match="metric"):
        build_index("exact", dims=4, metric="dot")
    with pytest.raises(ValueError, match="kind"):
        build_index("annoy", dims=4, metric="cos")
    with pytest.raises(ValueError, match="limit is 4096"):
        build_index("hnsw", dims=MAX_DIMS + 1, metric="cos")
    with pytest.raises(ValueError, match="dims"):
        build_index("ivf", dims=0, metric="cos")
    with pytest.raises(TypeError):
        build_index("hnsw", dims=4, metric="cos", nprobe=3)
    assert isinstance(build_index("hnsw", dims=MAX_DIMS, metric="l2"), HnswIndex)
    assert isinstance(build_index("ivf", dims=4, metric="ip"), IvfFlatIndex)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", KINDS)
def test_k_edges_and_empty_index(kind: str, metric: str) -> None:
    index = make(kind, metric, dims=8)
    assert index.search(np.ones(8), k=10) == []
    data = blobs(6, 8, seed=14)
    index.upsert([10, 20, 30, 40, 50, 60], data)

    hits = index.search(data[2], k=100)

    assert sorted(ids_of(hits)) == [10, 20, 30, 40, 50, 60]
    assert hits[0][0] == 30
    assert index.search(data[2], k=0) == []
    index.upsert([], np.empty((0, 8)))  # an empty batch is a no-op
    assert len(index) == 6


@pytest.mark.parametrize("kind", KINDS)
def test_stats_and_membership(kind: str) -> None:
    index = make(kind, "ip", dims=8)
    index.upsert([1, 2], blobs(2, 8, seed=15))
    stats = index.stats()
    assert {k: stats[k] for k in ("kind", "size", "dims", "metric")} == {
        "kind": kind,
        "size": 2,
        "dims": 8,
        "metric": "ip",
    }
    assert stats["deleted"] == 0
    assert isinstance(stats["params"], dict)
    assert ("trained" in stats) == (kind == "ivf")
    assert index.contains(1)
    assert 2 in index
    assert 3 not in index
    assert "1" not in index


def test_hnsw_reads_and_writes_from_threads() -> None:
    data = blobs(3_000, 16, seed=16)
    index = HnswIndex(dims=16, metric="cos", initial_capacity=64)
    index.upsert(np.arange(500), data[:500])
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for start in range(500, 3_000, 50):
                index.upsert(np.arange(start, start + 50), data[start : start + 50])  # forces resizes
                index.delete(range(start - 500, start - 450))
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                for hit_id, _ in index.search(data[0], k=10, allowed=lambda i: i % 2 == 1):
                    assert hit_id % 2 == 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(index) == 500
    assert sorted(ids_of(index.search(data[2_999], k=1_000))) == list(range(2_500, 3_000))
