"""Load test: many concurrent clients against one or two real server processes, then a check that
every acknowledged write is in the database.

What it does:

1. Builds a database with `--entities` entities (default 100,000; 5 observations each and a random
   tree of relations, the generator of bench.graph) in namespace `bench:load`, in-process through
   `graph.services` with embedding on write off (the graph is what the reads hit; embedding 500k
   observations would take an hour). `--db PATH` keeps the file and reuses it on the next run when
   it already holds the graph; the memories of earlier runs are deleted first, so runs compare. A
   new API key (`bench:*=write`) is made for every run.
2. Measures the client's own ceiling: the same clients against a trivial HTTP server (a
   subprocess answering `{}` to everything), so the figures below are known not to be the
   client's limit.
3. Starts `--processes` server processes (daphne by default, `--server uvicorn[-fast]` to compare;
   with 2 processes, or with `--redis`, the Redis channel layer and cache at `--redis-url`, default
   redis://127.0.0.1:6379/7) and runs `--clients` concurrent clients (default 64) for a warm-up
   of `--warmup` seconds, then `--seconds` seconds (default 30) measured. Each client holds one
   keep-alive connection per server process and sends each request to the next process in turn
   (client-side round robin).
4. Prints throughput (per kind and total), median and p99 latency, the error count (with when
   each happened, and the servers' log when there were any), the CPU time each server process
   and the client used in the measured window (server CPU per request is the figure a busy
   machine distorts least), then stops the servers and looks up every acknowledged write by exact
   match in the SQLite file (memory id and text; entity name and observation body): "lost" is an
   acknowledged write that is not there.

The mix (`--mix mixed`, default): MCP tool calls over Streamable HTTP (stateless 2026-07-28
requests by default, `--mcp-mode session` for initialize'd sessions) — search_nodes, open_nodes,
get_entity, add_observations, create_entities — and REST memory writes and searches
(`/v1/memory/write`, `/v1/memory/search`). `--mix reads` (or `--reads-only`): the three MCP read
tools only, the "tool calls per second for reads" figure; search_nodes queries alternate between a
unique code, a name prefix and a word found in a third of the entities (`--search selective`: the
first two only). `--only KIND[,KIND]` sends only those kinds (one tool's cost).

The client is a minimal asyncio HTTP/1.1 client (keep-alive, Content-Length and chunked bodies) in
this one process: no httpx, no JSON parsing of read answers (a read is correct when the answer is
HTTP 200 with `"isError":false`). Every latency is wall time on the client around one request.

On PostgreSQL (`--database-url postgres://...`) the graph is built in that database, the servers
use it and the acknowledged writes are looked up there. `--nodes N` (with `--database-url`) runs
the servers as N nodes on hosts of their own (network namespaces joined by veth, PostgreSQL and
Redis reached over each node's link: bench/hosts.py), one daphne process per node, the clients
spreading their requests over the nodes' addresses; it needs root, socat and nginx.

Run: `python -m bench.load [--db /tmp/load.sqlite3] [--processes 1|2] [--seconds 30] [--reads-only]`
(`make bench BENCH=load BENCH_ARGS="..."`). Not a test: it prints figures, the targets are checked
in the last lines (zero errors, zero lost writes, >= 500 read tool calls/s with one process).
`--profile DIR` runs each server under a sampling profiler (all threads) and writes DIR/<server>-<n>.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import stats
from bench.graph import COMMON_WORDS, TOPICS, entity_name, graph_batches, unique_code
from bench.setup import database_engine, settle

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "bench:load"
MEMORY_NAMESPACE = "bench:load-memories"
REDIS_URL = "redis://127.0.0.1:6379/7"
MODERN_VERSION = "2026-07-28"
HANDSHAKE_VERSION = "2025-11-25"
READS_TARGET = 500  # read tool calls per second with one process (the target)
SERVERS = ("daphne", "uvicorn", "uvicorn-fast")

# Relative weights of each kind of request.
MIXES: dict[str, dict[str, int]] = {
    "mixed": {
        "mcp search_nodes": 22,
        "mcp open_nodes": 18,
        "mcp get_entity": 18,
        "mcp add_observations": 8,
        "mcp create_entities": 4,
        "rest memory write": 10,
        "rest memory search": 20,
    },
    "reads": {"mcp search_nodes": 1, "mcp open_nodes": 1, "mcp get_entity": 1},
    # Against the trivial server: the client's own cost per request.
    "trivial": {"trivial": 1},
}
WRITES = {"mcp add_observations", "mcp create_entities", "rest memory write"}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="SQLite file to build or reuse (kept); default: a temporary file")
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--processes", type=int, choices=(1, 2), default=1)
    parser.add_argument("--database-url", help="postgres://... : build in and serve from PostgreSQL instead of --db")
    parser.add_argument("--nodes", type=int, choices=(1, 2, 3), help="N nodes on hosts of their own (PostgreSQL only)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds before")
    parser.add_argument("--mix", choices=("mixed", "reads"), default="mixed")
    parser.add_argument("--reads-only", action="store_true", help="the same as --mix reads")
    parser.add_argument(
        "--only", help="comma-separated kinds to send instead of the mix, e.g. 'mcp get_entity,mcp open_nodes'"
    )
    parser.add_argument(
        "--search",
        choices=("all", "selective"),
        default="all",
        help="search_nodes queries: a unique code, a name prefix and a word found in a third of the entities "
        "(all), or the first two only (selective)",
    )
    parser.add_argument("--mcp-mode", choices=("stateless", "session"), default="stateless")
    parser.add_argument("--server", choices=SERVERS, default="daphne", help="uvicorn-fast: uvloop + httptools")
    parser.add_argument(
        "--redis-url", default=REDIS_URL, help="the channel layer and cache with --processes 2 or --redis"
    )
    parser.add_argument("--redis", action="store_true", help="use Redis with one process too (always with two)")
    parser.add_argument("--skip-ceiling", action="store_true", help="do not measure the client's ceiling")
    parser.add_argument("--profile", type=Path, help="directory for a sampling profile of each server process")
    parser.add_argument("--trivial-server", type=int, help=argparse.SUPPRESS)  # internal: serve `{}` on this port
    args = parser.parse_args(argv)
    if args.reads_only:
        args.mix = "reads"
    if args.only:
        known = {kind for mix in MIXES.values() for kind in mix}
        kinds = [kind.strip() for kind in args.only.split(",") if kind.strip()]
        if not kinds or set(kinds) - known:
            parser.error(f"--only: choose among {', '.join(sorted(known))}")
        MIXES["only"] = dict.fromkeys(kinds, 1)
        args.mix = "only"
    if args.nodes and not args.database_url:
        parser.error("--nodes needs --database-url: nodes share the store through PostgreSQL")
    if args.entities < 100 or args.clients < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--entities >= 100, --clients >= 1, --seconds > 0, --warmup >= 0")
    return args


# --- the database ----------------------------------------------------------------------------------


def prepare_database(db_path: Path, entities: int, database_url: str | None = None) -> str:
    """Build (or reuse) the graph in `db_path` (or the PostgreSQL database at `database_url`);
    return a new API key's secret."""
    if database_url:
        os.environ["MEMORYHUB_DATABASE_URL"] = database_url
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "memoryhub.settings",
            "MEMORYHUB_DB_PATH": str(db_path),
            "MEMORYHUB_DATA_DIR": str(db_path.parent),
            # This process only builds the graph: nothing to embed, no index to warm.
            "MEMORYHUB_EMBED_ON_WRITE": "0",
            "MEMORYHUB_VECTOR_WARMUP": "0",
        }
    )
    os.environ.pop("MEMORYHUB_TEST_DB_PATH", None)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from access import services as access
    from graph import services

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM graph_entity e JOIN graph_namespace n ON n.id = e.namespace_id WHERE n.name = %s",
            [NAMESPACE],
        )
        existing = cursor.fetchone()[0]
    if existing == 0:
        started = time.perf_counter()
        entity_batches, _, relation_batches = graph_batches(entities, random.Random(42))
        for number, batch in enumerate(entity_batches, 1):
            services.create_entities(namespace=NAMESPACE, entities=batch)
            if number % 10 == 0 or number == len(entity_batches):
                log(f"  entities: {number * 1000:,} ({time.perf_counter() - started:.0f} s)")
        for relations in relation_batches:
            services.create_relations(namespace=NAMESPACE, relations=relations)
        log(f"built {entities:,} entities and {entities - 1:,} relations in {time.perf_counter() - started:.0f} s")
    elif existing < entities:
        raise SystemExit(f"{db_path} holds {existing:,} entities in {NAMESPACE}, fewer than --entities {entities:,}")
    else:
        log(f"reusing {db_path}: {existing:,} entities in {NAMESPACE}")
    # Every run starts with no memories (earlier runs' writes would make memory search slower from
    # run to run); the graph keeps what earlier runs added (a few thousand observations on 500k).
    cleared = services.clear_memories(namespace=MEMORY_NAMESPACE)
    if cleared:
        log(f"deleted {cleared:,} memories of earlier runs from {MEMORY_NAMESPACE}")
    settle()
    user, _ = get_user_model().objects.get_or_create(username="bench-load")
    secret = access.api_key_create(
        owner=user,
        name=f"load {secrets.token_hex(3)}",
        grants=[("bench:*", "write")],
        default_namespace=NAMESPACE,
        source="command",
    ).secret
    connection.close()
    return secret


