"""Latency benchmark for the knowledge-graph store (graph.services / graph.selectors).

What it measures: for each graph size N it fills a fresh namespace (`bench:n<N>`) with N entities
(5 observations each, every 10th with a Chinese observation) and N-1 relations forming a random
tree, then calls each store operation in-process, `--repeat` times with varying random
arguments, timing every call with time.perf_counter_ns. It prints the median and the 95th
percentile per operation: a table per size, then one markdown table across sizes.

This is the cost of the Python store on one SQLite connection (no HTTP, no MCP framing). All
calls run in one thread in autocommit mode; the services open their own transactions.

Run it with `make bench` (BENCH_ARGS="--sizes 1000,10000" to pass options) or
`python -m bench.graph --sizes 1000,10000 --repeat 200`. By default the database is a new
temporary file that is deleted afterwards; `--db PATH` keeps it (sizes then share the file, each
in its own namespace; a namespace already holding data is refused).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

from bench import stats
from bench.setup import database_engine, django_on, settle

ENTITY_TYPES = ("person", "project", "service", "document", "team")
RELATION_TYPES = ("depends_on", "owned_by", "part_of", "relates_to", "mentions")
BATCH = 1000  # items per create_entities / create_relations call (the default request limit)
OBSERVATIONS_PER_ENTITY = 5
SEED = 42

# Vocabulary for the generated observations. Each template below names one COMMON_WORDS entry,
# so every common word ends up in roughly a third of the entities.
TEAMS = ("platform", "payments", "growth", "infra", "mobile", "data", "security", "support")
PEOPLE = ("Alice", "Bob", "Chen Wei", "Dmitri", "Esther", "Farid", "Grace", "Hiro", "Ingrid", "Jamal")
CITIES = ("Berlin", "Lisbon", "Osaka", "Toronto", "Nairobi", "Austin", "Warsaw", "Singapore")
TOPICS = ("billing", "search", "onboarding", "caching", "logging", "alerting", "checkout", "reporting")
ADJECTIVES = ("flaky", "reliable", "slow", "fast", "expensive", "critical", "experimental", "stable")
MONTHS = ("January", "March", "May", "July", "September", "November")
COMMON_WORDS = ("deployment", "customer", "latency", "release")
TEMPLATES = (
    "The {topic} deployment in {city} was {adj} last week.",
    "A customer from {city} asked {person} about {topic}.",
    "Median latency for {topic} requests is {num} ms.",
    "The next release of the {topic} module is planned for {month}.",
    "{person} prefers written updates over meetings.",
    "Reviewed the {topic} runbook with the {team} team in {month}.",
    "Budget for {topic} was cut by {num} percent.",
    "Owns the on-call rotation for {topic} alerts.",
    "Migrated the {topic} jobs from cron to the scheduler.",
    "Documentation for {topic} is {adj} and needs an owner.",
    "Pairs with {person} on {topic} every {month}.",
    "Works from {city} and speaks at the {team} guild.",
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.graph", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated entity counts")
    parser.add_argument("--repeat", type=int, default=200, help="timed calls per (read or small write) operation")
    parser.add_argument(
        "--batch-repeat", type=int, default=10, help="timed create_entities calls of 1,000 new entities each"
    )
    parser.add_argument("--db", type=Path, help="SQLite file to use (kept afterwards); default: a temporary file")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes must be comma-separated integers")
    if not args.sizes or min(args.sizes) < 10:
        parser.error("--sizes needs at least one size, each >= 10")
    if args.repeat < 1 or args.batch_repeat < 1:
        parser.error("--repeat and --batch-repeat must be >= 1")
    return args


# --- results ---------------------------------------------------------------------------------------


@dataclass
class Result:
    """The timed samples (ns) of one operation at one size."""

    label: str
    unit: str  # "µs" or "ms"
    samples: list[int]
    note: str = ""

    def _scaled(self, value: float) -> float:
        return value / (1_000 if self.unit == "µs" else 1_000_000)

    @property
    def median(self) -> float:
        return self._scaled(stats.median(self.samples))

    @property
    def p95(self) -> float:
        return self._scaled(stats.p95(self.samples))

    def cell(self) -> str:
        return f"{_fmt(self.median)} / {_fmt(self.p95)} {self.unit}"


@dataclass
class SizeReport:
    size: int
    populate: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    results: list[Result] = field(default_factory=list)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[int] = ()) -> None:
    """A markdown table, padded so it also reads well as plain text."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(c).rjust(w) if i in right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    print(line(headers))
    print("|" + "|".join(("-" * (w + 1) + ":") if i in right else "-" * (w + 2) for i, w in enumerate(widths)) + "|")
    for row in rows:
        print(line(row))


