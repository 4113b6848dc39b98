"""The dedupe judge (memory/dedupe.py) on its evaluation set, bench/eval/dedupe.jsonl.

    make bench BENCH=dedupe                        # pairs, wrong merges, share merged, time
    make bench BENCH=dedupe BENCH_ARGS="--misses"  # + every labelled duplicate not merged
    make bench BENCH=dedupe BENCH_ARGS="--similarity"  # + the embedder's cosine of every pair

Each pair (an existing text, a new text, whether they should merge) is judged alone, as a write
of the new text into a namespace holding only the existing one, with the configured embedder
(the built-in model by default). A wrong merge is a pair labelled "must not merge" that the judge
merged: the set's requirement is none. The share merged is the recall on the pairs labelled
"merge". Time per judgement is the median and p95 over the pairs, first reading of both texts
included (the judge caches readings, so the cache is cleared before each pair).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, TypedDict

from bench.setup import django_on
from bench.stats import median, p95

SET = Path(__file__).resolve().parent / "eval" / "dedupe.jsonl"


class Pair(TypedDict):
    existing: str
    new: str
    merge: bool
    lang: str
    kind: str


class Outcome(TypedDict):
    pairs: int
    duplicates: int
    merged: int
    wrong: list[Pair]
    missed: list[Pair]
    seconds: list[float]


def load(path: Path = SET) -> list[Pair]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate(pairs: list[Pair]) -> Outcome:
    """Judge every pair (Django must be set up: the judge reads the embedder's settings)."""
    from memory import dedupe

    wrong: list[Pair] = []
    missed: list[Pair] = []
    merged = 0
    seconds: list[float] = []
    for pair in pairs:
        dedupe.read.cache_clear()
        started = time.perf_counter()
        found = dedupe.match([pair["new"]], [(1, pair["existing"])])
        seconds.append(time.perf_counter() - started)
        if found and not pair["merge"]:
            wrong.append(pair)
        elif found:
            merged += 1
        elif pair["merge"]:
            missed.append(pair)
    duplicates = sum(pair["merge"] for pair in pairs)
    return {
        "pairs": len(pairs),
        "duplicates": duplicates,
        "merged": merged,
        "wrong": wrong,
        "missed": missed,
        "seconds": seconds,
    }


def _report(outcome: Outcome, pairs: list[Pair], *, misses: bool, similarity: bool) -> None:
    from memory import dedupe

    languages = Counter((pair["lang"], pair["merge"]) for pair in pairs)
    counts = ", ".join(f"{lang} {'merge' if m else 'keep'}: {n}" for (lang, m), n in sorted(languages.items()))
    print(f"pairs: {outcome['pairs']} ({counts})")
    print(f"wrong merges: {len(outcome['wrong'])}")
    share = outcome["merged"] / outcome["duplicates"] if outcome["duplicates"] else 0.0
    print(f"duplicates merged: {outcome['merged']}/{outcome['duplicates']} = {share:.3f}")
    for lang in sorted({pair["lang"] for pair in pairs}):
        wanted = [pair for pair in pairs if pair["lang"] == lang and pair["merge"]]
        lost = [pair for pair in outcome["missed"] if pair["lang"] == lang]
        print(f"  {lang}: {len(wanted) - len(lost)}/{len(wanted)}")
    ms = [s * 1000 for s in outcome["seconds"]]
    print(f"time per judgement: median {median(ms):.3f} ms, p95 {p95(ms):.3f} ms, max {max(ms):.1f} ms")
    for pair in outcome["wrong"]:
        print(f"WRONG MERGE [{pair['kind']}] {pair['existing']!r} ~ {pair['new']!r}")
    if misses:
        for pair in outcome["missed"]:
            print(f"missed [{pair['kind']}] {pair['existing']!r} ~ {pair['new']!r}")
    if similarity:
        for pair in pairs:
            verdict: Any = dedupe.verdict(dedupe.read(pair["new"]), dedupe.read(pair["existing"]))
            cosine = dedupe.similarity(pair["existing"], pair["new"])
            label = "merge" if pair["merge"] else "keep "
            print(
                f"{label} words={verdict!s:5} cos={cosine:.3f} [{pair['kind']}] {pair['existing']!r} ~ {pair['new']!r}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, default=SET, help="the evaluation set (JSON lines)")
    parser.add_argument("--misses", action="store_true", help="list the duplicates not merged")
    parser.add_argument("--similarity", action="store_true", help="print every pair's verdict and cosine")
    options = parser.parse_args()
    pairs = load(options.set)
    with django_on(None, prefix="memoryhub-bench-dedupe-"):
        from memory import dedupe

        dedupe.similarity("warm up", "the model")  # load the model outside the timings
        outcome = evaluate(pairs)
        _report(outcome, pairs, misses=options.misses, similarity=options.similarity)


if __name__ == "__main__":
    main()
