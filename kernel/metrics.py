"""Prometheus metrics of this server process, served at `/metrics` (text format 0.0.4).

Counters and histograms live in this process's memory: with several server processes each one
exposes its own (scrape every process, or sum them in Prometheus); they restart at zero with the
process. Nothing here needs a dependency: the exposition format is written by `render`.

What is collected (see README "Observability"):

- HTTP requests per surface (`rest_graph`, `rest_memory`, `memos`, `mcp`, `mcp_sse`, `marketplace`,
  `admin`, `pages`, `ops`): count by method and status, latency histogram, server errors. Django
  views are measured by `kernel.observability.RequestMiddleware`, the MCP consumers by
  `kernel.observability.AsgiMiddleware` (they are not Django views).
- MCP tool calls (any transport: Streamable HTTP, SSE, marketplace, stdio, TCP) per tool and outcome,
  latency histogram. Per-user agent tools (`agent_<id>`, `momo_agent_<id>`) share the label `agent`,
  unknown names `unknown`: the label set stays bounded whatever clients send.
- LLM calls made by the server for extraction (memory/extraction.py), by purpose (extract: the
  facts of a message; decide: what to do with them) and outcome, their prompt and completion
  tokens, and the extraction decisions applied, by kind (add, update, invalidate, noop, skipped).
- At scrape time: database and WAL file sizes, loaded vector indexes and their sizes, the Celery
  queue depth when a Redis broker is configured.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "memoryhub"
# Seconds; from a cached read to a slow bulk write or LLM call.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
PER_PROCESS = "Per server process (each process exposes its own)."

# The MCP transports' routes (mcp_endpoint/routing.py); everything else is Django's.
_MCP_ROUTES = (
    (re.compile(r"/mcp/?"), "mcp"),
    (re.compile(r"/sse"), "mcp_sse"),
    (re.compile(r"/messages/?"), "mcp_sse"),
    (re.compile(r"/api/mcp/(?:messages|sse)/?"), "marketplace"),
)
_DJANGO_PREFIXES = (
    ("/v1/graph/", "rest_graph"),
    ("/v1/memory/", "rest_memory"),
    ("/product/", "memos"),
    ("/admin/", "admin"),
)
_OPS_PATHS = frozenset({"/healthz", "/metrics"})
_AGENT_TOOL = re.compile(r"(?:momo_)?agent_.+")


def mcp_surface(path: str) -> str | None:
    """The MCP surface a path is routed to (a Channels consumer), or None for Django's paths."""
    for pattern, surface in _MCP_ROUTES:
        if pattern.fullmatch(path):
            return surface
    return None


def django_surface(path: str) -> str:
    for prefix, surface in _DJANGO_PREFIXES:
        if path.startswith(prefix):
            return surface
    return "ops" if path in _OPS_PATHS else "pages"


def tool_label(name: Any, *, declared: bool) -> str:
    """The `tool` label of a call: the declared tool's name, `agent` for per-user agent tools,
    `unknown` for anything else (never a raw client-supplied string)."""
    if declared and isinstance(name, str):
        return name
    if isinstance(name, str) and _AGENT_TOOL.fullmatch(name):
        return "agent"
    return "unknown"


class Histogram:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self) -> None:
        self.buckets = [0] * len(BUCKETS)  # non-cumulative; cumulated when rendered
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.sum += seconds
        for index, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.buckets[index] += 1
                return


