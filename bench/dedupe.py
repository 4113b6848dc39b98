"""The dedupe judge (memory/dedupe.py) on its evaluation set, bench/eval/dedupe.jsonl.

    make bench BENCH=dedupe                        # pairs, wrong merges, share merged, time
    make bench BENCH=dedupe BENCH_ARGS="--misses"  # + every labelled duplicate not merged
    make bench BENCH=dedupe BENCH_ARGS="--similarity"  # + the embedder's cosine of every pair
    make bench BENCH=dedupe BENCH_ARGS="--writes 2000"  # + what dedupe costs a write, at 2,000 rows
    make bench BENCH=dedupe BENCH_ARGS="--corpus 20000"  # + which corpus sentences it would merge

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
import os
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
        dedupe.clear_caches()
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


def corpus_pairs(size: int, shown: int = 10) -> None:
    """Print the pairs of corpus sentences the judge would merge (words in the same order; pairs
    only the embedder could merge are counted apart)."""
    from bench.corpus import corpus
    from memory import dedupe

    texts = corpus(size)
    by_key: dict[Any, list[int]] = {}
    for index, text in enumerate(texts):
        reading = dedupe.read(text)
        by_key.setdefault(reading.key or reading.plain, []).append(index)
    same: list[tuple[str, str]] = []
    reordered = 0
    for indexes in by_key.values():
        for position, first in enumerate(indexes):
            for second in indexes[position + 1 :]:
                outcome = dedupe.verdict(dedupe.read(texts[second]), dedupe.read(texts[first]))
                if outcome:
                    same.append((texts[first], texts[second]))
                elif outcome is None:
                    reordered += 1
    print(f"corpus: {size:,} sentences, {len(same)} pairs read as the same, {reordered} more for the embedder")
    for first, second in same[:shown]:
        print(f"  {first!r} ~ {second!r}")


def _timed(function: Any) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


def writes(size: int, rounds: int = 10) -> None:
    """Print what dedupe adds to memory writes and add_observations (see the module docstring)."""
    from access import namespaces
    from bench.corpus import corpus
    from graph import services as graph_services
    from memory.services import NewMemory, write_memories

    texts = corpus(size + 2 * rounds * 100)
    stored, fresh = texts[:size], texts[size:]
    space = "bench:dedupe"
    for start in range(0, size, 500):
        batch = [NewMemory(text=text) for text in stored[start : start + 500]]
        write_memories(namespace=space, memories=batch, dedupe=False)
    namespaces.set_dedupe(space, True)
    timings: dict[str, list[float]] = {"new, dedupe on": [], "new, dedupe off": [], "repeats, dedupe on": []}
    folded = 0
    for round_ in range(rounds):
        on = [NewMemory(text=text) for text in fresh[round_ * 200 : round_ * 200 + 100]]
        off = [NewMemory(text=text) for text in fresh[round_ * 200 + 100 : round_ * 200 + 200]]
        again = [NewMemory(text=f"Please note that {text}") for text in stored[round_ * 100 : round_ * 100 + 100]]
        timings["new, dedupe on"].append(_timed(lambda on=on: write_memories(namespace=space, memories=on)))
        timings["new, dedupe off"].append(
            _timed(lambda off=off: write_memories(namespace=space, memories=off, dedupe=False))
        )
        answers: list[Any] = []
        timings["repeats, dedupe on"].append(
            _timed(lambda again=again, answers=answers: answers.extend(write_memories(namespace=space, memories=again)))
        )
        folded += sum(answer["duplicateOf"] is not None for answer in answers)
    print(f"memory writes, batches of 100 into {size:,} memories of one actor (median / p95 ms per batch):")
    for name, samples in timings.items():
        print(f"  {name:20} {median(samples):8.1f} {p95(samples):8.1f}")
    print(f"  repeats folded: {folded}/{rounds * 100}")

    graph_space = "bench:dedupe:graph"
    entities = max(100, size // 5)
    for start in range(0, entities, 500):
        graph_services.create_entities(
            namespace=graph_space,
            entities=[
                {"name": f"e{i}", "entityType": "thing", "observations": stored[(i * 5) % size : (i * 5) % size + 5]}
                for i in range(start, min(entities, start + 500))
            ],
        )
    observations: dict[str, list[float]] = {"dedupe on": [], "dedupe off": []}
    for round_ in range(rounds):
        for flag, name in ((True, "dedupe on"), (False, "dedupe off")):
            offset = round_ * 200 + (0 if flag else 100)
            batch = [
                {"entityName": f"e{(offset + j) % entities}", "contents": [fresh[(offset + j) % len(fresh)]]}
                for j in range(100)
            ]
            observations[name].append(
                _timed(
                    lambda batch=batch, flag=flag: graph_services.add_observations(
                        namespace=graph_space, observations=batch, dedupe=flag
                    )
                )
            )
    print(f"add_observations, 100 entities of {entities:,} (5 observations each) (median / p95 ms per call):")
    for name, samples in observations.items():
        print(f"  {name:20} {median(samples):8.1f} {p95(samples):8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", type=Path, default=SET, help="the evaluation set (JSON lines)")
    parser.add_argument("--misses", action="store_true", help="list the duplicates not merged")
    parser.add_argument("--similarity", action="store_true", help="print every pair's verdict and cosine")
    parser.add_argument("--writes", type=int, default=0, metavar="N", help="also time writes at N stored rows")
    parser.add_argument("--corpus", type=int, default=0, metavar="N", help="also judge N corpus sentences")
    options = parser.parse_args()
    pairs = load(options.set)
    if options.writes:
        os.environ["MEMORYHUB_EMBED_ON_WRITE"] = "false"
    with django_on(None, prefix="memoryhub-bench-dedupe-"):
        from memory import dedupe

        dedupe.similarity("warm up", "the model")  # load the model outside the timings
        outcome = evaluate(pairs)
        _report(outcome, pairs, misses=options.misses, similarity=options.similarity)
        if options.corpus:
            corpus_pairs(options.corpus)
        if options.writes:
            writes(options.writes)


if __name__ == "__main__":
    main()
