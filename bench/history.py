"""What recording the history costs a write (issue 18: at most 10% of the write's time).

Each write is timed twice per round, interleaved: once as the server runs it (its versions recorded
in its own transaction, graph/history.py) and once with `graph.history.record` and
`graph.history.snapshot` replaced by no-ops in this process only (the write alone). Every write goes
to a fresh namespace of its own, through the operation runner (`access.operations.perform`, as every
surface calls it, so the change context the history reads is opened as in production), or through
the REST stack for `/v1/memory/write`. It prints, per write, the median elapsed time and the median CPU time of this thread with and
without, the overhead, and the share of the write's CPU time spent inside graph.history's
functions (measured within each write, the figure load on the machine disturbs least).

The writes, each as a client sends it (the whole server-side work but the socket):
- MCP create_entities: 100 entities x 5 observations in one tools/call (the official server's
  batch), one JSON-RPC text handed to the protocol core and its answer rendered, as the stdio and
  HTTP transports do;
- MCP add_observations: 5 new observations on each of 100 existing entities in one tools/call;
- /v1/memory/write: a burst of 100 requests of one memory each, through Django's test client;
and the store's part alone, through the operation runner (the strictest base for the share):
- runner create_entities and add_observations as above, and memory_write with 100 memories in
  one call (what MemOS add and add_message send).

Embedding is off by default (MEMORYHUB_EMBED_ON_WRITE=0): the write is then only the store's
work, the strictest base for the history's share. `--embed` measures with the built-in embedder
on the request path too.

    python -m bench.history --rounds 15
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.setup import django_on

BATCH = 100
OBSERVATIONS = 5


def _entities(prefix: str, observations: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"{prefix} entity {i}",
            "entityType": ("person", "project", "service")[i % 3],
            "observations": [
                f"{prefix} fact {j} about entity {i}: latency was {i * 7 + j} ms" for j in range(observations)
            ],
        }
        for i in range(BATCH)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per write and mode (default 15)")
    parser.add_argument("--embed", action="store_true", help="embed on the request path (default: off)")
    args = parser.parse_args()
    os.environ["MEMORYHUB_EMBED_ON_WRITE"] = "1" if args.embed else "0"
    os.environ.setdefault("MEMORYHUB_RATE_LIMIT_PER_MINUTE", "0")
    with django_on(None, prefix="memoryhub-bench-history-"):
        run(args.rounds, args.embed)


def run(rounds: int, embed: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from access import services as access_services
    from access.operations import perform
    from access.permissions import Access, Grant, Permission
    from graph import history
    from mcp_endpoint import protocol
    from mcp_endpoint.jsonrpc import classify, parse
    from memory.services import NewMemory

    user = get_user_model().objects.create_user(username="bench")
    created = access_services.api_key_create(
        owner=user, name="bench", grants=[("bench:*", "write")], default_namespace="bench:default", source="command"
    )
    access = Access(
        grants=(Grant("bench:*", Permission.WRITE),),
        user_id=user.pk,
        key_id=created.key.pk,
        key_prefix=created.key.prefix,
        surface="mcp",
    )
    client = Client(HTTP_HOST="localhost")
    headers = {"HTTP_X_API_KEY": created.secret}

    def fresh() -> str:
        return f"bench:{uuid.uuid4().hex[:12]}"

    def create_entities() -> Callable[[], Any]:
        namespace, entities = fresh(), _entities(uuid.uuid4().hex[:6], OBSERVATIONS)
        return lambda: perform(access, "create_entities", namespace=namespace, entities=entities)

    def add_observations() -> Callable[[], Any]:
        namespace, prefix = fresh(), uuid.uuid4().hex[:6]
        entities = _entities(prefix, 0)
        perform(access, "create_entities", namespace=namespace, entities=entities)
        additions = [
            {
                "entityName": e["name"],
                "contents": [f"{prefix} new fact {j} of {e['name']}" for j in range(OBSERVATIONS)],
            }
            for e in entities
        ]
        return lambda: perform(access, "add_observations", namespace=namespace, observations=additions)

    def memory_write() -> Callable[[], Any]:
        namespace, prefix = fresh(), uuid.uuid4().hex[:6]
        memories = [
            NewMemory(text=f"{prefix} memory {i}: the build took {i * 3} s", actor_id="u1") for i in range(BATCH)
        ]
        return lambda: perform(access, "memory_write", namespace=namespace, memories=memories)

    def rest_burst() -> Callable[[], Any]:
        namespace, prefix = fresh(), uuid.uuid4().hex[:6]
        bodies = [
            json.dumps({"text": f"{prefix} note {i}: deploy {i} went fine", "namespace": namespace})
            for i in range(BATCH)
        ]

        def burst() -> None:
            for body in bodies:
                response = client.post("/v1/memory/write", body, content_type="application/json", **headers)
                assert response.status_code == 200, response.content

        return burst

    def mcp(tool: str, arguments: Callable[[str], dict[str, Any]]) -> Callable[[], Callable[[], Any]]:
        """A tools/call as the MCP transports hand it to the protocol core: one JSON text in,
        one JSON text out (the work of a stdio or HTTP server per call, without the socket)."""

        def prepare() -> Callable[[], Any]:
            namespace = fresh()
            connection = protocol.Connection(access=access, namespace=namespace)
            handshake = {"protocolVersion": "2025-06-18", "capabilities": {}}
            protocol.handle(
                connection, classify({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": handshake})
            )
            protocol.handle(connection, classify({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            line = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": arguments(namespace)},
                }
            ).encode()

            def call() -> None:
                reply = protocol.handle(connection, classify(parse(line))).message
                assert reply is not None
                assert not reply["result"].get("isError"), reply
                json.dumps(reply, ensure_ascii=False)

            return call

        return prepare

    def entities_for(namespace: str) -> dict[str, Any]:
        return {"entities": _entities(uuid.uuid4().hex[:6], OBSERVATIONS)}

    def additions_for(namespace: str) -> dict[str, Any]:
        prefix = uuid.uuid4().hex[:6]
        entities = _entities(prefix, 0)
        perform(access, "create_entities", namespace=namespace, entities=entities)
        return {
            "observations": [
                {
                    "entityName": e["name"],
                    "contents": [f"{prefix} new fact {j} of {e['name']}" for j in range(OBSERVATIONS)],
                }
                for e in entities
            ]
        }

    writes: dict[str, Callable[[], Callable[[], Any]]] = {
        f"MCP create_entities {BATCH}x{OBSERVATIONS}": mcp("create_entities", entities_for),
        f"MCP add_observations {BATCH}x{OBSERVATIONS}": mcp("add_observations", additions_for),
        f"/v1/memory/write x{BATCH} requests": rest_burst,
        f"runner create_entities {BATCH}x{OBSERVATIONS}": create_entities,
        f"runner add_observations {BATCH}x{OBSERVATIONS}": add_observations,
        f"runner memory_write {BATCH} in one call": memory_write,
    }
    recording = (history.record, history.snapshot)
    inside: list[float] = []  # CPU time spent in the history's functions during one write

    def timed(function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                inside.append(time.thread_time() - started)

        return run

    def set_history(on: bool) -> None:
        if on:
            history.record, history.snapshot = (timed(function) for function in recording)
        else:
            history.record = lambda *args, **kwargs: None
            history.snapshot = lambda *args, **kwargs: None

    print(
        f"bench/history.py on Python {platform.python_version()}, SQLite file, {rounds} rounds, "
        f"embedding on the request path: {'on' if embed else 'off'}, {os.cpu_count()} CPUs"
    )
    # Medians of the elapsed time, then of the CPU time this thread spent (SQLite runs in it; on a
    # machine other processes load, CPU time is the steadier of the two).
    # Last, the share of the write's CPU time spent inside graph.history (its record and snapshot
    # functions, timed during the write itself: a ratio within one run, which load on the machine
    # disturbs least).
    print(f"{'':40} {'elapsed (median)':^36} {'CPU time (median)':^36} {'inside':>9}")
    print(
        f"{'write':40} {'with history':>14} {'without':>10} {'overhead':>9} {'with history':>12} {'without':>10} {'overhead':>9}"
    )
    for label, prepare in writes.items():
        wall: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        shares: list[float] = []
        for round_ in range(rounds + 1):  # round 0 warms up and is not counted
            for on in (round_ % 2 == 0, round_ % 2 != 0):  # alternate which mode goes first
                call = prepare()
                set_history(on)
                inside.clear()
                try:
                    started, started_cpu = time.perf_counter(), time.thread_time()
                    call()
                    elapsed, elapsed_cpu = time.perf_counter() - started, time.thread_time() - started_cpu
                finally:
                    set_history(True)
                if round_:
                    wall[on].append(elapsed * 1000)
                    cpu[on].append(elapsed_cpu * 1000)
                    if on:
                        shares.append(sum(inside) / elapsed_cpu * 100)
        with_history, without = statistics.median(wall[True]), statistics.median(wall[False])
        cpu_with, cpu_without = statistics.median(cpu[True]), statistics.median(cpu[False])
        print(
            f"{label:40} {with_history:11.2f} ms {without:7.2f} ms {_share(with_history, without):>9} "
            f"{cpu_with:9.2f} ms {cpu_without:7.2f} ms {_share(cpu_with, cpu_without):>9} "
            f"{statistics.median(shares):8.1f}%"
        )


def _share(with_history: float, without: float) -> str:
    return f"{(with_history - without) / without * 100:.1f}%"


if __name__ == "__main__":
    main()
