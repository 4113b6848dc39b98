"""Server time of every memory console page (/console/...) on a graph of 100,000 entities.

What it builds: a throwaway database with `--entities` entities (5 observations each, a random
relation tree) spread unevenly over four namespaces (bench/admin.py's `populate_graph`, with
embedding off: 500,000 observations would take minutes to embed and the graph pages do not read
vectors), then `--memories` free memories in the biggest namespace, written with embedding on and
the backlog drained, so searching by meaning reads a real index; one memory with a history of
several versions (edits and a supersession); a hub entity with 5,000 relations and 2,000
observations (the worst case for a neighbourhood and an entity page); and two users: an operator (superuser: every
namespace) and a user allowed to read `acme:eng:*` (two of the four namespaces).

What it measures: each console page requested `--repeat` times after a warm-up with the Django
test client signed in as that user (the whole Django stack: middleware, the runner's grant
checks, the queries, the templates; the network and the browser's own work are not in it): the
median and 95th percentile in ms. The downloads (export) are timed apart: they stream a whole
namespace, which takes as long as the namespace is big, and are not pages.

Run it with `python -m bench.console` (defaults: 100,000 entities, 10,000 memories). `--db PATH`
keeps the database and reuses it on the next run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from random import Random
from typing import Any
from urllib.parse import quote, urlencode

from bench.admin import NAMESPACES, entity_name, percentile, populate_graph, time_calls
from bench.corpus import corpus
from bench.graph import SEED, print_table
from bench.setup import django_on, environment_line

OPERATOR = "bench-console-operator"
READER = "bench-console-reader"
READER_PATTERN = "acme:eng:*"
MEMORY_NAMESPACE = NAMESPACES[0][0]
# The worst case for a neighbourhood and an entity page: an entity of the biggest namespace with
# HUB_RELATIONS relations and HUB_OBSERVATIONS observations (names with a '/' and a space, as
# entity names may have).
HUB = "hub/of everything"
HUB_RELATIONS = 5_000
HUB_OBSERVATIONS = 2_000


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000, help="entities in all namespaces together")
    parser.add_argument("--memories", type=int, default=10_000, help="free memories (embedded) in the biggest")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page")
    parser.add_argument("--db", type=Path, help="SQLite file to use (kept, and reused if already filled)")
    args = parser.parse_args(argv)
    if args.entities < len(NAMESPACES) * 10 or args.repeat < 1 or args.memories < 10:
        parser.error("--entities must be >= 40, --memories >= 10, --repeat >= 1")
    return args


# --- data --------------------------------------------------------------------------------------------


def populate_hub() -> None:
    from graph import services

    services.create_entities(
        namespace=MEMORY_NAMESPACE, entities=[{"name": HUB, "entityType": "hub", "observations": []}]
    )
    for start in range(0, HUB_RELATIONS, 1000):
        relations = [
            {"from": HUB, "to": entity_name(0, i), "relationType": "links"}
            for i in range(start, min(start + 1000, HUB_RELATIONS))
        ]
        services.create_relations(namespace=MEMORY_NAMESPACE, relations=relations)
    for start in range(0, HUB_OBSERVATIONS, 1000):
        facts = [f"hub fact {n}" for n in range(start, start + 1000)]
        services.add_observations(namespace=MEMORY_NAMESPACE, observations=[{"entityName": HUB, "contents": facts}])


def populate_memories(count: int) -> str:
    """`count` free memories in MEMORY_NAMESPACE, embedded; returns the id of one with a history."""
    from access.operations import perform
    from access.permissions import Access, Grant, Permission
    from memory.services import NewMemory
    from vectors import backlog

    root = Access(grants=(Grant("*", Permission.WRITE),), surface="system")
    texts = corpus(count)
    started = time.perf_counter()
    for start in range(0, count, 500):
        batch = [NewMemory(text=text, tags=["bench", f"batch{start // 500}"]) for text in texts[start : start + 500]]
        perform(root, "memory_write", namespace=MEMORY_NAMESPACE, memories=batch, dedupe=False)
    drained = backlog.drain()
    print(f"  {count:,} memories written and {drained:,} texts embedded in {time.perf_counter() - started:.1f} s")
    written = perform(
        root,
        "memory_write",
        namespace=MEMORY_NAMESPACE,
        memories=[NewMemory(text="The on-call rota starts on Monday.")],
    )
    memory_id = written[0]["id"]
    for day in ("Tuesday", "Wednesday", "Thursday"):
        perform(root, "memory_update", id=memory_id, text=f"The on-call rota starts on {day}.")
    perform(root, "memory_supersede", id=memory_id, text="The on-call rota starts on Friday.")
    return str(memory_id)


def populate(args: argparse.Namespace) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from access.models import NamespaceAllowance
    from graph.models import Namespace, Observation

    user_model = get_user_model()
    if Namespace.objects.exists():
        print("reusing the data already in the database\n")
        history = Observation.objects.filter(body="The on-call rota starts on Thursday.").values_list("pk", flat=True)
        return {
            "sizes": {ns.name: ns.entities.count() for ns in Namespace.objects.all()},
            "memory": f"mem_{history[0]}",
        }
    print("populating (through the services) ...", flush=True)
    user_model.objects.create_superuser(username=OPERATOR, email="", password=None)
    reader = user_model.objects.create_user(username=READER, password=None)
    NamespaceAllowance.objects.create(user=reader, pattern=READER_PATTERN, permission="read")
    settings.MEMORYHUB_EMBED_ON_WRITE = False
    sizes = populate_graph(args.entities, Random(SEED))
    populate_hub()
    settings.MEMORYHUB_EMBED_ON_WRITE = True
    memory = populate_memories(args.memories)
    from django.db import connection

    with connection.cursor() as cursor:  # planner statistics, as the maintenance job keeps them
        cursor.execute("PRAGMA optimize")
    print()
    return {"sizes": sizes, "memory": memory}


# --- timing -----------------------------------------------------------------------------------------


def pages(data: dict[str, Any]) -> list[tuple[str, str]]:
    from django.urls import reverse

    sizes: dict[str, int] = data["sizes"]
    biggest = max((name for name, _ in NAMESPACES), key=lambda name: sizes.get(name, 0))
    index = next(i for i, (name, _) in enumerate(NAMESPACES) if name == biggest)
    some = entity_name(index, 4242 % max(1, sizes[biggest]))
    hub = HUB if biggest == MEMORY_NAMESPACE else entity_name(index, 0)
    graph_data = reverse("console:graph-data", args=[biggest])

    def q(**params: str) -> str:
        return "?" + urlencode(params)

    return [
        ("overview", reverse("console:home")),
        ("recent writes (JSON)", reverse("console:recent")),
        ("search, all namespaces", reverse("console:search") + q(q="deployment rollback")),
        ("search, one namespace", reverse("console:search") + q(q="deployment rollback", namespace=biggest)),
        ("search, a rare code", reverse("console:search") + q(q=f"n{index}c4242x")),
        ("search, asOf a year ago", reverse("console:search") + q(q="deployment", asOf="2025-12-01")),
        ("search, include expired", reverse("console:search") + q(q="rota", includeExpired="on")),
        ("namespace memories", reverse("console:namespace-memories", args=[biggest])),
        ("memory with history", reverse("console:memory", args=[data["memory"]])),
        ("graph page", reverse("console:graph", args=[biggest])),
        ("graph JSON: sample", graph_data + q(mode="sample")),
        ("graph JSON: neighbours of the hub", graph_data + q(mode="neighbours", name=hub)),
        ("graph JSON: find", graph_data + q(mode="find", q="entity-4242")),
        ("graph JSON: the hub's panel", graph_data + q(mode="entity", name=hub)),
        ("graph page focused", reverse("console:graph", args=[biggest]) + q(focus=some)),
        ("graph page focused on the hub", reverse("console:graph", args=[biggest]) + q(focus=hub)),
        ("entity page", reverse("console:entity", args=[biggest, some])),
        (
            f"entity page, the hub ({HUB_RELATIONS:,} relations, {HUB_OBSERVATIONS:,} observations)",
            reverse("console:entity", args=[biggest, hub]),
        ),
        ("import and export", reverse("console:transfer")),
    ]


def finished_import(user: Any) -> int:
    """A finished import job of `user` with the most a report keeps (1,000 skipped relations)."""
    from graph.import_jobs import SKIPPED_KEPT
    from graph.models import ImportJob

    skipped = [
        {"relation": {"from": f"a{n}", "to": f"missing{n}", "relationType": "knows"}, "reason": "no entity"}
        for n in range(SKIPPED_KEPT)
    ]
    job = ImportJob.objects.create(
        user=user, namespace=MEMORY_NAMESPACE, filename="memory.jsonl", state=ImportJob.State.DONE, total=50_000,
        done=50_000, counts={"entitiesCreated": 40_000}, skipped=skipped, skipped_count=5_000,
    )  # fmt: skip
    return int(job.pk)


def bench_pages(username: str, data: dict[str, Any], repeat: int) -> None:
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import Client
    from django.urls import reverse

    user = get_user_model().objects.get(username=username)
    client = Client()
    client.force_login(user)
    job = finished_import(user)
    imports = [
        ("an import's page (1,000 skipped relations listed)", reverse("console:import-job", args=[job])),
        ("an import's progress (JSON)", reverse("console:import-job-status", args=[job])),
    ]
    rows = []
    for label, url in [*pages(data), *imports]:
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code} for {username}")
        samples, _ = time_calls(lambda url=url: client.get(url), repeat)
        rows.append([label, f"{statistics.median(samples):.1f}", f"{percentile(samples, 0.95):.1f}", url])
        if url == reverse("console:home"):
            # The growth counts are cached for minutes: the first view after that pays them.
            def cold_get(url: str = url) -> Any:
                cache.clear()
                return client.get(url)

            samples, _ = time_calls(cold_get, repeat)
            cold = [label + ", nothing cached", f"{statistics.median(samples):.1f}", f"{percentile(samples, 0.95):.1f}"]
            rows.append([*cold, url])
    print(f"## Console pages as {username} ({repeat} requests each, Django test client)\n")
    print_table(["page", "median ms", "p95 ms", "URL"], rows, right=(1, 2))
    print()


def bench_exports(data: dict[str, Any]) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    client = Client()
    client.force_login(get_user_model().objects.get(username=OPERATOR))
    smallest = min((name for name, _ in NAMESPACES), key=lambda name: data["sizes"].get(name, 0))
    rows = []
    for fmt in ("jsonl", "json", "mermaid", "dot", "dump"):
        url = reverse("console:export", args=[smallest]) + f"?format={fmt}"
        started = time.perf_counter()
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content  # type: ignore[attr-defined]
        size = len(body)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        rows.append([fmt, f"{data['sizes'][smallest]:,}", f"{size / 1e6:.1f}", f"{elapsed:.2f}"])
    print(f"## Downloads of {quote(smallest)} (one request each)\n")
    print_table(["format", "entities", "MB", "seconds"], rows, right=(1, 2, 3))


def bench_write_cost(rounds: int = 6, writes: int = 200) -> None:
    """What the live feed costs a write: one-observation writes with no receiver of
    `operation_applied` for the console, with a channel-layer group_send per write (the first
    design), and with the receiver as it is (an event for the waker thread, console/live.py).
    Each block of writes goes to an entity of its own, blocks in a shuffled order per round."""

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from access.operations import perform
    from access.permissions import Access, Grant, Permission
    from access.signals import operation_applied
    from console import live

    def per_write(sender: Any, **kwargs: Any) -> None:
        layer = get_channel_layer()
        assert layer is not None
        async_to_sync(layer.group_send)(live.GROUP, {"type": live.WAKE})

    uid = "console.live.wake"
    modes: dict[str, Any] = {
        "no receiver": None,
        "a group_send per write (the first design)": per_write,
        "an event for the waker thread (console/live.py)": live.wake_streams,
    }
    access = Access(grants=(Grant("*", Permission.WRITE),), surface="system")
    samples: dict[str, list[float]] = {mode: [] for mode in modes}
    rng = Random(SEED)
    for round_ in range(rounds):
        order = list(modes.items())
        rng.shuffle(order)
        for mode, receiver in order:
            operation_applied.disconnect(dispatch_uid=uid)
            if receiver is not None:
                operation_applied.connect(receiver, dispatch_uid=uid)
            name = f"write-cost {round_} {list(modes).index(mode)}"
            entity = [{"name": name, "entityType": "bench", "observations": []}]
            perform(access, "create_entities", namespace="bench:write-cost", entities=entity)
            for i in range(writes):
                started = time.perf_counter_ns()
                observation = [{"entityName": name, "contents": [f"fact {i}"]}]
                perform(access, "add_observations", namespace="bench:write-cost", observations=observation)
                samples[mode].append((time.perf_counter_ns() - started) / 1e6)
    operation_applied.disconnect(dispatch_uid=uid)
    operation_applied.connect(live.wake_streams, dispatch_uid=uid)
    rows = [[mode, f"{statistics.median(s):.3f}", f"{percentile(s, 0.95):.3f}"] for mode, s in samples.items()]
    print(f"\n## What the live feed costs a write ({rounds * writes} one-observation writes each, in process)\n")
    print_table(["console receiver", "median ms", "p95 ms"], rows, right=(1, 2))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with django_on(args.db, prefix="memoryhub-bench-console-") as (db_path, temporary):
        from django.conf import settings

        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        print("# MemoryHub console benchmark\n")
        print(environment_line(db_path, temporary))
        data = populate(args)
        bench_pages(OPERATOR, data, args.repeat)
        bench_pages(READER, data, args.repeat)
        bench_exports(data)
        bench_write_cost()


if __name__ == "__main__":
    main()