# --- servers ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# A sampling profiler for a server process: every 2 ms it records the stack of each thread and, at
# exit, writes per thread how often it was busy (not waiting in select or for work) and the most
# frequent functions of the busy samples (self and inclusive). Unlike cProfile it sees every thread
# (Django views and MCP tools run in asgiref's worker thread) and barely changes the timing. A busy
# sample may be a thread waiting for the GIL: the figures say where threads are, not who runs.
PROFILED_SERVER = r"""
import atexit, collections, os, runpy, sys, threading

out, argv = sys.argv[1], sys.argv[2:]
# Leaf frames of a thread that waits for work (the event loop's select, a pool worker's queue).
IDLE = ("selectors.py:select", "threading.py:wait", "thread.py:_worker", "queue.py:get")
busy = collections.defaultdict(collections.Counter)  # thread name -> leaf function -> samples
inclusive = collections.defaultdict(collections.Counter)
totals = collections.Counter()
idle = collections.Counter()
stop = threading.Event()


def where(frame):
    code = frame.f_code
    name = code.co_filename
    name = name.split("site-packages/")[-1] if "site-packages/" in name else os.path.relpath(name) if name.startswith(os.getcwd()) else os.path.basename(name)
    return f"{name}:{code.co_name}"


def sample():
    me = threading.get_ident()
    while not stop.wait(0.002):
        names = {thread.ident: thread.name for thread in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            if ident == me:
                continue
            thread = names.get(ident, str(ident))
            thread = "worker" if thread.startswith(("ThreadPoolExecutor", "asyncio_")) else thread
            stack = []
            while frame is not None:
                stack.append(where(frame))
                frame = frame.f_back
            totals[thread] += 1
            if stack[0].endswith(IDLE):
                idle[thread] += 1
                continue
            busy[thread][stack[0]] += 1
            for name in set(stack):
                inclusive[thread][name] += 1


def dump():
    stop.set()
    with open(out, "w") as handle:
        for thread, total in totals.most_common():
            working = total - idle[thread]
            if not working:
                continue
            handle.write(f"## thread {thread}: busy in {100 * working / total:.1f}% of {total} samples\n")
            handle.write("### self (% of busy samples)\n")
            for name, count in busy[thread].most_common(40):
                handle.write(f"{100 * count / working:6.2f}%  {name}\n")
            handle.write("### inclusive\n")
            for name, count in inclusive[thread].most_common(80):
                handle.write(f"{100 * count / working:6.2f}%  {name}\n")
            handle.write("\n")


threading.Thread(target=sample, name="profiler", daemon=True).start()
atexit.register(dump)
sys.argv = argv
runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
"""


