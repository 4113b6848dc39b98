"""What the REST layer costs on top of the store: the same graph operations called in-process
(`access.operations.perform`), through the whole Django/DRF stack in-process (test client: key
check, rate limit, parsing, validation, rendering), and over real HTTP to a daphne server.

Run: `python -m bench.api [--entities 10000] [--repeat 300]`. The database is a temporary file,
or with MEMORYHUB_DATABASE_URL an empty PostgreSQL database (server and client both use it).
Prints median and p95 in microseconds per operation and path. Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from random import Random

from bench import stats
from bench.setup import settle, start_daphne


def _percentiles(samples: list[int]) -> tuple[float, float]:
    return stats.median(samples) / 1000, stats.p95(samples) / 1000


def _time(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return _percentiles(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()

    temp_dir = tempfile.mkdtemp(prefix="memoryhub-bench-api-")
    os.environ["MEMORYHUB_DATA_DIR"] = temp_dir
    os.environ["MEMORYHUB_RATE_LIMIT_PER_MINUTE"] = "0"
    os.environ["DJANGO_SETTINGS_MODULE"] = "memoryhub.settings"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from access import services as access
    from access.authentication import authenticate
    from access.operations import perform
    from graph import services

    server = None
    try:
        call_command("migrate", verbosity=0)
        namespace = "bench:api"
        for start in range(0, args.entities, 1000):
            services.create_entities(
                namespace=namespace,
                entities=[
                    {"name": f"e{i}", "entityType": "thing", "observations": [f"entity {i} note", "shared word"]}
                    for i in range(start, min(start + 1000, args.entities))
                ],
            )
        settle()  # on PostgreSQL: the statistics autovacuum would gather within a minute
        user = get_user_model().objects.create_user(username="bench")
        secret = access.api_key_create(
            owner=user, name="bench", grants=[("bench:*", "write")], default_namespace=namespace, source="command"
        ).secret
        key_access = authenticate(secret)
        rng = Random(7)
        counter = iter(range(10**9))

        cases: dict[str, Callable[[], dict]] = {
            "get_entity": lambda: {"name": f"e{rng.randrange(args.entities)}"},
            "search_nodes (limit 10)": lambda: {"query": f"e{rng.randrange(args.entities)}", "limit": 10},
            "open_nodes (10 names)": lambda: {"names": [f"e{rng.randrange(args.entities)}" for _ in range(10)]},
            "add_observations (1)": lambda: {
                "observations": [{"entityName": f"e{rng.randrange(args.entities)}", "contents": [f"n{next(counter)}"]}]
            },
            "read_graph (limit 100)": lambda: {"limit": 100},
        }
        operation_of = {label: label.split(" ")[0] for label in cases}

        server, port = start_daphne()
        connection = http.client.HTTPConnection("127.0.0.1", port)
        client = Client(HTTP_HOST="127.0.0.1")

        def over_http(path: str, body: dict) -> None:
            connection.request(
                "POST", path, json.dumps(body), {"X-API-Key": secret, "Content-Type": "application/json"}
            )
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status

        print(f"# REST overhead, {args.entities:,} entities, {args.repeat} calls each (median / p95 µs)\n")
        print("| operation | store (perform) | REST in-process | REST over HTTP (daphne) |")
        print("|---|---|---|---|")

        def row(label: str, operation: str, make: Callable[[], dict]) -> str:
            store = _time(lambda: perform(key_access, operation, namespace=None, **make()), args.repeat)
            in_process = _time(
                lambda: client.post(
                    f"/v1/graph/{operation}", make(), content_type="application/json", HTTP_X_API_KEY=secret
                ),
                args.repeat,
            )
            over = _time(lambda: over_http(f"/v1/graph/{operation}", make()), args.repeat)
            return (
                " | ".join([f"| {label}", *(f"{median:.0f} / {p95:.0f}" for median, p95 in (store, in_process, over))])
                + " |"
            )

        for label, make in cases.items():
            print(row(label, operation_of[label], make))
        auth = _time(lambda: authenticate(secret), args.repeat)
        banks = _time(lambda: client.get("/v1/memory/banks/list", HTTP_X_API_KEY=secret), args.repeat)
        print(
            f"\nauthenticate() alone: {auth[0]:.0f} / {auth[1]:.0f} µs; GET banks/list in-process: "
            f"{banks[0]:.0f} / {banks[1]:.0f} µs"
        )
        connection.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
