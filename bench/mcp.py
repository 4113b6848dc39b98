"""Latency of the MCP endpoint as a client sees it, over stdio and over Streamable HTTP.

What it measures: for each graph size N it makes a fresh temporary database (migrated, with one API
key made by `manage.py create_api_key --user bench --grant '*=write' --default-namespace
bench:main`), starts the real servers on it (daphne on a free loopback port serving `/mcp`, and
`manage.py mcp_stdio --namespace bench:main` subprocesses), and fills namespace `bench:main`
THROUGH MCP: N entities (5 observations each, as in bench.graph) with create_entities and N-1
relations forming a random tree with create_relations, in batches of 1,000. Then it calls each
tool `--calls` times (after `--warmup` untimed calls; fewer when a tool is slow, see `--budget`),
with the same arguments on every transport, and prints the median and 95th percentile per tool:

- stdio, official `mcp` SDK client (mode "legacy": initialize handshake);
- stdio, a minimal JSON-RPC line client (write one line, read one line): the server's own cost
  plus the pipe, without the SDK (its pydantic parsing and output-schema validation);
- HTTP, official SDK client, mode "legacy" (initialize, Mcp-Session-Id session);
- HTTP, official SDK client, mode "auto" (2026-07-28 stateless requests when the server offers them);
- HTTP, a minimal client on one keep-alive connection (http.client, JSON answers): once with an
  initialize'd session, once with stateless 2026-07-28 requests; again without the SDK.

The graph is filled by the raw stdio client (`--populate-via` to choose another). Every latency is
wall time around one call on the client side (time.perf_counter_ns), in ms. All calls are
sequential; the servers share the machine's CPUs with this client (and with whatever else runs:
the header and footer print the load average). A closing summary compares stdio at 10k entities
with the targets (open_nodes and search_nodes < 2 ms median, add_observations < 3 ms) and the
growth of each median from the smallest to the largest size.

Run: `make bench BENCH=mcp BENCH_ARGS="--sizes 1000,10000"` or `python -m bench.mcp --quick`
(progress goes to stderr; all three sizes take about 10 minutes on 2 CPUs). `--profile DIR` runs
the raw stdio server under cProfile and leaves DIR/stdio-<N>.loop.prof and DIR/stdio-<N>.work.prof
(`python -m pstats`; see PROFILED_STDIO). Server processes and temporary directories are removed
at the end, also on errors and Ctrl-C.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from random import Random
from typing import IO, Any, Protocol

from bench import stats
from bench.graph import (
    ADJECTIVES,
    COMMON_WORDS,
    OBSERVATIONS_PER_ENTITY,
    SEED,
    TOPICS,
    depth_of,
    entity_name,
    graph_batches,
    print_table,
    unique_code,
)
from bench.setup import database_engine

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "bench:main"
BATCH = 1000  # items per create_entities / create_relations call (the default request limit)
STDIO_COMMAND = ROOT / "mcp_endpoint" / "management" / "commands" / "mcp_stdio.py"
HANDSHAKE_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"

TRANSPORTS = {
    "stdio": "stdio SDK (legacy)",
    "stdio-raw": "stdio raw JSON-RPC",
    "http-legacy": "HTTP SDK (legacy)",
    "http-auto": "HTTP SDK (auto)",
    "http-raw": "HTTP raw (session)",
    "http-raw-2026": "HTTP raw (2026-07-28)",
}
# Targets checked in the summary (median ms over stdio at TARGET_SIZE entities).
TARGET_SIZE = 10_000
TARGETS = {
    "open_nodes (1 name)": 2.0,
    "open_nodes (5 names)": 2.0,
    "search_nodes selective": 2.0,
    "search_nodes common word": 2.0,
    "add_observations (1 obs)": 3.0,
}
FLAT_RATIO = 1.5  # a median that grows less than this from the smallest to the largest size is "flat"


class BenchError(RuntimeError):
    pass


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.mcp", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated entity counts")
    parser.add_argument("--quick", action="store_true", help="1,000 entities only (overrides --sizes)")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per tool (fewer for slow tools)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed calls per tool before timing")
    parser.add_argument(
        "--budget",
        type=float,
        default=8.0,
        help="seconds per tool and transport: a tool whose warm-up median says it would take longer gets fewer "
        "timed calls (at least 20)",
    )
    parser.add_argument(
        "--transports",
        default=",".join(TRANSPORTS),
        help=f"comma-separated subset of {', '.join(TRANSPORTS)}",
    )
    parser.add_argument(
        "--populate-via",
        choices=("stdio-raw", "http-raw", "http-legacy"),
        default=None,
        help="client that fills the graph (default: stdio-raw when mcp_stdio exists, else http-raw)",
    )
    parser.add_argument(
        "--wait-for-stdio",
        type=float,
        default=0,
        help="minutes to wait for the mcp_stdio command to appear before giving up on the stdio transports",
    )
    parser.add_argument("--stdio-key", action="store_true", help="pass --key to mcp_stdio (default: local operator)")
    parser.add_argument("--profile", type=Path, help="directory for cProfile output of the raw stdio server")
    args = parser.parse_args(argv)
    try:
        args.sizes = [1000] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes must be comma-separated integers")
    if not args.sizes or min(args.sizes) < 100:
        parser.error("--sizes needs at least one size, each >= 100")
    args.transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    unknown = [t for t in args.transports if t not in TRANSPORTS]
    if unknown or not args.transports:
        parser.error(f"--transports: unknown {', '.join(unknown) or '(empty)'}; choose from {', '.join(TRANSPORTS)}")
    if args.calls < 1 or args.warmup < 0:
        parser.error("--calls must be >= 1 and --warmup >= 0")
    return args


# --- results ---------------------------------------------------------------------------------------


@dataclass
class Stat:
    samples: list[int]  # ns
    note: str = ""

    @property
    def median(self) -> float:
        return stats.median(self.samples) / 1e6

    @property
    def p95(self) -> float:
        return stats.p95(self.samples) / 1e6

    def cell(self) -> str:
        return f"{fmt(self.median)} / {fmt(self.p95)}"


@dataclass
class SizeReport:
    size: int
    populate: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    populate_via: str = ""
    connect: dict[str, float] = field(default_factory=dict)  # transport -> seconds to a usable client
    results: dict[str, dict[str, Stat]] = field(default_factory=dict)  # transport -> label -> stat


def fmt(ms: float) -> str:
    if ms >= 100:
        return f"{ms:,.0f}"
    return f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


# --- servers ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stdio_available() -> bool:
    return STDIO_COMMAND.exists()


class Servers:
    """A temporary data directory with a migrated database, a key, daphne, and the means to start
    `mcp_stdio` processes on the same database. `close()` stops everything and deletes the directory."""

    def __init__(self) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="memoryhub-bench-mcp-"))
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "memoryhub.settings",
            "MEMORYHUB_DATA_DIR": str(self.data_dir),
            "MEMORYHUB_DB_PATH": str(self.data_dir / "bench.sqlite3"),
            "MEMORYHUB_RATE_LIMIT_PER_MINUTE": "0",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("MEMORYHUB_TEST_DB_PATH", None)
        self.key = ""
        self.port = 0
        self.daphne: subprocess.Popen[bytes] | None = None
        self._logs: list[IO[Any]] = []

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, text=True, capture_output=True, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout.strip()

    def errlog(self, name: str) -> IO[Any]:
        handle = open(self.data_dir / name, "a")  # noqa: SIM115 - closed in close()
        self._logs.append(handle)
        return handle

    def prepare(self) -> None:
        self.manage("migrate", "--noinput", "-v0")
        self.key = self.manage(
            "create_api_key", "--user", "bench", "--grant", "*=write", "--default-namespace", NAMESPACE
        )
        if not self.key:
            raise BenchError("create_api_key printed no key")

    def start_http(self) -> None:
        self.port = free_port()
        self.daphne = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "memoryhub.asgi:application"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.errlog("daphne.log"),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except OSError:
                if self.daphne.poll() is not None:
                    break
                time.sleep(0.2)
        raise BenchError(f"daphne did not start:\n{self.log_tail('daphne.log')}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def stdio_args(self, stdio_key: bool) -> list[str]:
        args = ["manage.py", "mcp_stdio", "--namespace", NAMESPACE]
        return [*args, "--key", self.key] if stdio_key else args

    def log_tail(self, name: str, lines: int = 30) -> str:
        try:
            return "\n".join((self.data_dir / name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def close(self) -> None:
        if self.daphne is not None:
            stop(self.daphne)
            self.daphne = None
        for handle in self._logs:
            handle.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- clients ---------------------------------------------------------------------------------------


# Runs `manage.py mcp_stdio` under cProfile. The command answers each line in the database thread
# of `database_sync_to_async` (mcp_endpoint.lines.LineConnection.answer), which `python -m cProfile`
# would not see: that method gets a profiler of its own, switched on for each call. Writes
# <prefix>.loop.prof (the event-loop thread: framing, JSON, thread hand-offs) and <prefix>.work.prof.
PROFILED_STDIO = """
import cProfile, os, sys

