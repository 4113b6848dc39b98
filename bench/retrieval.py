"""Memory retrieval: quality on the evaluation set, and speed at scale, through the real services.

    make bench BENCH=retrieval                              # recall@1/@5 per category and mode
    make bench BENCH=retrieval BENCH_ARGS="--latency 100000"  # + write/search timings at 100k memories

Quality: the memories of bench/eval/memories.jsonl are written with the memory operations (embedded on
write with the built-in model, as in production) into one namespace, and every query of
bench/eval/queries.jsonl is searched in keyword, vector and hybrid mode. Recall@k is the share of
queries with a relevant memory among the first k results.

Speed: `--latency N` writes N generated memories (bench/corpus.py) in batches through the same
service, then times hybrid and vector searches (embedding the query included) and the bare index
query. With more than MEMORYHUB_VECTOR_EXACT_MAX vectors the index is HNSW, built once from the
stored vectors before timing (its build time is printed too).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.setup import django_on, settle
from bench.stats import median, p95

EVAL_DIR = Path(__file__).resolve().parent / "eval"
MODES = ("keyword", "vector", "hybrid")
NAMESPACE = "bench:eval"


def _load(name: str) -> list[dict[str, Any]]:
    with (EVAL_DIR / name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _operator() -> Any:
    from access.permissions import Access, Grant, Permission

    return Access(grants=(Grant("*", Permission.WRITE),), default_namespace=NAMESPACE)


def evaluate(top: int = 5) -> dict[str, dict[str, tuple[float, float]]]:
    """{category: {mode: (recall@1, recall@top)}} over the evaluation set (plus an "all" row)."""
    from access.operations import perform
    from memory import operations
    from memory.services import NewMemory

    access = _operator()
    items = _load("memories.jsonl")
    queries = _load("queries.jsonl")
    written = perform(
        access, operations.WRITE, namespace=NAMESPACE, memories=[NewMemory(text=item["text"]) for item in items]
    )
    eval_id = {row["id"]: item["id"] for row, item in zip(written, items, strict=True)}
    hits: dict[str, dict[str, list[tuple[bool, bool]]]] = defaultdict(lambda: defaultdict(list))
    for query in queries:
        relevant = set(query["relevant"])
        for mode in MODES:
            result = perform(access, operations.SEARCH, query=query["query"], top_k=top, mode=mode)
            found = [eval_id[hit["id"]] for hit in result["results"]]
            outcome = (bool(found[:1]) and found[0] in relevant, bool(relevant & set(found[:top])))
            hits[query["category"]][mode].append(outcome)
            hits["all"][mode].append(outcome)
    return {
        category: {
            mode: (sum(a for a, _ in rows) / len(rows), sum(b for _, b in rows) / len(rows))
            for mode, rows in by_mode.items()
        }
        for category, by_mode in hits.items()
    }


def print_quality(table: dict[str, dict[str, tuple[float, float]]], top: int) -> None:
    counts: dict[str, int] = defaultdict(int)
    for query in _load("queries.jsonl"):
        counts[query["category"]] += 1
    counts["all"] = sum(counts.values())
    header = " | ".join(f"{mode} @1 / @{top}" for mode in MODES)
    print(f"| category (queries) | {header} |")
    print("|---|" + "---|" * len(MODES))
    for category in sorted(table, key=lambda c: (c == "all", c)):
        cells = " | ".join(f"{table[category][m][0]:.2f} / {table[category][m][1]:.2f}" for m in MODES)
        print(f"| {category} ({counts[category]}) | {cells} |")


def latency(size: int, *, searches: int, batch: int) -> None:
    from django.conf import settings

    from access import namespaces
    from access.operations import perform
    from bench.corpus import corpus, held_out
    from graph import observations
    from memory import operations
    from memory.services import NewMemory
    from vectors.embedders import default_embedder
    from vectors.embedding import embed_texts
    from vectors.indexes import registry
    from vectors.models import OwnerKind
    from vectors.store import IndexKey, index_keys

    access = _operator()
    texts = corpus(size)
    # With --db, a second run reuses what the first wrote (writing 100k takes minutes).
    scale_id = namespaces.lookup("bench:scale")
    present = observations.count(scale_id) if scale_id is not None else 0
    started = time.perf_counter()
    for start in range(present, size, batch):
        perform(
            access,
            operations.WRITE,
            namespace="bench:scale",
            memories=[NewMemory(text=text) for text in texts[start : start + batch]],
        )
    if size > present:
        seconds = time.perf_counter() - started
        written = size - present
        print(f"wrote {written:,} memories (embedded on write) in {seconds:.1f} s: {written / seconds:,.0f}/s")
    settle()

    key = next(k for k, _, _ in index_keys() if k.kind == OwnerKind.OBSERVATION and k.model != "")
    registry().clear()
    started = time.perf_counter()
    index = registry().current(key)
    print(f"index build from the stored vectors: {time.perf_counter() - started:.1f} s ({type(index).__name__})")

    queries = held_out(searches, set(texts[: min(size, 50_000)]))
    embedder = default_embedder()
    vectors = embed_texts(queries, embedder=embedder)
    timings: dict[str, list[float]] = defaultdict(list)
    for query, vector in zip(queries, vectors, strict=True):
        started = time.perf_counter()
        registry().search(IndexKey(key.namespace_id, key.kind, key.model), vector, k=10)
        timings["index query (k=10)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        embed_texts([query], embedder=embedder)
        timings["embed the query"].append(time.perf_counter() - started)
        for mode in ("vector", "hybrid"):
            started = time.perf_counter()
            perform(access, operations.SEARCH, namespace="bench:scale", query=query, top_k=10, mode=mode)
            timings[f"{mode} memory search (embed + search + fuse)"].append(time.perf_counter() - started)
    print(f"\n{size:,} memories, {searches} queries, index={settings.MEMORYHUB_VECTOR_INDEX}")
    print("| step | median ms | p95 ms |\n|---|---|---|")
    for name, values in timings.items():
        ms = [v * 1000 for v in values]
        print(f"| {name} | {median(ms):.2f} | {p95(ms):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, help="database file (default: a temporary one)")
    parser.add_argument("--top", type=int, default=5, help="k of recall@k besides @1 (default 5)")
    parser.add_argument("--latency", type=int, default=0, metavar="N", help="also time searches over N memories")
    parser.add_argument("--searches", type=int, default=200, help="queries timed in --latency (default 200)")
    parser.add_argument("--batch", type=int, default=1000, help="memories per write call in --latency")
    parser.add_argument("--no-eval", action="store_true", help="skip the quality evaluation")
    args = parser.parse_args()
    with django_on(args.db, prefix="memoryhub-bench-retrieval-"):
        if not args.no_eval:
            print_quality(evaluate(args.top), args.top)
        if args.latency:
            latency(args.latency, searches=args.searches, batch=args.batch)


if __name__ == "__main__":
    main()