# --- data generation -------------------------------------------------------------------------------


def entity_name(i: int) -> str:
    return f"entity-{i}"


def unique_code(i: int) -> str:
    """A one-token identifier that occurs in exactly one entity's observations."""
    return f"tc{i}x"


def make_observations(rng: Random, i: int, entity_type: str) -> list[str]:
    first = f"{entity_name(i)} is a {entity_type} tracked under code {unique_code(i)}."
    chosen = rng.sample(TEMPLATES, OBSERVATIONS_PER_ENTITY - 1)
    if i % 10 == 0:
        chosen[-1] = f"部署配置使用{8000 + i % 1000}端口"  # "the deployment config uses port <n>"
    values = {
        "topic": rng.choice(TOPICS),
        "city": rng.choice(CITIES),
        "adj": rng.choice(ADJECTIVES),
        "person": rng.choice(PEOPLE),
        "team": rng.choice(TEAMS),
        "month": rng.choice(MONTHS),
        "num": rng.randint(2, 400),
    }
    return [first, *(template.format(**values) for template in chosen)]


def graph_batches(size: int, rng: Random) -> tuple[list[list[dict]], list[int], list[list[dict]]]:
    """The generated graph of `size` entities: entity batches, each entity's parent (-1 for the
    root) and the relation batches of that random tree. Deterministic for a seeded `rng`."""
    entity_batches = []
    for start in range(0, size, BATCH):
        batch = []
        for i in range(start, min(start + BATCH, size)):
            entity_type = ENTITY_TYPES[rng.randrange(len(ENTITY_TYPES))]
            batch.append(
                {
                    "name": entity_name(i),
                    "entityType": entity_type,
                    "observations": make_observations(rng, i, entity_type),
                }
            )
        entity_batches.append(batch)
    parent = [-1] + [rng.randrange(i) for i in range(1, size)]
    relation_batches = [
        [
            {"from": entity_name(i), "to": entity_name(parent[i]), "relationType": rng.choice(RELATION_TYPES)}
            for i in range(start, min(start + BATCH, size))
        ]
        for start in range(1, size, BATCH)
    ]
    return entity_batches, parent, relation_batches


def populate(namespace: str, size: int, rng: Random, report: SizeReport) -> list[int]:
    """Create `size` entities and a random tree of relations; return each entity's parent (-1 for the root)."""
    from graph import services

    entity_batches, parent, relation_batches = graph_batches(size, rng)
    started = time.perf_counter()
    for batch in entity_batches:
        created = services.create_entities(namespace=namespace, entities=batch)
        if created["skipped"]:
            raise SystemExit(f"namespace {namespace} already holds entities: use a fresh --db")
    entities_done = time.perf_counter()
    for relations in relation_batches:
        services.create_relations(namespace=namespace, relations=relations)
    relations_done = time.perf_counter()

    report.populate = {
        "entities": entities_done - started,
        "relations": relations_done - entities_done,
        "total": relations_done - started,
    }
    return parent


def depth_of(parent: list[int]) -> list[int]:
    depth = [0] * len(parent)
    for i in range(1, len(parent)):  # parents always come first
        depth[i] = depth[parent[i]] + 1
    return depth


def matching_entities(namespace: str, query: str) -> int:
    """How many entities of the namespace have an observation matching `query` (for the notes)."""
    from access import namespaces
    from graph.fts import build_match, build_tsquery
    from graph.sql import db
    from kernel.sql import POSTGRES

    match = build_tsquery(query) if POSTGRES else build_match(query)
    ns_id = namespaces.lookup(namespace)
    if match is None or ns_id is None:
        return 0
    statement = (
        "SELECT count(DISTINCT o.entity_id) FROM graph_observation o "
        "WHERE o.search_vector @@ to_tsquery('simple', ?) AND o.namespace_id = ?"
        if POSTGRES
        else "SELECT count(DISTINCT o.entity_id) FROM obs_fts JOIN graph_observation o ON o.id = obs_fts.rowid "
        "WHERE obs_fts MATCH ? AND o.namespace_id = ?"
    )
    row = db().execute(statement, (match, ns_id)).fetchone()
    return int(row[0])


# --- timing ----------------------------------------------------------------------------------------

Call = dict[str, Any]


def timed(fn: Callable[..., object], calls: Sequence[Call], warmup: int) -> list[int]:
    """Run fn(**kwargs) for each call; the first `warmup` calls are not recorded."""
    samples: list[int] = []
    clock = time.perf_counter_ns
    for index, kwargs in enumerate(calls):
        begin = clock()
        fn(**kwargs)
        elapsed = clock() - begin
        if index >= warmup:
            samples.append(elapsed)
    return samples