prefix, manage, *command = sys.argv[1:]
sys.argv = [manage, *command]
sys.path.insert(0, os.path.dirname(os.path.abspath(manage)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryhub.settings")
import django

django.setup()
from mcp_endpoint import lines

loop, work = cProfile.Profile(), cProfile.Profile()
answer = lines.LineConnection.answer


def profiled(self, value):
    work.enable()
    try:
        return answer(self, value)
    finally:
        work.disable()


lines.LineConnection.answer = profiled
from django.core.management import execute_from_command_line

loop.enable()
try:
    execute_from_command_line(sys.argv)
finally:
    loop.disable()
    loop.dump_stats(prefix + ".loop.prof")
    work.dump_stats(prefix + ".work.prof")
"""


class Caller(Protocol):
    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        """Call a tool; return its structuredContent; raise BenchError when the result is an error."""


class SdkCaller:
    def __init__(self, client: Any) -> None:
        self.client = client

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        result = await self.client.call_tool(tool, arguments)
        if result.is_error:
            text = " ".join(getattr(block, "text", "") for block in result.content)
            raise BenchError(f"{tool} failed: {text[:300]}")
        return result.structured_content


class RawClient(abc.ABC):
    """A client without the SDK: JSON-RPC requests and nothing else (no validation)."""

    @abc.abstractmethod
    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one request; its result (raises BenchError for an error reply)."""

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        result = self.request("tools/call", {"name": tool, "arguments": arguments})
        if result.get("isError"):
            raise BenchError(f"{tool} failed: {result['content'][0]['text'][:300]}")
        return result.get("structuredContent")


class RawStdio(RawClient):
    """The smallest stdio MCP client: one JSON line out, one JSON line back, no validation."""

    def __init__(self, argv: list[str], env: dict[str, str], errlog: IO[Any]) -> None:
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.stdin = self.process.stdin
        self.stdout = self.process.stdout
        self.last_id = 0

    def send(self, message: dict[str, Any]) -> None:
        self.stdin.write(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        self.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.last_id += 1
        self.send({"jsonrpc": "2.0", "id": self.last_id, "method": method, "params": params})
        while True:
            line = self.stdout.readline()
            if not line:
                raise BenchError(f"the stdio server closed its output (exit code {self.process.poll()})")
            message = json.loads(line)
            if message.get("id") == self.last_id:  # skip notifications
                break
        if "error" in message:
            raise BenchError(f"{method}: {message['error']}")
        return message["result"]

    def initialize(self) -> None:
        self.request(
            "initialize",
            {
                "protocolVersion": HANDSHAKE_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "bench.mcp raw", "version": "1"},
            },
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def close(self) -> None:
        try:
            self.stdin.close()  # EOF: the server should exit on its own (and write its profile)
            self.process.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            pass
        stop(self.process)
        self.stdout.close()


class RawHttp(RawClient):
    """The smallest Streamable HTTP client: one keep-alive connection, JSON answers (we accept
    application/json), no validation. `modern`: stateless 2026-07-28 requests (the `_meta`
    envelope and the Mcp-Method / Mcp-Name headers) instead of an initialize'd session."""

    def __init__(self, port: int, key: str, *, modern: bool) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.modern = modern
        self.headers = {
            "X-API-Key": key,
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        self.last_id = 0

    def post(self, message: dict[str, Any], headers: dict[str, str]) -> tuple[dict[str, Any] | None, Any]:
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
        self.connection.request("POST", "/mcp", body, {**self.headers, **headers})
        response = self.connection.getresponse()
        data = response.read()
        if response.status == 202:
            return None, response
        if response.status != 200:
            raise BenchError(f"HTTP {response.status}: {data[:300]!r}")
        return json.loads(data), response

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.last_id += 1
        headers: dict[str, str] = {}
        if self.modern:
            params = {
                **params,
                "_meta": {
                    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
                    "io.modelcontextprotocol/clientCapabilities": {},
                },
            }
            headers = {"MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": method}
            if method == "tools/call":
                headers["Mcp-Name"] = params["name"]
        message, _ = self.post({"jsonrpc": "2.0", "id": self.last_id, "method": method, "params": params}, headers)
        if message is None or "error" in message:
            raise BenchError(f"{method}: {message}")
        return message["result"]

    def initialize(self) -> None:
        if self.modern:
            return  # nothing to set up: every request carries its envelope
        self.last_id += 1
        params = {
            "protocolVersion": HANDSHAKE_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "bench.mcp raw", "version": "1"},
        }
        message, response = self.post(
            {"jsonrpc": "2.0", "id": self.last_id, "method": "initialize", "params": params}, {}
        )
        if message is None or "error" in message:
            raise BenchError(f"initialize: {message}")
        self.headers["MCP-Session-Id"] = response.getheader("MCP-Session-Id") or ""
        self.headers["MCP-Protocol-Version"] = message["result"]["protocolVersion"]
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"}, {})

    def close(self) -> None:
        if not self.modern and self.headers.get("MCP-Session-Id"):
            with contextlib.suppress(OSError, http.client.HTTPException):
                self.connection.request("DELETE", "/mcp", headers=self.headers)
                self.connection.getresponse().read()
        self.connection.close()


@asynccontextmanager
async def connect(
    transport: str, servers: Servers, args: argparse.Namespace, size: int, *, profile: bool = False
) -> AsyncIterator[Caller]:
    """A ready client for `transport` (handshake done). `profile`: run the raw stdio server under
    cProfile when `--profile` is given."""
    if transport == "stdio-raw":
        argv = [sys.executable, *servers.stdio_args(args.stdio_key)]
        if profile and args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            target = (args.profile / f"stdio-{size}").resolve()
            script = servers.data_dir / "profiled_stdio.py"
            script.write_text(PROFILED_STDIO)
            argv = [sys.executable, str(script), str(target), *argv[1:]]
            log(f"  profiling the raw stdio server into {target}.{{loop,work}}.prof")
        raw = RawStdio(argv, servers.env, servers.errlog("stdio-raw.log"))
        try:
            raw.initialize()
            yield raw
        finally:
            raw.close()
        return
    if transport.startswith("http-raw"):
        client = RawHttp(servers.port, servers.key, modern=transport == "http-raw-2026")
        try:
            client.initialize()
            yield client
        finally:
            client.close()
        return

    from mcp import Client

    if transport == "stdio":
        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(
            command=sys.executable, args=servers.stdio_args(args.stdio_key), env=servers.env, cwd=ROOT
        )
        # The same as Client(params), but with the server's stderr in a log file.
        async with Client(stdio_client(params, errlog=servers.errlog("stdio.log")), mode="legacy") as client:
            yield SdkCaller(client)
        return

    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    mode = "legacy" if transport == "http-legacy" else "auto"
    async with (
        httpx2.AsyncClient(headers={"X-API-Key": servers.key}, timeout=300) as http,
        Client(streamable_http_client(servers.url, http_client=http), mode=mode) as client,
    ):
        yield SdkCaller(client)


# --- workload --------------------------------------------------------------------------------------


@dataclass
class Graph:
    size: int
    parent: list[int]
    deep: list[int]  # entities at depth >= 3 (have a great-grandparent)


Args = dict[str, Any]


@dataclass(frozen=True)
class Case:
    label: str
    tool: str
    # (rng, k, previous structured result, transport) -> arguments of call k
    make: Callable[[Random, int, Any, str], Args]
    note: str = ""


def cases(graph: Graph) -> list[Case]:
    size = graph.size

    def name(rng: Random) -> str:
        return entity_name(rng.randrange(size))

    def next_page(rng: Random, k: int, previous: Any, transport: str) -> Args:
        cursor = previous.get("nextCursor") if isinstance(previous, dict) else None
        return {"limit": 100, **({"cursor": cursor} if cursor else {})}

    def three_hops(rng: Random) -> Args:
        start = rng.choice(graph.deep)
        end = graph.parent[graph.parent[graph.parent[start]]]
        return {"from": entity_name(start), "to": entity_name(end)}

    def new_observation(rng: Random, k: int, transport: str) -> Args:
        content = f"Benchmark note {transport} {k}: {rng.choice(TOPICS)} looked {rng.choice(ADJECTIVES)}."
        return {"observations": [{"entityName": name(rng), "contents": [content]}]}

    return [
        Case("open_nodes (1 name)", "open_nodes", lambda r, k, p, t: {"names": [name(r)]}),
        Case(
            "open_nodes (5 names)",
            "open_nodes",
            lambda r, k, p, t: {"names": [entity_name(i) for i in r.sample(range(size), 5)]},
        ),
        Case(
            "search_nodes selective",
            "search_nodes",
            lambda r, k, p, t: {"query": name(r)},
            'query "entity-<i>" (a prefix of entity-<i>*; default limit 100)',
        ),
        Case(
            "search_nodes unique token",
            "search_nodes",
            lambda r, k, p, t: {"query": unique_code(r.randrange(size))},
            'query "tc<i>x": one matching observation',
        ),
        Case(
            "search_nodes common word",
            "search_nodes",
            lambda r, k, p, t: {"query": COMMON_WORDS[k % len(COMMON_WORDS)]},
            f"query in {{{', '.join(COMMON_WORDS)}}}: ~1/3 of the entities match; first page of 100",
        ),
        Case(
            "search_nodes CJK",
            "search_nodes",
            lambda r, k, p, t: {"query": "部署"},
            'query "部署" ("deployment"): every 10th entity has a Chinese observation; first page of 100',
        ),
        Case(
            "add_observations (1 obs)",
            "add_observations",
            lambda r, k, p, t: new_observation(r, k, t),
            "1 entity, 1 new observation",
        ),
        Case("get_entity", "get_entity", lambda r, k, p, t: {"name": name(r)}),
        Case("read_graph (limit 100)", "read_graph", next_page, "paging with nextCursor"),
        Case("find_path (3 hops)", "find_path", lambda r, k, p, t: three_hops(r), "to the great-grandparent"),
        Case("get_neighbors (depth 1)", "get_neighbors", lambda r, k, p, t: {"name": name(r), "depth": 1}),
        Case("describe_entity", "describe_entity", lambda r, k, p, t: {"name": name(r)}),
    ]


def build_graph(size: int) -> tuple[Graph, list[list[Args]], list[list[Args]]]:
    """The entity and relation batches (deterministic for a size), and the tree they form."""
    entity_batches, parent, relation_batches = graph_batches(size, Random(SEED))
    depth = depth_of(parent)
    deep = [i for i in range(size) if depth[i] >= 3] or [size - 1]
    return Graph(size, parent, deep), entity_batches, relation_batches


async def populate(
    caller: Caller, entity_batches: list[list[Args]], relation_batches: list[list[Args]], report: SizeReport
) -> None:
    size = report.size
    total = len(entity_batches) + len(relation_batches)
    every = max(1, total // 10)
    started = time.perf_counter()
    done = 0

    def progress(what: str) -> None:
        if done % every == 0 or done == total:
            log(f"  populate {size:,}: {done}/{total} batches ({what}), {time.perf_counter() - started:.1f} s")

    for batch in entity_batches:
        created = await caller.call("create_entities", {"entities": batch})
        if isinstance(created, dict) and created.get("skipped"):
            raise BenchError(f"create_entities skipped {len(created['skipped'])} entities: the namespace was not empty")
        done += 1
        progress("entities")
    entities_done = time.perf_counter()
    for batch in relation_batches:
        await caller.call("create_relations", {"relations": batch})
        done += 1
        progress("relations")
    relations_done = time.perf_counter()
    report.populate = {
        "entities": entities_done - started,
        "relations": relations_done - entities_done,
        "total": relations_done - started,
    }


async def measure(caller: Caller, case: Case, transport: str, args: argparse.Namespace) -> Stat:
    rng = Random(f"{SEED}:{case.label}")  # the same arguments on every transport
    clock = time.perf_counter_ns
    previous: Any = None
    warm: list[int] = []
    k = 0
    for _ in range(args.warmup):
        arguments = case.make(rng, k, previous, transport)
        begin = clock()
        previous = await caller.call(case.tool, arguments)
        warm.append(clock() - begin)
        k += 1
    calls = args.calls
    if warm:
        estimate = statistics.median(warm) / 1e9
        calls = min(calls, max(20, int(args.budget / max(estimate, 1e-9))))
    samples = []
    for _ in range(calls):
        arguments = case.make(rng, k, previous, transport)
        begin = clock()
        previous = await caller.call(case.tool, arguments)
        samples.append(clock() - begin)
        k += 1
    note = case.note if calls == args.calls else f"{case.note}; {calls} calls (slow)".lstrip("; ")
    return Stat(samples, note)


async def bench_size(size: int, args: argparse.Namespace, transports: list[str]) -> SizeReport:
    report = SizeReport(size)
    print(f"\n## {size:,} entities\n", flush=True)
    servers = Servers()
    try:
        log(f"[{size:,}] database and key in {servers.data_dir}")
        servers.prepare()
        if any(t.startswith("http") for t in transports) or args.populate_via.startswith("http"):
            servers.start_http()
            log(f"[{size:,}] daphne on {servers.url}")
        graph, entity_batches, relation_batches = build_graph(size)
        report.populate_via = args.populate_via
        async with connect(args.populate_via, servers, args, size) as caller:
            await populate(caller, entity_batches, relation_batches, report)
        del entity_batches, relation_batches
        if os.environ.get("MEMORYHUB_DATABASE_URL"):
            # As autovacuum would after the load (bench/setup.py `settle`): the vacuum job, run
            # by the servers' own command.
            servers.manage("maintenance", "--job", "vacuum")
        pop = report.populate
        print(
            f"populated through MCP ({TRANSPORTS[args.populate_via]}, create_entities / create_relations in batches "
            f"of {BATCH:,}) in {pop['total']:.1f} s: {size:,} entities with {size * OBSERVATIONS_PER_ENTITY:,} "
            f"observations in {pop['entities']:.1f} s ({size / pop['entities']:,.0f} entities/s), {size - 1:,} "
            f"relations in {pop['relations']:.1f} s ({(size - 1) / max(pop['relations'], 1e-9):,.0f} relations/s)",
            flush=True,
        )
        workload = cases(graph)
        for transport in transports:
            log(f"[{size:,}] {TRANSPORTS[transport]}")
            begin = time.perf_counter()
            async with connect(transport, servers, args, size, profile=True) as caller:
                report.connect[transport] = time.perf_counter() - begin
                stats: dict[str, Stat] = {}
                for case in workload:
                    stats[case.label] = await measure(caller, case, transport, args)
                    log(f"  {case.label}: {stats[case.label].cell()} ms")
            report.results[transport] = stats
            print(f"\n### {size:,} entities, {TRANSPORTS[transport]}\n")
            print_table(
                ["tool", "median ms", "p95 ms", "calls", "notes"],
                [
                    [label, fmt(s.median), fmt(s.p95), str(len(s.samples)), s.note]
                    for label, s in report.results[transport].items()
                ],
                right=(1, 2, 3),
            )
            print(
                f"\nclient ready (process start + handshake) in {report.connect[transport] * 1000:,.0f} ms", flush=True
            )
    except BaseException:
        for name in ("daphne.log", "stdio.log", "stdio-raw.log"):
            if (servers.data_dir / name).exists():
                log(f"--- {name} (tail) ---\n{servers.log_tail(name)}")
        raise
    finally:
        servers.close()
    return report


# --- summary ---------------------------------------------------------------------------------------


def print_summary(reports: list[SizeReport], transports: list[str]) -> None:
    print("\n## Summary: median / p95 ms\n")
    labels = list(next(iter(reports[0].results.values())))
    rows = [
        [label, TRANSPORTS[t], *(r.results[t][label].cell() if t in r.results else "" for r in reports)]
        for label in labels
        for t in transports
    ]
    print_table(["tool", "transport", *(f"{r.size:,} entities" for r in reports)], rows)

    print("\nPopulation through MCP (batches of 1,000):\n")
    print_table(
        ["entities", "client", "entities + observations", "relations", "total"],
        [
            [
                f"{r.size:,}",
                TRANSPORTS[r.populate_via],
                f"{r.populate['entities']:.1f} s",
                f"{r.populate['relations']:.1f} s",
                f"{r.populate['total']:.1f} s",
            ]
            for r in reports
        ],
        right=(2, 3, 4),
    )

    stdio = [t for t in ("stdio", "stdio-raw") if t in transports]
    if not stdio:
        print("\n(no stdio transport measured: targets not checked)")
        return
    print(f"\n## Targets (stdio, {TARGET_SIZE // 1000}k entities, median)\n")
    at_target = next((r for r in reports if r.size == TARGET_SIZE), None)
    if at_target is None:
        print(f"(no run at {TARGET_SIZE:,} entities)")
    else:
        rows = []
        for label, target in TARGETS.items():
            cells = []
            for t in stdio:
                value = at_target.results[t][label].median
                cells.append(f"{fmt(value)} {'ok' if value < target else 'MISSED'}")
            rows.append([label, f"< {target:g}", *cells])
        print_table(["tool", "target ms", *(TRANSPORTS[t] for t in stdio)], rows)

    if len(reports) > 1:
        small, large = reports[0], reports[-1]
        print(
            f"\n## Flatness: median at {large.size:,} / median at {small.size:,} entities (flat: < {FLAT_RATIO:g}x)\n"
        )
        rows = []
        for label in labels:
            cells = []
            for t in stdio:
                a, b = small.results[t][label].median, large.results[t][label].median
                ratio = b / a if a else float("inf")
                cells.append(f"{fmt(a)} → {fmt(b)} ms ({ratio:.2f}x{'' if ratio < FLAT_RATIO else ', GROWS'})")
            rows.append([label, *cells])
        print_table(["tool", *(TRANSPORTS[t] for t in stdio)], rows)


# --- main ------------------------------------------------------------------------------------------


def wait_for_stdio(minutes: float) -> bool:
    deadline = time.monotonic() + minutes * 60
    while not stdio_available():
        if time.monotonic() >= deadline:
            return False
        log(f"waiting for {STDIO_COMMAND.relative_to(ROOT)} ...")
        time.sleep(min(60, max(1, deadline - time.monotonic())))
    return True


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    have_stdio = wait_for_stdio(args.wait_for_stdio)
    transports = list(args.transports)
    if not have_stdio:
        dropped = [t for t in transports if t.startswith("stdio")]
        transports = [t for t in transports if not t.startswith("stdio")]
        if dropped:
            log(f"mcp_stdio does not exist yet: skipping {', '.join(dropped)}")
        if not transports:
            raise SystemExit("nothing to measure: the stdio command is missing")
    if args.populate_via is None:
        args.populate_via = "stdio-raw" if have_stdio else "http-raw"
    elif args.populate_via == "stdio-raw" and not have_stdio:
        raise SystemExit("--populate-via stdio-raw needs the mcp_stdio command")

    print("# MemoryHub MCP endpoint benchmark\n")
    print(
        f"Python {platform.python_version()}, {database_engine()}, mcp SDK {version('mcp')}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs; seed {SEED}; {args.calls} timed calls per tool after "
        f"{args.warmup} warm-up calls (fewer when one tool would take over {args.budget:g} s); namespace "
        f"{NAMESPACE}; stdio server {'with --key' if args.stdio_key else 'as local operator (no key)'}; "
        f"load average at the start {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    started = time.perf_counter()
    reports = [asyncio.run(bench_size(size, args, transports)) for size in args.sizes]
    print_summary(reports, transports)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\nfinished in {time.perf_counter() - started:.0f} s; load average at the end {load} (other processes skew the numbers)"
    )


if __name__ == "__main__":
    main()