def server_command(kind: str, port: int) -> list[str]:
    if kind == "daphne":
        return ["daphne", "-b", "127.0.0.1", "-p", str(port), "memoryhub.asgi:application"]
    fast = kind == "uvicorn-fast"
    return [
        "uvicorn",
        "memoryhub.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",  # Channels' ProtocolTypeRouter has no lifespan route
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "uvloop" if fast else "asyncio",
        "--http",
        "httptools" if fast else "h11",
    ]


@dataclass
class Server:
    kind: str
    port: int
    process: subprocess.Popen[Any]
    log_path: Path
    host: str = "127.0.0.1"


def start_servers(args: argparse.Namespace, env: dict[str, str], work: Path) -> list[Server]:
    started: list[Server] = []
    for number in range(args.processes):
        port = free_port()
        module_args = server_command(args.server, port)
        argv = [sys.executable, "-m", *module_args]
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            script = work / "profiled_server.py"
            script.write_text(PROFILED_SERVER)
            target = (args.profile / f"{args.server}-{args.mix}-p{args.processes}-{number}.txt").resolve()
            argv = [sys.executable, str(script), str(target), *module_args]
        log_path = work / f"server-{number}.log"
        with open(log_path, "wb") as errors:
            process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=errors, stderr=errors)
        started.append(Server(args.server, port, process, log_path))
    for server in started:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://{server.host}:{server.port}/healthz", timeout=5):
                    break
            except OSError:
                if server.process.poll() is not None or time.monotonic() > deadline:
                    stop_servers(started)
                    raise SystemExit(f"{server.kind} did not start:\n{server.log_path.read_text()[-3000:]}") from None
                time.sleep(0.2)
    return started


