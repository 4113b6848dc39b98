"""The write pipeline (issue 18, "store first, enrich behind"): writes against the official memory
server, read-your-writes, the backlog's drain rate, and a SIGKILL in the middle of a backlog.

    python -m bench.pipeline                      # everything, sizes 1,000 and 5,000
    python -m bench.pipeline --quick              # small sizes, to see that it works
    python -m bench.pipeline --only official --sizes 1000,5000
    python -m bench.pipeline --only ryw --pairs 200
    python -m bench.pipeline --only drain --texts 5000
    python -m bench.pipeline --only crash --texts 3000

Sections (`--only` picks some):

- official: the official MCP memory server (`@modelcontextprotocol/server-memory` from
  node_modules, a JSONL file) against MemoryHub's `manage.py mcp_stdio`, each driven by the official
  `mcp` SDK client over stdio. Per size N: populate N entities x 5 observations with
  create_entities in batches of 100 (total seconds), then `create_entities` of 100 new entities x 5
  observations (median of --calls calls, ms), then `add_observations` of one observation to an
  existing entity (median ms), each server given SETTLE_SECONDS after its handshake. MemoryHub
  runs once per embed mode (`--modes`: behind, inline, and off: no embedding, the SQL alone).
- ryw: --pairs write-then-paraphrase-search pairs, each search in the call right after its write,
  found when the written memory is in the top 3 (five pairs per namespace): over stdio (SDK,
  add_memory + search_memories),
  Streamable HTTP (SDK), REST (/v1/memory/write + /v1/memory/search), and across two daphne
  processes on one database (REST write on one, REST search on the other). Pairs are the
  paraphrase, Chinese and Chinese-to-English queries of bench/eval with their memory (120, reused
  in order beyond that). Also the median write and search latency per surface.
- drain: the backlog's drain rate: --texts memories written in behind mode by one process (no
  drainer running), then `vectors.backlog.drain()` timed (texts/s), next to the built-in model's
  own rate on the same texts.
- crash: a daphne process gets --texts memories over REST, is killed with SIGKILL while its backlog
  is not empty, restarted on the same file; then nothing written is lost and, once the restarted
  server has drained, every text has its vector and nothing is pending.

Every server runs on a temporary database, removed at the end. Numbers depend on the machine's
load: the header prints the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from random import Random
from typing import Any

from bench.mcp import BenchError, SdkCaller, Servers, log, stop

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = ROOT / "node_modules" / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"
EVAL = ROOT / "bench" / "eval"
BATCH = 100
OBSERVATIONS = 5
WORDS = [
    "deploy",
    "server",
    "port",
    "config",
    "user",
    "coffee",
    "team",
    "meeting",
    "project",
    "database",
    "backup",
    "python",
    "dark",
    "mode",
    "berlin",
    "acme",
    "release",
    "ticket",
    "review",
    "budget",
    "invoice",
    "customer",
    "latency",
    "cache",
    "queue",
    "schema",
    "migration",
    "incident",
    "oncall",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="official,ryw,drain,crash", help="comma-separated sections")
    parser.add_argument("--sizes", default="1000,5000", help="graph sizes for the official comparison")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per write case (official)")
    parser.add_argument("--pairs", type=int, default=200, help="write-then-search pairs per surface (ryw)")
    parser.add_argument("--texts", type=int, default=5000, help="texts for the drain and crash sections")
    parser.add_argument("--modes", default="behind,inline", help="MemoryHub embed modes to compare (official)")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: --sizes 200 --calls 5 --pairs 40 --texts 500"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.calls, args.pairs, args.texts = "200", 5, 40, 500
    return args


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


# --- official server vs MemoryHub over stdio -----------------------------------------------------------


def entity(i: int, rng: Random, tag: str) -> dict[str, Any]:
    return {
        "name": f"{tag}-entity-{i}",
        "entityType": "thing",
        "observations": [
            f"{tag} entity {i} fact {j}: " + " ".join(rng.choice(WORDS) for _ in range(8)) for j in range(OBSERVATIONS)
        ],
    }


@asynccontextmanager
async def official_client(data_dir: Path) -> AsyncIterator[SdkCaller]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command="node", args=[str(OFFICIAL)], env={**os.environ, "MEMORY_FILE_PATH": str(data_dir / "memory.jsonl")}
    )
    with open(data_dir / "official.log", "a") as errlog:
        async with Client(stdio_client(params, errlog=errlog), mode="legacy") as client:
            yield SdkCaller(client)


@asynccontextmanager
async def hub_client(servers: Servers) -> AsyncIterator[SdkCaller]:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=servers.stdio_args(False), env=servers.env, cwd=ROOT)
    async with Client(stdio_client(params, errlog=servers.errlog("stdio.log")), mode="legacy") as client:
        yield SdkCaller(client)


# Seconds each server gets after its handshake before the clock starts: the measure is of a server
# that is up, not of its start (MemoryHub's embedding worker loads Django and the model meanwhile).
SETTLE_SECONDS = 5.0


async def settle(caller: SdkCaller) -> None:
    await caller.call("read_graph", {})
    await asyncio.sleep(SETTLE_SECONDS)


async def write_workload(caller: SdkCaller, size: int, calls: int) -> dict[str, float]:
    rng = Random(18)
    started = time.perf_counter()
    for start in range(0, size, BATCH):
        await caller.call("create_entities", {"entities": [entity(i, rng, "pop") for i in range(start, start + BATCH)]})
    populate = time.perf_counter() - started
    create: list[float] = []
    for call in range(calls):
        batch = [entity(i, rng, f"new{call}") for i in range(BATCH)]
        began = time.perf_counter()
        await caller.call("create_entities", {"entities": batch})
        create.append(time.perf_counter() - began)
    add: list[float] = []
    for call in range(calls * 2):
        target = f"pop-entity-{rng.randrange(size)}"
        began = time.perf_counter()
        await caller.call(
            "add_observations", {"observations": [{"entityName": target, "contents": [f"added fact {call} {target}"]}]}
        )
        add.append(time.perf_counter() - began)
    return {"populate_s": round(populate, 2), "create_100x5_ms": median_ms(create), "add_1_ms": median_ms(add)}


async def official_section(args: argparse.Namespace) -> None:
    print("\n## Writes: the official memory server vs MemoryHub (official SDK client, stdio)\n")
    if not OFFICIAL.exists() or shutil.which("node") is None:
        print(f"skipped: {OFFICIAL} or node is missing (npm install)")
        return
    print(
        "| size | server | populate (5 obs/entity, batches of 100) | create_entities 100x5 (median) | add_observations 1 (median) |"
    )
    print("|---:|---|---:|---:|---:|")
    for size in [int(s) for s in args.sizes.split(",")]:
        rows: list[tuple[str, dict[str, float]]] = []
        data_dir = Path(tempfile.mkdtemp(prefix="memoryhub-bench-official-"))
        try:
            log(f"official server, {size:,} entities")
            async with official_client(data_dir) as caller:
                await settle(caller)
                rows.append(("official", await write_workload(caller, size, args.calls)))
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
        for mode in args.modes.split(","):
            log(f"MemoryHub ({mode}), {size:,} entities")
            servers = Servers()
            try:
                if mode == "off":  # the SQL alone: nothing queued, no worker
                    servers.env["MEMORYHUB_EMBED_ON_WRITE"] = "0"
                else:
                    servers.env["MEMORYHUB_EMBED_MODE"] = mode
                servers.prepare()
                async with hub_client(servers) as caller:
                    await settle(caller)
                    rows.append((f"MemoryHub {mode}", await write_workload(caller, size, args.calls)))
            finally:
                servers.close()
        official = rows[0][1]
        for name, result in rows:
            ratio = "" if name == "official" else f" ({official['add_1_ms'] / result['add_1_ms']:.1f}x faster)"
            print(
                f"| {size:,} | {name} | {result['populate_s']:.2f} s | {result['create_100x5_ms']:.1f} ms | "
                f"{result['add_1_ms']:.2f} ms{ratio} |"
            )


# --- read-your-writes -----------------------------------------------------------------------------------


def eval_pairs() -> list[tuple[str, str]]:
    memories = {m["id"]: m["text"] for m in map(json.loads, (EVAL / "memories.jsonl").read_text().splitlines())}
    pairs = []
    for query in map(json.loads, (EVAL / "queries.jsonl").read_text().splitlines()):
        if query["category"] in ("paraphrase_en", "zh", "zh_to_en") and len(query["relevant"]) == 1:
            pairs.append((memories[query["relevant"][0]], query["query"]))
    return pairs


# Pairs per namespace: each search competes with the namespace's other memories (so a memory
# without its vector is not found by a paraphrase), yet few enough that a miss measures
# read-your-writes, not the model's recall over a large bank (bench/retrieval.py measures that).
PAIRS_PER_NAMESPACE = 5


def plan(count: int, prefix: str) -> list[tuple[str, str, str]]:
    """(namespace, memory, query) for `count` pairs, PAIRS_PER_NAMESPACE per namespace."""
    pairs = eval_pairs()
    return [(f"{prefix}:{n // PAIRS_PER_NAMESPACE}", *pairs[n % len(pairs)]) for n in range(count)]


def rest(base_url: str, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base_url}{path}",
        data=json.dumps(body).encode(),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return dict(json.loads(response.read()))


class Tally:
    def __init__(self) -> None:
        self.found = 0
        self.total = 0
        self.write: list[float] = []
        self.search: list[float] = []
        self.missed: list[tuple[str, str]] = []

    def add(self, written: str, found: list[str], memory: str, query: str) -> None:
        self.total += 1
        if written in found:
            self.found += 1
        else:
            self.missed.append((memory, query))

    def line(self, surface: str) -> str:
        missed = "; ".join(f"{query!r} for {memory!r}" for memory, query in self.missed)
        return (
            f"| {surface} | {self.found}/{self.total} | {median_ms(self.write):.1f} ms | "
            f"{median_ms(self.search):.1f} ms | {missed} |"
        )


def ryw_rest(writer: str, searcher: str, key: str, pairs: list[tuple[str, str, str]]) -> Tally:
    tally = Tally()
    for namespace, memory, query in pairs:
        began = time.perf_counter()
        written = rest(writer, key, "/v1/memory/write", {"namespace": namespace, "text": memory})
        tally.write.append(time.perf_counter() - began)
        began = time.perf_counter()
        found = rest(searcher, key, "/v1/memory/search", {"namespace": namespace, "query": query, "topK": 3})
        tally.search.append(time.perf_counter() - began)
        tally.add(written["id"], [hit["id"] for hit in found["results"]], memory, query)
    return tally


async def ryw_mcp(caller: SdkCaller, pairs: list[tuple[str, str, str]]) -> Tally:
    tally = Tally()
    for namespace, memory, query in pairs:
        began = time.perf_counter()
        written = await caller.call("add_memory", {"memory_content": memory, "cube_id": namespace})
        tally.write.append(time.perf_counter() - began)
        began = time.perf_counter()
        found = await caller.call("search_memories", {"query": query, "cube_ids": [namespace], "top_k": 3})
        tally.search.append(time.perf_counter() - began)
        tally.add(written["id"], [hit["id"] for hit in found["results"]], memory, query)
    return tally


def start_daphne(servers: Servers, name: str) -> tuple[subprocess.Popen[bytes], str]:
    from bench.setup import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "memoryhub.asgi:application"],
        cwd=ROOT,
        env=servers.env,
        stdout=subprocess.DEVNULL,
        stderr=servers.errlog(f"{name}.log"),
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                return process, base
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    raise BenchError(f"daphne did not start:\n{servers.log_tail(f'{name}.log')}")


async def ryw_section(args: argparse.Namespace) -> None:
    print("\n## Read-your-writes: each paraphrase search in the call right after its write, top 3\n")
    for mode in args.modes.split(","):
        servers = Servers()
        processes: list[subprocess.Popen[bytes]] = []
        try:
            servers.env["MEMORYHUB_EMBED_MODE"] = mode
            servers.prepare()
            first, base_a = start_daphne(servers, "daphne-a")
            second, base_b = start_daphne(servers, "daphne-b")
            processes += [first, second]
            servers.port = int(base_a.rsplit(":", 1)[1])
            print(f"embed mode {mode}:\n")
            print("| surface | found in top 3 | write (median) | search right after (median) | misses |")
            print("|---|---:|---:|---:|---|")
            log(f"ryw ({mode}): stdio")
            async with hub_client(servers) as caller:
                print((await ryw_mcp(caller, plan(args.pairs, f"ryw-{mode}-stdio"))).line("MCP stdio"), flush=True)
            log(f"ryw ({mode}): http")
            import httpx2
            from mcp import Client
            from mcp.client.streamable_http import streamable_http_client

            async with (
                httpx2.AsyncClient(headers={"X-API-Key": servers.key}, timeout=300) as http,
                Client(streamable_http_client(servers.url, http_client=http), mode="legacy") as client,
            ):
                tally = await ryw_mcp(SdkCaller(client), plan(args.pairs, f"ryw-{mode}-http"))
            print(tally.line("MCP Streamable HTTP"), flush=True)
            log(f"ryw ({mode}): rest")
            print(ryw_rest(base_a, base_a, servers.key, plan(args.pairs, f"ryw-{mode}-rest")).line("REST"), flush=True)
            log(f"ryw ({mode}): two processes")
            tally = ryw_rest(base_a, base_b, servers.key, plan(args.pairs, f"ryw-{mode}-two"))
            print(tally.line("REST, write on one process, search on another"), flush=True)
            print()
        finally:
            for process in processes:
                stop(process)
            servers.close()


# --- drain rate -----------------------------------------------------------------------------------------

DRAIN_SCRIPT = """
import json, sys, time
import django
django.setup()
from memory.services import NewMemory, write_memories
from vectors import backlog
from vectors.embedders import default_embedder
texts = json.loads(sys.stdin.read())
for start in range(0, len(texts), 1000):
    write_memories(namespace="drain:bench", memories=[NewMemory(text=t) for t in texts[start:start + 1000]])