class Collector:
    """The process's counters and histograms. One lock: updates are a few dict operations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.http_requests: dict[tuple[str, str, str], int] = {}
        self.http_errors: dict[str, int] = {}
        self.http_latency: dict[str, Histogram] = {}
        self.tool_calls: dict[tuple[str, str], int] = {}
        self.tool_latency: dict[str, Histogram] = {}
        self.llm_calls: dict[tuple[str, str], int] = {}
        self.llm_tokens: dict[tuple[str, str], int] = {}
        self.llm_latency: dict[str, Histogram] = {}
        self.extraction_decisions: dict[str, int] = {}

    def reset(self) -> None:
        with self._lock:
            self.http_requests.clear()
            self.http_errors.clear()
            self.http_latency.clear()
            self.tool_calls.clear()
            self.tool_latency.clear()
            self.llm_calls.clear()
            self.llm_tokens.clear()
            self.llm_latency.clear()
            self.extraction_decisions.clear()

    def http(self, surface: str, method: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "other"
        key = (surface, method, str(status))
        with self._lock:
            self.http_requests[key] = self.http_requests.get(key, 0) + 1
            if status >= 500:
                self.http_errors[surface] = self.http_errors.get(surface, 0) + 1
            histogram = self.http_latency.get(surface)
            if histogram is None:
                histogram = self.http_latency[surface] = Histogram()
            histogram.observe(seconds)

    def tool(self, tool: str, outcome: str, seconds: float) -> None:
        key = (tool, outcome)
        with self._lock:
            self.tool_calls[key] = self.tool_calls.get(key, 0) + 1
            histogram = self.tool_latency.get(tool)
            if histogram is None:
                histogram = self.tool_latency[tool] = Histogram()
            histogram.observe(seconds)

    def llm(self, purpose: str, outcome: str, seconds: float, prompt_tokens: int, completion_tokens: int) -> None:
        with self._lock:
            key = (purpose, outcome)
            self.llm_calls[key] = self.llm_calls.get(key, 0) + 1
            for kind, tokens in (("prompt", prompt_tokens), ("completion", completion_tokens)):
                if tokens:
                    self.llm_tokens[(purpose, kind)] = self.llm_tokens.get((purpose, kind), 0) + tokens
            histogram = self.llm_latency.get(purpose)
            if histogram is None:
                histogram = self.llm_latency[purpose] = Histogram()
            histogram.observe(seconds)

    def decisions(self, kind: str, count: int) -> None:
        with self._lock:
            self.extraction_decisions[kind] = self.extraction_decisions.get(kind, 0) + count

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "http_requests": dict(self.http_requests),
                "http_errors": dict(self.http_errors),
                "http_latency": {k: _copy(v) for k, v in self.http_latency.items()},
                "tool_calls": dict(self.tool_calls),
                "tool_latency": {k: _copy(v) for k, v in self.tool_latency.items()},
                "llm_calls": dict(self.llm_calls),
                "llm_tokens": dict(self.llm_tokens),
                "llm_latency": {k: _copy(v) for k, v in self.llm_latency.items()},
                "extraction_decisions": dict(self.extraction_decisions),
            }


def _copy(histogram: Histogram) -> Histogram:
    copy = Histogram()
    copy.buckets, copy.count, copy.sum = list(histogram.buckets), histogram.count, histogram.sum
    return copy


collector = Collector()


def observe_http(surface: str, method: str, status: int, seconds: float) -> None:
    collector.http(surface, method, status, seconds)


def observe_tool(tool: str, outcome: str, seconds: float) -> None:
    """`outcome`: ok, error (a CallToolResult with isError) or fault (a JSON-RPC error or a crash)."""
    collector.tool(tool, outcome, seconds)


def observe_llm_call(
    purpose: str, outcome: str, seconds: float, *, prompt_tokens: int = 0, completion_tokens: int = 0
) -> None:
    """One call to the server's LLM. `purpose`: extract or decide; `outcome`: ok, error (the
    provider failed or refused), timeout, or malformed (it answered, but not what was asked)."""
    collector.llm(purpose, outcome, seconds, prompt_tokens, completion_tokens)


def observe_extraction_decisions(kind: str, count: int = 1) -> None:
    """Extraction decisions applied: add, update, invalidate, noop, or skipped (the memory it named
    changed or went away meanwhile, or it named none that the model was shown)."""
    collector.decisions(kind, count)


# --- exposition ------------------------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)
    return f"{{{inner}}}" if inner else ""


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if value != value:  # NaN
        return "NaN"
    return repr(float(value))


class Exposition:
    """Builds the text format: HELP and TYPE once per metric family, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> str:
        full = f"{PREFIX}_{name}"
        escaped = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        self.lines.append(f"# HELP {full} {escaped}")
        self.lines.append(f"# TYPE {full} {kind}")
        return full

    def sample(self, name: str, value: float, labels: Iterable[tuple[str, str]] = ()) -> None:
        self.lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def histogram(self, name: str, histogram: Histogram, labels: tuple[tuple[str, str], ...]) -> None:
        running = 0
        for bound, count in zip(BUCKETS, histogram.buckets, strict=True):
            running += count
            self.sample(f"{name}_bucket", running, (*labels, ("le", _number(bound))))
        self.sample(f"{name}_bucket", histogram.count, (*labels, ("le", "+Inf")))
        self.sample(f"{name}_sum", histogram.sum, labels)
        self.sample(f"{name}_count", histogram.count, labels)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render() -> str:
    """The whole /metrics page of this process."""
    out = Exposition()
    snap = collector.snapshot()

    name = out.family("http_requests_total", "counter", f"HTTP requests by surface, method and status. {PER_PROCESS}")
    for (surface, method, status), count in sorted(snap["http_requests"].items()):
        out.sample(name, count, (("surface", surface), ("method", method), ("status", status)))
    name = out.family(
        "http_server_errors_total", "counter", f"HTTP responses with status 5xx (or a crash), by surface. {PER_PROCESS}"
    )
    for surface, count in sorted(snap["http_errors"].items()):
        out.sample(name, count, (("surface", surface),))
    name = out.family(
        "http_request_duration_seconds",
        "histogram",
        "HTTP request latency by surface, until the response is complete (for an SSE stream: until its "
        f"headers are sent). {PER_PROCESS}",
    )
    for surface, histogram in sorted(snap["http_latency"].items()):
        out.histogram(name, histogram, (("surface", surface),))

    name = out.family(
        "mcp_tool_calls_total",
        "counter",
        "MCP tool calls by tool and outcome (ok; error: isError result; fault: JSON-RPC error or crash); "
        f"agent_<id> tools are counted as tool=agent. {PER_PROCESS}",
    )
    for (tool, outcome), count in sorted(snap["tool_calls"].items()):
        out.sample(name, count, (("tool", tool), ("outcome", outcome)))
    name = out.family("mcp_tool_duration_seconds", "histogram", f"MCP tool call latency by tool. {PER_PROCESS}")
    for tool, histogram in sorted(snap["tool_latency"].items()):
        out.histogram(name, histogram, (("tool", tool),))

    name = out.family(
        "llm_calls_total",
        "counter",
        "Calls to the server's LLM for extraction, by purpose (extract, decide) and outcome (ok, error, timeout, "
        f"malformed). {PER_PROCESS}",
    )
    for (purpose, outcome), count in sorted(snap["llm_calls"].items()):
        out.sample(name, count, (("purpose", purpose), ("outcome", outcome)))
    name = out.family(
        "llm_tokens_total",
        "counter",
        "Tokens of those calls, by purpose and kind (prompt, completion), as the provider reported them "
        f"(estimated when it reports none). {PER_PROCESS}",
    )
    for (purpose, kind), count in sorted(snap["llm_tokens"].items()):
        out.sample(name, count, (("purpose", purpose), ("kind", kind)))
    name = out.family("llm_call_duration_seconds", "histogram", f"LLM call latency by purpose. {PER_PROCESS}")
    for purpose, histogram in sorted(snap["llm_latency"].items()):
        out.histogram(name, histogram, (("purpose", purpose),))
    name = out.family(
        "extraction_decisions_total",
        "counter",
        f"Extraction decisions applied, by kind (add, update, invalidate, noop, skipped). {PER_PROCESS}",
    )
    for kind, count in sorted(snap["extraction_decisions"].items()):
        out.sample(name, count, (("decision", kind),))

    for collect in (_database, *_scrape_collectors, _queue, _process):
        collect(out)
    return out.text()