def bench_size(size: int, repeat: int, batch_repeat: int) -> SizeReport:
    from graph import selectors, services

    namespace = f"bench:n{size}"
    rng = Random(SEED)
    report = SizeReport(size)
    print(f"\n## {size:,} entities (namespace {namespace})\n", flush=True)
    parent = populate(namespace, size, rng, report)
    settle()
    pop = report.populate
    print(
        f"populated in {pop['total']:.1f} s: {size:,} entities with {size * OBSERVATIONS_PER_ENTITY:,} observations "
        f"in {pop['entities']:.1f} s ({size / pop['entities']:,.0f} entities/s), {size - 1:,} relations in "
        f"{pop['relations']:.1f} s ({(size - 1) / max(pop['relations'], 1e-9):,.0f} relations/s)\n",
        flush=True,
    )

    depth = depth_of(parent)
    deep = [i for i in range(size) if depth[i] >= 3] or [size - 1]
    warmup = min(5, repeat)
    n = warmup + repeat

    def name() -> str:
        return entity_name(rng.randrange(size))

    def names(count: int) -> list[str]:
        return [entity_name(i) for i in rng.sample(range(size), count)]

    def three_hops() -> Call:
        start = rng.choice(deep)
        return {"namespace": namespace, "from_": entity_name(start), "to": entity_name(parent[parent[parent[start]]])}

    # Follow nextCursor through the namespace, starting over at the end, like a client paging.
    cursor: dict[str, str | None] = {"next": None}

    def read_page() -> object:
        page = selectors.read_graph(namespace=namespace, cursor=cursor["next"], limit=100)
        cursor["next"] = page.get("nextCursor")
        return page

    selective = [entity_name(rng.randrange(size)) for _ in range(n)]
    common = [COMMON_WORDS[i % len(COMMON_WORDS)] for i in range(n)]
    common_hits = {word: matching_entities(namespace, word) for word in COMMON_WORDS}
    cjk_hits = matching_entities(namespace, "部署")
    pairs = [(name(), name()) for _ in range(n)]
    path_lengths: list[int | None] = []

    def find_path_recorded(**kwargs: Any) -> object:
        found = selectors.find_path(**kwargs)
        path_lengths.append(found["length"])
        return found

    observation_counter = iter(range(10**9))

    def new_observations() -> list[str]:
        k = next(observation_counter)
        return [f"Benchmark note {k}: {rng.choice(TOPICS)} looked {rng.choice(ADJECTIVES)}.", f"Follow-up item {k}."]

    ops: list[tuple[str, str, Callable[..., object], list[Call], str]] = [
        ("get_entity", "µs", selectors.get_entity, [{"namespace": namespace, "name": name()} for _ in range(n)], ""),
        ("degree", "µs", selectors.degree, [{"namespace": namespace, "name": name()} for _ in range(n)], ""),
        (
            "open_nodes (1 name)",
            "µs",
            selectors.open_nodes,
            [{"namespace": namespace, "names": names(1)} for _ in range(n)],
            "",
        ),
        (
            "open_nodes (5 names)",
            "µs",
            selectors.open_nodes,
            [{"namespace": namespace, "names": names(5)} for _ in range(n)],
            "",
        ),
        (
            "search_nodes selective",
            "µs",
            selectors.search_nodes,
            [{"namespace": namespace, "query": q} for q in selective],
            'query "entity-<random i>" (prefix-matches entity-<i>*)',
        ),
        (
            "search_nodes unique token",
            "µs",
            selectors.search_nodes,
            [{"namespace": namespace, "query": unique_code(rng.randrange(size))} for _ in range(n)],
            'query "tc<i>x", one matching observation',
        ),
        (
            "search_nodes common word",
            "µs",
            selectors.search_nodes,
            [{"namespace": namespace, "query": q} for q in common],
            "query in {"
            + ", ".join(f"{w}: {c:,}" for w, c in common_hits.items())
            + "} matching entities; page of 100",
        ),
        (
            "search_nodes CJK",
            "µs",
            selectors.search_nodes,
            [{"namespace": namespace, "query": "部署"} for _ in range(n)],
            f'query "部署", {cjk_hits:,} matching entities; page of 100',
        ),
        (
            "find_path random pair",
            "µs",
            find_path_recorded,
            [{"namespace": namespace, "from_": a, "to": b} for a, b in pairs],
            "",  # filled in after the run
        ),
        ("find_path 3 hops", "µs", selectors.find_path, [three_hops() for _ in range(n)], ""),
        (
            "get_neighbors depth 1",
            "µs",
            selectors.get_neighbors,
            [{"namespace": namespace, "name": name(), "depth": 1} for _ in range(n)],
            "",
        ),
        (
            "get_neighbors depth 2",
            "µs",
            selectors.get_neighbors,
            [{"namespace": namespace, "name": name(), "depth": 2} for _ in range(n)],
            "",
        ),
        (
            "describe_entity",
            "µs",
            selectors.describe_entity,
            [{"namespace": namespace, "name": name()} for _ in range(n)],
            "",
        ),
        (
            "batch_get_entities (10)",
            "µs",
            selectors.batch_get_entities,
            [{"namespace": namespace, "names": names(10)} for _ in range(n)],
            "",
        ),
        (
            "entity_exists (10)",
            "µs",
            selectors.entity_exists,
            [{"namespace": namespace, "names": [*names(8), f"missing-{k}a", f"missing-{k}b"]} for k in range(n)],
            "8 present, 2 missing",
        ),
        (
            "search_relations (from)",
            "µs",
            selectors.search_relations,
            [{"namespace": namespace, "from_": name()} for _ in range(n)],
            "",
        ),
        ("graph_stats", "µs", selectors.graph_stats, [{"namespace": namespace} for _ in range(n)], ""),
        ("read_graph (limit 100)", "µs", read_page, [{} for _ in range(n)], "paging on with nextCursor"),
        (
            "add_observations (1 entity, 2 obs)",
            "µs",
            services.add_observations,
            [
                {"namespace": namespace, "observations": [{"entityName": name(), "contents": new_observations()}]}
                for _ in range(n)
            ],
            "",
        ),
    ]

    for label, unit, fn, calls, note in ops:
        samples = timed(fn, calls, warmup)
        if fn is find_path_recorded:
            lengths = path_lengths[warmup:]
            found = [length for length in lengths if length is not None]
            note = f"{len(found)}/{len(lengths)} found within maxDepth 16" + (
                f", mean length {statistics.mean(found):.1f}" if found else ""
            )
        report.results.append(Result(label, unit, samples, note))

    # Batches of 1,000 new entities (names never used before), 5 observations each.
    batch_calls = []
    for b in range(1 + batch_repeat):  # the first batch is the warm-up
        entities = []
        for k in range(BATCH):
            i = size + b * BATCH + k
            entity_type = ENTITY_TYPES[rng.randrange(len(ENTITY_TYPES))]
            entities.append(
                {
                    "name": f"new-{b}-{k}",
                    "entityType": entity_type,
                    "observations": make_observations(rng, i, entity_type),
                }
            )
        batch_calls.append({"namespace": namespace, "entities": entities})
    report.results.append(
        Result(
            "create_entities (1,000 x 5 obs)",
            "ms",
            timed(services.create_entities, batch_calls, warmup=1),
            f"{batch_repeat} batches",
        )
    )

    print_table(
        ["operation", "median", "p95", "unit", "notes"],
        [[r.label, _fmt(r.median), _fmt(r.p95), r.unit, r.note] for r in report.results],
        right=(1, 2),
    )
    return report