default_embedder().embed(["warm up"])
began = time.perf_counter()
drained = backlog.drain()
drain_s = time.perf_counter() - began
began = time.perf_counter()
default_embedder().embed(texts)
embed_s = time.perf_counter() - began
began = time.perf_counter()
for start in range(0, len(texts), 64):
    backlog._embed(texts[start:start + 64], default_embedder())
split_s = time.perf_counter() - began
print(json.dumps({"drained": drained, "drain_s": drain_s, "embed_s": embed_s, "split_s": split_s}))
"""


def drain_texts(count: int) -> list[str]:
    memories = [m["text"] for m in map(json.loads, (EVAL / "memories.jsonl").read_text().splitlines())]
    return [f"{memories[i % len(memories)]} (note {i})" for i in range(count)]


def drain_section(args: argparse.Namespace) -> None:
    print(f"\n## Backlog drain rate ({args.texts:,} memories, built-in model, one process)\n")
    servers = Servers()
    try:
        servers.env["MEMORYHUB_EMBED_MODE"] = "behind"
        servers.manage("migrate", "--noinput", "-v0")
        done = subprocess.run(
            [sys.executable, "-c", DRAIN_SCRIPT],
            input=json.dumps(drain_texts(args.texts)),
            cwd=ROOT,
            env=servers.env,
            text=True,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"the drain run failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"- drained {result['drained']:,} texts in {result['drain_s']:.2f} s: {result['drained'] / result['drain_s']:,.0f} texts/s"
        )
        print(
            f"- the model alone on the same texts: {args.texts / result['embed_s']:,.0f} texts/s on one thread, "
            f"{args.texts / result['split_s']:,.0f} texts/s in batches of 64 split across "
            f"MEMORYHUB_EMBED_BACKLOG_THREADS (the drain's way); the rest of the drain's time is claiming, "
            f"reading, storing and deleting"
        )
    finally:
        servers.close()


# --- SIGKILL during a backlog ---------------------------------------------------------------------------


def healthz(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:
        return dict(json.loads(response.read()))


def crash_section(args: argparse.Namespace) -> None:
    print(f"\n## SIGKILL in the middle of a backlog ({args.texts:,} observations over REST)\n")
    servers = Servers()
    try:
        servers.env["MEMORYHUB_EMBED_MODE"] = "behind"
        servers.prepare()
        process, base = start_daphne(servers, "daphne-crash")
        rng = Random(18)
        # Bulk writes (100 entities x 5 observations a request) queue texts far faster than one
        # core embeds them, so the kill lands in the middle of the backlog.
        began = time.perf_counter()
        names: list[str] = []
        for start in range(0, args.texts // OBSERVATIONS, BATCH):
            batch = [entity(i, rng, "crash") for i in range(start, min(start + BATCH, args.texts // OBSERVATIONS))]
            rest(base, servers.key, "/v1/graph/create_entities", {"namespace": "crash:backlog", "entities": batch})
            names += [e["name"] for e in batch]
        write_s = time.perf_counter() - began
        time.sleep(1.0)  # the worker is embedding: a batch is claimed and in flight at the kill
        pending_at_kill = healthz(base)["embedding_backlog"]["pending"]
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        print(
            f"- {len(names) * OBSERVATIONS:,} observations acknowledged in {write_s:.1f} s; "
            f"{pending_at_kill:,} texts pending at the SIGKILL"
        )
        restarted, base = start_daphne(servers, "daphne-restart")
        try:
            began = time.perf_counter()
            while healthz(base)["embedding_backlog"]["pending"]:
                time.sleep(0.1)
            drained_s = time.perf_counter() - began
        finally:
            stop(restarted)
        with sqlite3.connect(servers.data_dir / "bench.sqlite3") as conn:
            stored = {row[0] for row in conn.execute("SELECT name FROM graph_entity")}
            (observations,) = conn.execute("SELECT count(*) FROM graph_observation").fetchone()
            (unembedded,) = conn.execute(
                "SELECT count(*) FROM graph_observation o WHERE NOT EXISTS (SELECT 1 FROM vectors_embedding v "
                "WHERE v.owner_kind = 'observation' AND v.owner_id = o.id)"
            ).fetchone()
            (pending,) = conn.execute("SELECT count(*) FROM vectors_pending").fetchone()
        conn.close()
        lost = len(set(names) - stored) * OBSERVATIONS + (len(names) * OBSERVATIONS - observations)
        print(
            f"- after the restart: the backlog drained in {drained_s:.1f} s (including the killed process's "
            f"lease); lost {lost}, unembedded {unembedded}, still pending {pending}"
        )
    finally:
        servers.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sections = set(args.only.split(","))
    print(f"# bench.pipeline ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average {os.getloadavg()})")
    if "official" in sections:
        asyncio.run(official_section(args))
    if "ryw" in sections:
        asyncio.run(ryw_section(args))
    if "drain" in sections:
        drain_section(args)
    if "crash" in sections:
        crash_section(args)
    print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