# Scrape-time collectors of the apps above the kernel (vectors registers its loaded indexes from
# its AppConfig.ready), run after the database's and before the broker's, in registration order.
_scrape_collectors: list[Callable[[Exposition], None]] = []


def add_scrape_collector(collect: Callable[[Exposition], None]) -> None:
    """Add a function that writes families to the exposition at each scrape (once per function)."""
    if collect not in _scrape_collectors:
        _scrape_collectors.append(collect)


def _file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _database(out: Exposition) -> None:
    from django.db import connection

    size = out.family(
        "database_size_bytes", "gauge", "Size of the database: the SQLite file, or the PostgreSQL database."
    )
    wal = out.family(
        "database_wal_size_bytes",
        "gauge",
        "Size of the write-ahead log: SQLite's -wal file (0 when absent), or the PostgreSQL server's pg_wal "
        "(shared by its databases; reported when the role may list it: superuser or pg_monitor).",
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database()), pg_has_role('pg_monitor', 'USAGE')")
            database_bytes, may_list_wal = cursor.fetchone()
            out.sample(size, database_bytes)
            # Asked first rather than tried: a refused statement would abort an open transaction.
            if may_list_wal:
                cursor.execute("SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()")
                out.sample(wal, cursor.fetchone()[0])
        return
    path = str(settings.DATABASES["default"]["NAME"])
    out.sample(size, _file_size(path))
    out.sample(wal, _file_size(path + "-wal"))


def _queue(out: Exposition) -> None:
    from kernel import health

    url = health.broker_url()
    if url is None:
        return
    up = out.family("broker_up", "gauge", "1 when the Celery broker answered this scrape, else 0.")
    try:
        depth = health.queue_depth(url)
    except Exception:  # an unreachable broker is a value to report, not a failed scrape
        out.sample(up, 0)
        return
    out.sample(up, 1)
    if depth is not None:
        name = out.family("queue_depth", "gauge", "Messages waiting in the Celery queue (Redis broker).")
        out.sample(name, depth, (("queue", health.default_queue()),))


def _process(out: Exposition) -> None:
    out.sample(
        out.family("process_start_time_seconds", "gauge", "When this server process started (Unix time)."),
        collector.started,
    )
    out.sample(
        out.family("process_info", "gauge", "This process (pid label); always 1."), 1, (("pid", str(os.getpid())),)
    )
