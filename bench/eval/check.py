"""Sanity checks for the retrieval evaluation set, and a vector-only baseline on it.

`python -m bench.eval.check` validates memories.jsonl and queries.jsonl (ids unique and well
formed, languages consistent with the text, every relevant id present, each category aimed at
the right language, every identifier in an exact_id query present in its target memory) and prints
counts per category. It exits non-zero when anything is wrong.

`python -m bench.eval.check --baseline` also ranks all memories for every query two ways and
prints recall@1, recall@5 and MRR per category: by cosine similarity of built-in model embeddings
alone (numpy, no index), and by a plain BM25 over words, whole identifiers and CJK bigrams. These
are the floors the hybrid search evaluated by bench/retrieval.py should beat: vectors are weak on
exact_id, keywords on paraphrase_en and zh_to_en. `--misses` lists the queries whose relevant
memory is not ranked first.

`load_memories()` and `load_queries()` are the loaders for other runners.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

HERE = Path(__file__).resolve().parent
MEMORIES = HERE / "memories.jsonl"
QUERIES = HERE / "queries.jsonl"
CATEGORIES = ("paraphrase_en", "exact_id", "zh", "zh_to_en")
# Which memory language each category's answers must be in.
TARGET_LANG = {"paraphrase_en": "en", "exact_id": None, "zh": "zh", "zh_to_en": "en"}

_CJK = re.compile(r"[\u3400-\u9fff]")
_ID = re.compile(r"^m\d{3}$")
# Tokens that look like identifiers: ticket ids, error codes, ports, versions, hostnames, env vars.
_IDENT = re.compile(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)+|[A-Z][A-Z0-9]*\d[A-Z0-9]*|\d{3,}")


class Memory(TypedDict):
    id: str
    text: str
    lang: str


class Query(TypedDict):
    query: str
    relevant: list[str]
    category: str


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise SystemExit(f"{path}:{number}: not JSON ({exc})") from None
    return rows


def load_memories(path: Path = MEMORIES) -> list[Memory]:
    return [Memory(id=r["id"], text=r["text"], lang=r["lang"]) for r in _read_jsonl(path)]


def load_queries(path: Path = QUERIES) -> list[Query]:
    return [Query(query=r["query"], relevant=list(r["relevant"]), category=r["category"]) for r in _read_jsonl(path)]


def identifiers(text: str) -> list[str]:
    """Identifier-like tokens of a query ("E1102", "JIRA-4821", "8443", "db-billing-02.prod.internal")."""
    return [t for t in _IDENT.findall(text) if not t.isalpha()]


def problems(memories: Sequence[Memory], queries: Sequence[Query]) -> list[str]:
    """Everything wrong with the set, as messages (empty when it is sound)."""
    found: list[str] = []
    by_id: dict[str, Memory] = {}
    texts: set[str] = set()
    for m in memories:
        if set(m) != {"id", "text", "lang"}:
            found.append(f"memory {m.get('id')}: keys must be id, text, lang")
        if not _ID.match(m["id"]):
            found.append(f"memory id {m['id']!r} is not like m001")
        if m["id"] in by_id:
            found.append(f"memory id {m['id']} repeats")
        by_id[m["id"]] = m
        if not m["text"].strip() or m["text"] in texts:
            found.append(f"memory {m['id']}: empty or duplicate text")
        texts.add(m["text"])
        if m["lang"] not in ("en", "zh"):
            found.append(f"memory {m['id']}: lang {m['lang']!r}")
        elif (m["lang"] == "zh") != bool(_CJK.search(m["text"])):
            found.append(f"memory {m['id']}: lang {m['lang']} does not match its text")
    seen_queries: set[str] = set()
    for n, q in enumerate(queries, 1):
        where = f"query {n} ({q['query'][:40]!r})"
        if q["category"] not in CATEGORIES:
            found.append(f"{where}: unknown category {q['category']!r}")
            continue
        if q["query"] in seen_queries:
            found.append(f"{where}: repeated")
        seen_queries.add(q["query"])
        if not 1 <= len(q["relevant"]) <= 2 or len(set(q["relevant"])) != len(q["relevant"]):
            found.append(f"{where}: needs one or two distinct relevant ids")
        missing = [r for r in q["relevant"] if r not in by_id]
        if missing:
            found.append(f"{where}: relevant ids {missing} do not exist")
            continue
        chinese_query = bool(_CJK.search(q["query"]))
        if chinese_query != (q["category"] in ("zh", "zh_to_en")):
            found.append(f"{where}: query language does not fit category {q['category']}")
        want = TARGET_LANG[q["category"]]
        if want and any(by_id[r]["lang"] != want for r in q["relevant"]):
            found.append(f"{where}: category {q['category']} needs {want} memories")
        if q["category"] == "exact_id":
            idents = identifiers(q["query"])
            if not idents:
                found.append(f"{where}: exact_id query without an identifier")
            for ident in idents:
                if not any(ident in by_id[r]["text"] for r in q["relevant"]):
                    found.append(f"{where}: identifier {ident!r} is not in the relevant memory")
    return found


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def summary(memories: Sequence[Memory], queries: Sequence[Query]) -> None:
    langs = Counter(m["lang"] for m in memories)
    print(f"{len(memories)} memories ({langs['en']} en, {langs['zh']} zh), {len(queries)} queries\n")
    counts = Counter(q["category"] for q in queries)
    two = Counter(q["category"] for q in queries if len(q["relevant"]) > 1)
    print_table(["category", "queries", "with 2 relevant"], [[c, str(counts[c]), str(two[c])] for c in CATEGORIES])
    targeted = {r for q in queries for r in q["relevant"]}
    print(
        f"\n{len(targeted)} memories are the answer to some query; {len(memories) - len(targeted)} are distractors only"
    )


_WORD = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*")
_STOP = frozenset((
    "a", "an", "the", "is", "are", "was", "were", "be", "of", "to", "in", "on", "at", "for", "and", "or", "not",
    "it", "its", "this", "that", "what", "which", "who", "whom", "how", "when", "where", "why", "do", "does", "did",
    "i", "we", "our", "my", "me", "they", "them", "their", "you", "your", "with", "from", "by", "as", "after",
    "before",
))  # fmt: skip


def tokens(text: str) -> list[str]:
    """Lower-case words and identifiers (kept whole: "jira-4821", "e1102"), plus CJK character bigrams."""
    lowered = text.lower()
    out = [w for w in _WORD.findall(lowered) if w not in _STOP]
    for run in re.findall(r"[\u3400-\u9fff]+", lowered):
        out.extend(run[i : i + 2] for i in range(max(1, len(run) - 1)))
    return out


def bm25_scores(docs: Sequence[str], queries: Sequence[str], k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """A plain BM25 matrix (queries x docs): the keyword-only reference point."""
    doc_tokens = [tokens(d) for d in docs]
    n = len(docs)
    avg_len = float(np.mean([len(t) for t in doc_tokens]))
    df = Counter(t for toks in doc_tokens for t in set(toks))
    tf = [Counter(toks) for toks in doc_tokens]
    out = np.zeros((len(queries), n))
    for qi, query in enumerate(queries):
        for term in set(tokens(query)):
            if term not in df:
                continue
            idf = np.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            for di in range(n):
                f = tf[di].get(term, 0)
                if f:
                    out[qi, di] += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(doc_tokens[di]) / avg_len))
    return out


def baseline(
    memories: Sequence[Memory], queries: Sequence[Query], *, method: str, show_misses: bool
) -> dict[str, dict[str, float]]:
    """Rank every memory for every query by `method` ("vector": built-in model cosine; "bm25":
    keywords); print recall@1, recall@5 and MRR per category."""
    if method == "vector":
        from vectors.embedders import BuiltinEmbedder

        embedder = BuiltinEmbedder()
        mem_vecs = embedder.embed([m["text"] for m in memories])
        q_vecs = embedder.embed([q["query"] for q in queries])
        scores = q_vecs @ mem_vecs.T
        title = f"Vector-only baseline ({embedder.model_id}, cosine over all {len(memories)} memories)"
    else:
        scores = bm25_scores([m["text"] for m in memories], [q["query"] for q in queries])
        title = "Keyword-only baseline (BM25 on words, identifiers and CJK bigrams; ties broken by id)"
    ids = [m["id"] for m in memories]
    ranks = np.argsort(-scores, axis=1, kind="stable")
    per_cat: dict[str, list[tuple[float, float, float]]] = {c: [] for c in CATEGORIES}
    misses = []
    for q, order in zip(queries, ranks, strict=True):
        ranked = [ids[i] for i in order]
        relevant = set(q["relevant"])
        first = next(pos for pos, ident in enumerate(ranked) if ident in relevant)  # 0-based
        # recall@k: the share of the relevant ids found in the top k.
        r1 = len(relevant & set(ranked[:1])) / min(1, len(relevant))
        r5 = len(relevant & set(ranked[:5])) / len(relevant)
        per_cat[q["category"]].append((r1, r5, 1.0 / (first + 1)))
        if first > 0:
            misses.append((q, first + 1, ranked[0]))
    results = {
        c: {
            "recall@1": float(np.mean([v[0] for v in vals])),
            "recall@5": float(np.mean([v[1] for v in vals])),
            "mrr": float(np.mean([v[2] for v in vals])),
            "queries": float(len(vals)),
        }
        for c, vals in per_cat.items()
        if vals
    }
    every = [v for vals in per_cat.values() for v in vals]
    results["all"] = {
        "recall@1": float(np.mean([v[0] for v in every])),
        "recall@5": float(np.mean([v[1] for v in every])),
        "mrr": float(np.mean([v[2] for v in every])),
        "queries": float(len(every)),
    }
    print(f"\n{title}\n")
    print_table(
        ["category", "queries", "recall@1", "recall@5", "MRR"],
        [
            [c, f"{r['queries']:.0f}", f"{r['recall@1']:.3f}", f"{r['recall@5']:.3f}", f"{r['mrr']:.3f}"]
            for c, r in results.items()
        ],
    )
    if show_misses:
        text = {m["id"]: m["text"] for m in memories}
        print("\nQueries whose relevant memory is not first (rank of the first relevant, and what came first):\n")
        for q, rank, top in misses:
            print(f"- [{q['category']}] {q['query']}\n    want {q['relevant']} at rank {rank}; got {top}: {text[top]}")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.eval.check", description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="store_true", help="also run the vector-only baseline")
    parser.add_argument("--misses", action="store_true", help="with --baseline: list queries not answered first")
    args = parser.parse_args(argv)
    memories, queries = load_memories(), load_queries()
    wrong = problems(memories, queries)
    for message in wrong:
        print(f"ERROR: {message}", file=sys.stderr)
    summary(memories, queries)
    if wrong:
        return 1
    if args.baseline:
        for method in ("vector", "bm25"):
            baseline(memories, queries, method=method, show_misses=args.misses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
