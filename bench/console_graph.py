"""Server time of the console's graph pages (console/graphview.py) on a 100,000-entity graph.

Fills a namespace the way bench/graph.py does (N entities, 5 observations each, a random tree of
relations) plus one hub with `--hub` extra relations (the worst case for a neighbourhood and an
entity page), then requests each page through Django's test client as a signed-in superuser, in
process, timing each request with time.perf_counter (what the view, templates and SQL cost; no
network). Prints the median and the 95th percentile per URL.

    python -m bench.console_graph --size 100000 --repeat 30 [--db /tmp/console-graph.sqlite3]

With `--db` the filled database is kept, and a second run on it skips the filling.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from random import Random
from urllib.parse import quote

from bench.setup import django_on

NAMESPACE = "bench:console"
HUB = "hub/of everything"


def _fill(size: int, hub: int) -> None:
    from bench.graph import SEED, graph_batches
    from graph import services

    if services.create_entities(namespace=NAMESPACE, entities=[{"name": HUB, "entityType": "hub", "observations": []}])[
        "skipped"
    ]:
        print(f"{NAMESPACE} is filled already")
        return
    started = time.perf_counter()
    entity_batches, _parent, relation_batches = graph_batches(size, Random(SEED))
    for batch in entity_batches:
        services.create_entities(namespace=NAMESPACE, entities=batch)
    for relations in relation_batches:
        services.create_relations(namespace=NAMESPACE, relations=relations)
    for start in range(0, hub, 1000):
        services.create_relations(
            namespace=NAMESPACE,
            relations=[
                {"from": HUB, "to": f"entity-{i}", "relationType": "links"}
                for i in range(start, min(start + 1000, hub))
            ],
        )
    for start in range(0, 2000, 1000):
        facts = [f"fact {n}" for n in range(start, start + 1000)]
        services.add_observations(namespace=NAMESPACE, observations=[{"entityName": HUB, "contents": facts}])
    print(f"filled {size} entities (+ a hub with {hub} relations) in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--hub", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--db", type=Path, default=None)
    options = parser.parse_args()
    with django_on(options.db, prefix="bench-console-graph-"):
        from django.contrib.auth import get_user_model
        from django.test import Client

        _fill(options.size, options.hub)
        user = get_user_model().objects.filter(username="bench-root").first()
        if user is None:
            user = get_user_model().objects.create_superuser(username="bench-root", email="", password="unused")
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)
        base = f"/console/namespaces/{quote(NAMESPACE)}"
        mid = f"entity-{options.size // 2}"
        urls = [
            f"{base}/graph",
            f"{base}/graph?entityType=person",
            f"{base}/graph?relationType=depends_on",
            f"{base}/graph?focus={quote(HUB)}",
            f"{base}/graph?focus=entity-0&depth=2",
            f"{base}/graph.json?mode=sample",
            f"{base}/graph.json?mode=sample&relationType=depends_on",
            f"{base}/graph.json?mode=neighbours&name={quote(HUB)}",
            f"{base}/graph.json?mode=neighbours&name={mid}&depth=2",
            f"{base}/graph.json?mode=find&q=deployment",
            f"{base}/graph.json?mode=entity&name={quote(HUB)}",
            f"{base}/entities/{quote(HUB)}",
            f"{base}/entities/{mid}",
            f"{base}/entities/entity-0",
        ]
        print(f"{'URL':<78} {'median ms':>10} {'p95 ms':>8}")
        for url in urls:
            times = []
            for _ in range(options.repeat + 2):
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (url, response.status_code, response.content[:300])
            times = sorted(times[2:])  # the first two warm caches
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            print(f"{url:<78} {statistics.median(times):>10.1f} {p95:>8.1f}")


if __name__ == "__main__":
    main()