def print_summary(reports: list[SizeReport], repeat: int) -> None:
    print("\n## Summary (median / p95)\n")
    headers = ["operation", *(f"{r.size:,} entities" for r in reports)]
    labels = [result.label for result in reports[0].results]
    rows = [[label, *(next(x.cell() for x in r.results if x.label == label) for r in reports)] for label in labels]
    print_table(headers, rows)
    print(f"\n{repeat} timed calls per operation (after 5 warm-up calls); create_entities: batches as noted above.")
    print("\nPopulation time (create_entities and create_relations in batches of 1,000):\n")
    print_table(
        ["entities", "entities + observations", "relations", "total"],
        [
            [
                f"{r.size:,}",
                f"{r.populate['entities']:.1f} s",
                f"{r.populate['relations']:.1f} s",
                f"{r.populate['total']:.1f} s",
            ]
            for r in reports
        ],
        right=(1, 2, 3),
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with django_on(args.db, prefix="memoryhub-bench-") as (db_path, temporary):
        import django

        print("# MemoryHub graph store benchmark\n")
        # On PostgreSQL database_engine() names the database (MEMORYHUB_DATABASE_URL); no file is used.
        where = "" if os.environ.get("MEMORYHUB_DATABASE_URL") else f"; database {db_path}"
        print(
            f"Python {platform.python_version()}, {database_engine()}, Django {django.get_version()}, "
            f"{platform.machine()}, {os.cpu_count()} CPUs{where}"
            f"{' (temporary)' if temporary and where else ''}; seed {SEED}"
        )
        reports = [bench_size(size, args.repeat, args.batch_repeat) for size in args.sizes]
        print_summary(reports, args.repeat)


if __name__ == "__main__":
    main()