@contextlib.contextmanager
def started_nodes(args: argparse.Namespace, env: dict[str, str], work: Path) -> Iterator[list[Server]]:
    """One daphne process per node, each on a host of its own (bench/hosts.py), sharing the
    PostgreSQL database and Redis over its link."""
    from bench.hosts import NODE_PORT, Node, hosts, node_env

    database = args.database_url.rsplit("/", 1)[1]
    redis_db = int(args.redis_url.rsplit("/", 1)[1] or 0)
    env = {"MEMORYHUB_SECRET_KEY": secrets.token_urlsafe(50), **env}
    with hosts(args.nodes) as made:
        nodes = []
        for host in made:
            data_dir = work / f"node{host.index}"
            extra = {k: v for k, v in env.items() if k.startswith("MEMORYHUB_") and not k.endswith(("_URL", "_DIR"))}
            nodes.append(Node(host, data_dir, node_env(host, data_dir, database=database, redis_db=redis_db, **extra)))
        try:
            for node in nodes:
                node.start()
            servers = []
            for node in nodes:
                assert node.process is not None
                servers.append(
                    Server("daphne", NODE_PORT, node.process, node.data_dir / "daphne.log", host=node.host.address)
                )
            yield servers
        finally:
            for node in nodes:
                node.stop()


def stop_servers(servers: list[Server]) -> None:
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


# --- a minimal HTTP/1.1 client ---------------------------------------------------------------------


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection: one request at a time, reconnects after a failure."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, head: bytes, body: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        """Send `head` (request line and headers, without Content-Length and the blank line) and
        `body`; return (status, lower-cased headers, body)."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        try:
            self.writer.write(b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body))
            status_line = await self.reader.readline()
            if not status_line:
                raise HttpError("connection closed by the server")
            status = int(status_line.split(b" ", 2)[1])
            headers: dict[bytes, bytes] = {}
            while True:
                line = await self.reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            if b"content-length" in headers:
                data = await self.reader.readexactly(int(headers[b"content-length"]))
            elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                parts = []
                while True:
                    size = int((await self.reader.readline()).split(b";")[0], 16)
                    if size == 0:
                        await self.reader.readline()  # the blank line after the last chunk (no trailers)
                        break
                    parts.append(await self.reader.readexactly(size))
                    await self.reader.readline()
                data = b"".join(parts)
            else:
                data = await self.reader.read()  # until close
                headers[b"connection"] = b"close"
            if headers.get(b"connection", b"").lower() == b"close":
                self.close()
            return status, headers, data
        except BaseException:
            self.close()
            raise


# --- the workload ----------------------------------------------------------------------------------


@dataclass
class Results:
    latencies: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # ns, measured window
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    error_samples: list[str] = field(default_factory=list)
    # Acknowledged writes: ("memory", id, text) and ("observation", entity, body).
    acknowledged: list[tuple[str, Any, str]] = field(default_factory=list)
    measured_seconds: float = 0.0
    # CPU seconds in the measured window: each server process, then the client (last).
    cpu: list[float] = field(default_factory=list)

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{kind}: {detail[:300]}")


@dataclass
class Request:
    kind: str
    head: bytes
    body: bytes
    # The answer's check: raises HttpError when it is wrong; may record an acknowledged write.
    check: Callable[[int, bytes], None]


