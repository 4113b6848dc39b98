"""Latency benchmark for the operator console (the Django admin) on a large graph.

What it measures: it fills a throwaway database with `--entities` entities (5 observations each, a
random tree of relations) spread unevenly over a few namespaces, one entity with 1,000
observations, plus `--users` users with
`--keys-per-user` API keys each (every key audited), then renders admin pages with the Django test
client signed in as a superuser: the namespace, entity, relation, type, key, user and audit-log
changelists, the entity list filtered by namespace, entity searches (name prefix across
namespaces; full-text within a namespace) and one entity's change page. Each page is requested
`--repeat` times after a warm-up; it prints the median and 95th percentile in ms and the number
of ORM queries per page (the FTS search's own SQL runs on the raw connection and is not counted).

It also times the ways the namespace list could count entities, observations and relations, which
is how graph/admin.py chose its annotations.

Run it with `python -m bench.admin` (defaults: 100,000 entities in 4 namespaces). By default the
database lives in a new temporary directory that is deleted afterwards; `--db PATH` keeps it and
reuses it on the next run when it already holds the benchmark data (handy when tuning queries).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from random import Random
from typing import Any

from bench.graph import (
    BATCH,
    COMMON_WORDS,
    ENTITY_TYPES,
    RELATION_TYPES,
    SEED,
    TOPICS,
    make_observations,
    print_table,
)
from bench.setup import django_on, environment_line

# An uneven split, as real deployments have: one big shared namespace and a few smaller ones.
NAMESPACES = (
    ("acme:eng:platform", 0.4),
    ("acme:eng:payments", 0.3),
    ("acme:sales:crm", 0.2),
    ("globex:research:notes", 0.1),
)
SUPERUSER = "bench-operator"
BUSY = "busy-entity"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.admin", description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=100_000, help="entities in all namespaces together")
    parser.add_argument("--users", type=int, default=50, help="users owning API keys")
    parser.add_argument("--keys-per-user", type=int, default=20, help="API keys per user")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page")
    parser.add_argument("--db", type=Path, help="SQLite file to use (kept, and reused if already filled)")
    args = parser.parse_args(argv)
    if args.entities < len(NAMESPACES) * 10 or args.repeat < 1 or args.users < 1 or args.keys_per_user < 1:
        parser.error("--entities must be >= 40; --repeat, --users and --keys-per-user >= 1")
    return args


# --- data --------------------------------------------------------------------------------------------


def entity_name(namespace_index: int, i: int) -> str:
    return f"n{namespace_index}-entity-{i}"


def populate_graph(total: int, rng: Random) -> dict[str, int]:
    """Entities, observations and a random relation tree per namespace, all through graph.services."""
    from graph import services

    sizes: dict[str, int] = {}
    for index, (namespace, share) in enumerate(NAMESPACES):
        size = max(10, int(total * share))
        sizes[namespace] = size
        started = time.perf_counter()
        for start in range(0, size, BATCH):
            batch = []
            for i in range(start, min(start + BATCH, size)):
                entity_type = ENTITY_TYPES[rng.randrange(len(ENTITY_TYPES))]
                observations = make_observations(rng, i, entity_type)
                observations[0] = f"{entity_name(index, i)} is a {entity_type} tracked under code n{index}c{i}x."
                batch.append({"name": entity_name(index, i), "entityType": entity_type, "observations": observations})
            services.create_entities(namespace=namespace, entities=batch)
        for start in range(1, size, BATCH):
            relations = [
                {
                    "from": entity_name(index, i),
                    "to": entity_name(index, rng.randrange(i)),
                    "relationType": rng.choice(RELATION_TYPES),
                }
                for i in range(start, min(start + BATCH, size))
            ]
            services.create_relations(namespace=namespace, relations=relations)
        print(f"  {namespace}: {size:,} entities in {time.perf_counter() - started:.1f} s", flush=True)
    # One entity with many observations, for the change page (its inline shows the newest 50).
    busy = [f"Busy note {k}: {rng.choice(COMMON_WORDS)} of {rng.choice(TOPICS)}." for k in range(BATCH)]
    services.create_entities(
        namespace=NAMESPACES[0][0], entities=[{"name": BUSY, "entityType": "log", "observations": busy}]
    )
    return sizes


def populate_keys(users: int, keys_per_user: int) -> None:
    """Users with keys and grants, made (and audited) by the access services; every 10th key revoked."""
    from django.contrib.auth import get_user_model

    from access import services

    user_model = get_user_model()
    operator = user_model.objects.get(username=SUPERUSER)
    started = time.perf_counter()
    for u in range(users):
        user = user_model.objects.create_user(username=f"user{u}", password=None)
        services.allowance_set(user=user, pattern="acme:eng:*", permission="read", actor=operator, source="command")
        for k in range(keys_per_user):
            created = services.api_key_create(
                owner=user,
                name=f"user{u} key {k}",
                grants=[(f"user:user{u}:*", "write"), (NAMESPACES[k % len(NAMESPACES)][0], "read")],
                default_namespace=f"user:user{u}:notes",
                actor=operator,
                source="command",
            )
            if k % 10 == 0:
                services.api_key_revoke(key=created.key, actor=operator, source="command")
    print(f"  {users * keys_per_user:,} API keys for {users} users in {time.perf_counter() - started:.1f} s")


def populate(args: argparse.Namespace) -> dict[str, int]:
    from django.contrib.auth import get_user_model

    from graph.models import Namespace

    existing = {ns.name: ns.entities.count() for ns in Namespace.objects.all()}
    if existing:
        print(f"reusing the data already in the database: {sum(existing.values()):,} entities\n")
        return existing
    print("populating (through the services) ...", flush=True)
    get_user_model().objects.create_superuser(username=SUPERUSER, email="", password=None)
    sizes = populate_graph(args.entities, Random(SEED))
    populate_keys(args.users, args.keys_per_user)
    from django.db import connection

    with connection.cursor() as cursor:  # planner statistics, as the maintenance job keeps them
        cursor.execute("PRAGMA optimize")
    print()
    return sizes


# --- timing -----------------------------------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def time_calls(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    result = None
    for _ in range(min(3, repeat)):  # warm-up: page cache, statement cache, template loading
        result = fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        result = fn()
        samples.append((time.perf_counter_ns() - started) / 1e6)
    return samples, result


def bench_pages(sizes: dict[str, int], repeat: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from graph.models import Entity

    client = Client()
    client.force_login(get_user_model().objects.get(username=SUPERUSER))
    biggest = max(sizes, key=lambda name: sizes[name])
    biggest_index = next(i for i, (name, _) in enumerate(NAMESPACES) if name == biggest)
    sample = Entity.objects.filter(namespace__name=biggest, name=entity_name(biggest_index, 4242 % sizes[biggest]))
    entity_pk = sample.values_list("pk", flat=True).get()
    busy_pk = Entity.objects.filter(namespace__name=NAMESPACES[0][0], name=BUSY).values_list("pk", flat=True).get()

    pages = [
        ("namespaces", "/admin/graph/namespace/"),
        ("entities", "/admin/graph/entity/"),
        ("entities, page 50", "/admin/graph/entity/?p=50"),
        (f"entities in {biggest}", f"/admin/graph/entity/?namespace__name={biggest}"),
        (f"entities in {biggest}, by name", f"/admin/graph/entity/?namespace__name={biggest}&o=1"),
        ("entity search: name prefix, all namespaces", f"/admin/graph/entity/?q=n{biggest_index}-entity-4242"),
        (
            f"entity search: full text in {biggest}, one hit",
            f"/admin/graph/entity/?namespace__name={biggest}&q=n{biggest_index}c4242x",
        ),
        (
            f"entity search: full text in {biggest}, common word",
            f"/admin/graph/entity/?namespace__name={biggest}&q=deployment",
        ),
        ("entity change page (5 observations)", f"/admin/graph/entity/{entity_pk}/change/"),
        (f"entity change page ({BATCH:,} observations, 50 shown)", f"/admin/graph/entity/{busy_pk}/change/"),
        ("entity delete confirmation", f"/admin/graph/entity/{entity_pk}/delete/"),
        ("relations", "/admin/graph/relation/"),
        ("types", "/admin/graph/typedict/"),
        ("API keys", "/admin/access/apikey/"),
        ("API keys, active only", "/admin/access/apikey/?state=active"),
        ("API key search", "/admin/access/apikey/?q=user7"),
        ("users", "/admin/auth/user/"),
        ("audit log", "/admin/access/auditevent/"),
    ]
    rows = []
    for label, url in pages:
        queries: list[str] = []

        def count(execute: Callable[..., Any], sql: str, *rest: Any, queries: list[str] = queries) -> Any:
            queries.append(sql)
            return execute(sql, *rest)

        # Counted with a wrapper rather than CaptureQueriesContext: each request start clears the
        # connection's query log.
        with connection.execute_wrapper(count):
            response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
        samples, _ = time_calls(lambda url=url: client.get(url), repeat)
        rows.append(
            [
                label,
                f"{statistics.median(samples):.1f}",
                f"{percentile(samples, 0.95):.1f}",
                str(len(queries)),
                url,
            ]
        )
    print(f"## Admin pages ({repeat} requests each, Django test client, superuser)\n")
    print_table(["page", "median ms", "p95 ms", "ORM queries", "URL"], rows, right=(1, 2, 3))


def bench_namespace_counts(repeat: int) -> None:
    """The namespace list needs three counts per row. Compare the candidate ways of getting them."""
    from django.contrib import admin
    from django.db.models import Count, IntegerField, OuterRef, Subquery

    from graph import selectors
    from graph.admin import NamespaceAdmin
    from graph.models import Entity, Namespace, Observation, Relation
    from kernel.admin_tools import SubqueryCount

    def grouped_count(model: Any) -> Subquery:
        rows = model.objects.filter(namespace=OuterRef("pk")).order_by().values("namespace")
        return Subquery(rows.annotate(n=Count("pk")).values("n"), output_field=IntegerField())

    def bare_count(model: Any) -> SubqueryCount:
        return SubqueryCount(model.objects.filter(namespace=OuterRef("pk")).order_by().values("pk"))

    namespace_admin, request = NamespaceAdmin(Namespace, admin.site), _request()
    candidates: list[tuple[str, Callable[[], object]]] = [
        (
            "count per table, Django's usual GROUP BY subqueries",
            lambda: list(
                Namespace.objects.annotate(
                    e=grouped_count(Entity), o=grouped_count(Observation), r=grouped_count(Relation)
                ).values_list("name", "e", "o", "r")
            ),
        ),
        (
            "count(*) per table, bare subqueries",
            lambda: list(
                Namespace.objects.annotate(
                    e=bare_count(Entity), o=bare_count(Observation), r=bare_count(Relation)
                ).values_list("name", "e", "o", "r")
            ),
        ),
        (
            "graph_stats() per namespace (4 queries each)",
            lambda: [
                selectors.graph_stats(namespace=name) for name in Namespace.objects.values_list("name", flat=True)
            ],
        ),
        (
            "NamespaceAdmin.get_queryset: type-count sums, bare observation counts",
            lambda: list(namespace_admin.get_queryset(request).values()),
        ),
    ]
    rows = []
    for label, fn in candidates:
        samples, _ = time_calls(fn, repeat)
        rows.append([label, f"{statistics.median(samples):.1f}", f"{percentile(samples, 0.95):.1f}"])
    print(f"\n## Namespace list counts ({Namespace.objects.count()} namespaces, {repeat} runs each)\n")
    print_table(["strategy", "median ms", "p95 ms"], rows, right=(1, 2))


def _request() -> Any:
    from django.contrib.auth import get_user_model
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/graph/namespace/")
    request.user = get_user_model().objects.get(username=SUPERUSER)
    return request


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with django_on(args.db, prefix="memoryhub-bench-admin-") as (db_path, temporary):
        from django.conf import settings

        # The test client's host. (Not setup_test_environment(): its instrumented template rendering
        # would add to every page's time.)
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        print("# MemoryHub admin benchmark\n")
        print(environment_line(db_path, temporary))
        sizes = populate(args)
        bench_pages(sizes, args.repeat)
        bench_namespace_counts(args.repeat)


if __name__ == "__main__":
    main()