class Workload:
    def __init__(self, args: argparse.Namespace, key: str, results: Results, run: str) -> None:
        self.args = args
        self.entities = args.entities
        self.key = key
        self.results = results
        self.run = run
        self.weights = MIXES[args.mix]

    def mcp_head(self, tool: str, session: str | None) -> bytes:
        lines = [
            "POST /mcp HTTP/1.1",
            "Host: 127.0.0.1",
            f"X-API-Key: {self.key}",
            "Content-Type: application/json",
            "Accept: application/json, text/event-stream",
        ]
        if session is None:
            lines += [f"MCP-Protocol-Version: {MODERN_VERSION}", "Mcp-Method: tools/call", f"Mcp-Name: {tool}"]
        else:
            lines += [f"MCP-Protocol-Version: {HANDSHAKE_VERSION}", f"MCP-Session-Id: {session}"]
        return ("\r\n".join(lines) + "\r\n").encode()

    def mcp_body(self, tool: str, arguments: dict[str, Any], session: str | None) -> bytes:
        params: dict[str, Any] = {"name": tool, "arguments": arguments}
        if session is None:
            params["_meta"] = {
                "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
        return json.dumps(message, separators=(",", ":")).encode()

    def rest_head(self, path: str) -> bytes:
        return (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {self.key}\r\nContent-Type: application/json\r\n"
        ).encode()

    def make(self, kind: str, rng: random.Random, client: int, k: int, session: str | None) -> Request:
        name = entity_name(rng.randrange(self.entities))
        if kind.startswith("mcp "):
            tool = kind[4:]
            ack: Callable[[dict[str, Any]], None] | None = None
            if tool == "search_nodes":
                choice = k % (2 if self.args.search == "selective" else 3)
                query = (
                    unique_code(rng.randrange(self.entities))
                    if choice == 0
                    else name
                    if choice == 1
                    else COMMON_WORDS[k % len(COMMON_WORDS)]
                )
                arguments: dict[str, Any] = {"query": query, "limit": 10}
            elif tool == "open_nodes":
                arguments = {"names": [entity_name(rng.randrange(self.entities)) for _ in range(1 + k % 5)]}
            elif tool == "get_entity":
                arguments = {"name": name}
            elif tool == "add_observations":
                content = f"load {self.run} c{client} n{k}: {rng.choice(TOPICS)} checked"
                arguments = {"observations": [{"entityName": name, "contents": [content]}]}

                def ack(result: dict[str, Any], name: str = name, content: str = content) -> None:
                    added = result["structuredContent"]["results"][0]["addedObservations"]
                    if content not in added:
                        raise HttpError(f"add_observations did not add {content!r}: {added}")
                    self.results.acknowledged.append(("observation", name, content))

            elif tool == "create_entities":
                new = f"load-{self.run}-c{client}-n{k}"
                body = f"created by load run {self.run}"
                arguments = {"entities": [{"name": new, "entityType": "loadtest", "observations": [body]}]}

                def ack(result: dict[str, Any], new: str = new, body: str = body) -> None:
                    created = [entity["name"] for entity in result["structuredContent"]["entities"]]
                    if created != [new]:
                        raise HttpError(f"create_entities did not create {new!r}: {result['structuredContent']}")
                    self.results.acknowledged.append(("observation", new, body))

            else:
                raise ValueError(kind)
            return Request(
                kind, self.mcp_head(tool, session), self.mcp_body(tool, arguments, session), self.mcp_check(ack)
            )
        if kind == "rest memory write":
            text = f"load {self.run} c{client} n{k}: the {rng.choice(TOPICS)} service was {rng.choice(COMMON_WORDS)}"
            body = json.dumps({"namespace": MEMORY_NAMESPACE, "text": text}).encode()

            def check_write(status: int, data: bytes, text: str = text) -> None:
                if status != 200:
                    raise HttpError(f"HTTP {status}: {data[:300]!r}")
                self.results.acknowledged.append(("memory", json.loads(data)["id"], text))

            return Request(kind, self.rest_head("/v1/memory/write"), body, check_write)
        if kind == "rest memory search":
            query = f"{rng.choice(TOPICS)} {rng.choice(COMMON_WORDS)}"
            body = json.dumps({"namespace": MEMORY_NAMESPACE, "query": query, "topK": 5}).encode()
            return Request(kind, self.rest_head("/v1/memory/search"), body, self.plain_check)
        if kind == "trivial":
            return Request(kind, b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"{}", self.plain_check)
        raise ValueError(kind)

    @staticmethod
    def plain_check(status: int, data: bytes) -> None:
        if status != 200:
            raise HttpError(f"HTTP {status}: {data[:300]!r}")

    @staticmethod
    def mcp_check(ack: Callable[[dict[str, Any]], None] | None) -> Callable[[int, bytes], None]:
        def check(status: int, data: bytes) -> None:
            if status != 200:
                raise HttpError(f"HTTP {status}: {data[:300]!r}")
            if ack is None:
                # A read: no JSON parsing on the client (it would cost more than the request's
                # framing); the result's own flag, unescaped, appears only at the result level.
                if b'"isError":false' not in data:
                    raise HttpError(f"tool error: {data[:300]!r}")
                return
            message = json.loads(data)
            result = message.get("result")
            if result is None or result.get("isError"):
                raise HttpError(f"tool error: {data[:300]!r}")
            ack(result)

        return check


async def open_session(connection: Connection, key: str) -> str:
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {"protocolVersion": HANDSHAKE_VERSION, "capabilities": {}, "clientInfo": {"name": "bench.load"}},
        }
    ).encode()
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\n"
        "Accept: application/json, text/event-stream\r\n"
    ).encode()
    status, headers, data = await connection.request(head, body)
    if status != 200:
        raise HttpError(f"initialize: HTTP {status} {data[:200]!r}")
    session = headers[b"mcp-session-id"].decode()
    initialized = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
    head += f"MCP-Session-Id: {session}\r\nMCP-Protocol-Version: {HANDSHAKE_VERSION}\r\n".encode()
    await connection.request(head, initialized)
    return session


async def client_loop(
    number: int, ports: list[tuple[str, int]], workload: Workload, start: float, end: float, results: Results
) -> None:
    rng = random.Random(f"{workload.run}:{number}")
    kinds = list(workload.weights)
    weights = [workload.weights[kind] for kind in kinds]
    connections = [Connection(port, host) for host, port in ports]
    sessions: list[str | None] = [None] * len(ports)
    if workload.args.mcp_mode == "session" and workload.args.mix != "trivial":
        for index, connection in enumerate(connections):
            sessions[index] = await open_session(connection, workload.key)
    clock = time.perf_counter
    k = 0
    try:
        while clock() < end:
            turn = k % len(connections)  # client-side round robin over the server processes
            request = workload.make(rng.choices(kinds, weights)[0], rng, number, k, sessions[turn])
            k += 1
            began = clock()
            try:
                status, _, data = await asyncio.wait_for(connections[turn].request(request.head, request.body), 60)
                request.check(status, data)
            except (TimeoutError, OSError, HttpError, asyncio.IncompleteReadError, ValueError, KeyError) as e:
                # When, from the start of the measured window (negative: during the warm-up).
                detail = f"at {began - start:+.1f} s, after {clock() - began:.1f} s: {type(e).__name__}: {e}"
                results.error(request.kind if began >= start else f"{request.kind} (warm-up)", detail)
                continue
            finished = clock()
            if began >= start and finished <= end:
                results.latencies[request.kind].append(int((finished - began) * 1e9))
    finally:
        for connection in connections:
            connection.close()


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (None: this one)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(
    ports: list[tuple[str, int]],
    workload: Workload,
    results: Results,
    warmup: float,
    seconds: float,
    pids: Sequence[int] = (),
) -> None:
    start = time.perf_counter() + warmup
    end = start + seconds
    results.measured_seconds = seconds

    async def account() -> None:
        # CPU used in the measured window by each server process and by this client: what a
        # request costs, whatever else the machine was doing.
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        before = [cpu_seconds(pid) for pid in (*pids, None)]
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        results.cpu = [cpu_seconds(pid) - used for pid, used in zip((*pids, None), before, strict=True)]

    await asyncio.gather(
        account(), *(client_loop(n, ports, workload, start, end, results) for n in range(workload.args.clients))
    )


# --- the trivial server (the client's ceiling) -----------------------------------------------------


async def trivial_server(port: int) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = 0
                line = await reader.readline()
                if not line:
                    return
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                writer.write(answer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def measure_ceiling(args: argparse.Namespace) -> float:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.load", "--trivial-server", str(port)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        results = Results()
        trivial = argparse.Namespace(**{**vars(args), "mix": "trivial", "mcp_mode": "stateless"})
        workload = Workload(trivial, "", results, "ceiling")
        asyncio.run(drive([("127.0.0.1", port)], workload, results, 1.0, 5.0))
        done = sum(len(v) for v in results.latencies.values())
        return done / results.measured_seconds
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- verification ----------------------------------------------------------------------------------


def verify(db_path: Path, acknowledged: list[tuple[str, Any, str]], database_url: str | None = None) -> list[str]:
    """Look up every acknowledged write by exact match; return the missing ones."""
    missing = []
    if database_url:
        import psycopg

        # psycopg's own connection, with sqlite3's `?` placeholders written as its `%s`.
        opened: Any = psycopg.connect(database_url.replace("postgres://", "postgresql://", 1))

        class Placeholders:
            def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
                return opened.execute(sql.replace("?", "%s"), params)

            def close(self) -> None:
                opened.close()

        connection: Any = Placeholders()
    else:
        connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    with contextlib.closing(connection) as db:
        ns = dict(db.execute("SELECT name, id FROM graph_namespace").fetchall())
        for kind, key, text in acknowledged:
            if kind == "memory":
                owner = int(str(key).removeprefix("mem_"))
                row = db.execute(
                    "SELECT 1 FROM graph_observation WHERE id = ? AND body = ? AND namespace_id = ? AND entity_id IS NULL",
                    (owner, text, ns.get(MEMORY_NAMESPACE)),
                ).fetchone()
            else:
                row = db.execute(
                    "SELECT 1 FROM graph_observation o WHERE o.entity_id = "
                    "(SELECT id FROM graph_entity WHERE namespace_id = ? AND name = ?) AND o.body = ?",
                    (ns.get(NAMESPACE), key, text),
                ).fetchone()
            if row is None:
                missing.append(f"{kind} {key}: {text}")
    return missing


# --- report ----------------------------------------------------------------------------------------


def report(results: Results, title: str) -> dict[str, float]:
    seconds = results.measured_seconds
    rows = []
    every: list[int] = []
    for kind, samples in sorted(results.latencies.items()):
        every.extend(samples)
        rows.append((kind, len(samples), samples))
    print(f"\n### {title}\n")
    print("| kind | requests | per second | median ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, count, samples in rows:
        print(
            f"| {kind} | {count:,} | {count / seconds:,.1f} | {stats.median(samples) / 1e6:.1f} | "
            f"{p99(samples) / 1e6:.1f} | {results.errors.get(kind, 0)} |"
        )
    total_errors = sum(results.errors.values())
    reads = sum(len(s) for k, s in results.latencies.items() if k.startswith("mcp ") and k not in WRITES)
    summary = {
        "throughput": len(every) / seconds,
        "reads_per_second": reads / seconds,
        "median_ms": stats.median(every) / 1e6 if every else float("nan"),
        "p99_ms": p99(every) / 1e6 if every else float("nan"),
        "errors": float(total_errors),
    }
    print(
        f"| **total** | {len(every):,} | {summary['throughput']:,.1f} | {summary['median_ms']:.1f} | "
        f"{summary['p99_ms']:.1f} | {total_errors} |"
    )
    if results.cpu and every:
        servers, client = results.cpu[:-1], results.cpu[-1]
        summary["server_cpu_ms_per_request"] = 1000 * sum(servers) / len(every)
        print(
            "\nCPU in the measured window: "
            + ", ".join(
                f"server {n} {used:.1f} s ({100 * used / seconds:.0f}% of a core)" for n, used in enumerate(servers)
            )
            + f"; client {client:.1f} s ({100 * client / seconds:.0f}%); "
            f"server CPU per request {summary['server_cpu_ms_per_request']:.2f} ms"
        )
    if results.error_samples:
        print("\nerrors (first ones):\n" + "\n".join(f"- {line}" for line in results.error_samples))
    return summary


def p99(samples: Sequence[int]) -> float:
    ordered = sorted(samples)
    return float(ordered[max(0, -(-99 * len(ordered) // 100) - 1)])


# --- main ------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.trivial_server:
        asyncio.run(trivial_server(args.trivial_server))
        return
    if args.database_url:
        os.environ["MEMORYHUB_DATABASE_URL"] = args.database_url
    server_env = {k: v for k, v in os.environ.items() if k != "MEMORYHUB_TEST_DB_PATH"}
    work = Path(tempfile.mkdtemp(prefix="memoryhub-bench-load-"))
    db_path = (args.db or work / "load.sqlite3").resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    servers: list[Server] = []
    stack = contextlib.ExitStack()
    try:
        print("# MemoryHub load test\n")
        print(
            f"Python {platform.python_version()}, {database_engine()}, {os.cpu_count()} CPUs; "
            f"{args.entities:,} entities; {args.clients} clients; {args.processes} {args.server} process(es); "
            f"mix {args.mix}; MCP {args.mcp_mode}; {args.warmup:g} s warm-up + {args.seconds:g} s measured; "
            f"load average at the start {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        log(f"database {db_path}")
        key = prepare_database(db_path, args.entities, args.database_url)
        if not args.skip_ceiling:
            ceiling = measure_ceiling(args)
            print(f"\nclient ceiling ({args.clients} clients, trivial HTTP server): {ceiling:,.0f} requests/s")
        # The servers' stdout (daphne's access log, a line per request) goes to a file: block-buffered
        # as under a process manager. Unbuffered (PYTHONUNBUFFERED, or a terminal with `make run`)
        # it costs a write per request, ~15% of a read's server time on this machine.
        server_env.pop("PYTHONUNBUFFERED", None)
        server_env.update(
            {
                "DJANGO_SETTINGS_MODULE": "memoryhub.settings",
                "MEMORYHUB_DB_PATH": str(db_path),
                "MEMORYHUB_DATA_DIR": str(db_path.parent),
                "MEMORYHUB_RATE_LIMIT_PER_MINUTE": "0",
            }
        )
        if args.database_url:
            server_env["MEMORYHUB_DATABASE_URL"] = args.database_url
        if args.processes > 1 or args.redis or args.nodes:
            server_env["MEMORYHUB_REDIS_URL"] = args.redis_url
        if args.nodes:
            servers = stack.enter_context(started_nodes(args, server_env, work))
        else:
            servers = start_servers(args, server_env, work)
        log(f"{len(servers)} {args.server} server(s) at {', '.join(f'{s.host}:{s.port}' for s in servers)}")
        results = Results()
        run = secrets.token_hex(3)
        workload = Workload(args, key, results, run)
        pids = [s.process.pid for s in servers]
        endpoints = [(s.host, s.port) for s in servers]
        asyncio.run(drive(endpoints, workload, results, args.warmup, args.seconds, pids))
        shape = f"{args.nodes} node(s)" if args.nodes else f"{args.processes} x {args.server}"
        summary = report(results, f"{shape}, mix {args.mix}, {args.clients} clients")
        stop_servers(servers)
        if summary["errors"]:
            for number, server in enumerate(servers):
                # Without daphne's access log lines ("127.0.0.1:port - - [date] ...").
                lines = [
                    line
                    for line in server.log_path.read_text(errors="replace").splitlines()
                    if not re.match(r"\S+:\d+ - - \[", line)
                ]
                print(f"\nserver {number} log (last lines but access lines):\n" + "\n".join(lines[-80:]))
        servers = []
        missing = verify(db_path, results.acknowledged, args.database_url)
        print(f"\nacknowledged writes: {len(results.acknowledged):,}; lost (not found by exact lookup): {len(missing)}")
        for line in missing[:10]:
            print(f"- lost: {line}")
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average at the end {load} (other processes on the machine skew the figures)")
        checks = [
            ("zero errors", summary["errors"] == 0),
            ("zero lost writes", not missing),
        ]
        if args.mix == "reads" and args.processes == 1:
            checks.append(
                (f">= {READS_TARGET} read tool calls/s (one process)", summary["reads_per_second"] >= READS_TARGET)
            )
        print("\n" + "\n".join(f"- {name}: {'ok' if passed else 'MISSED'}" for name, passed in checks))
    finally:
        stop_servers(servers)
        stack.close()
        if args.db is None:
            shutil.rmtree(work, ignore_errors=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
