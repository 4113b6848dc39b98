"""A real MemoryHub server for MCP tests: daphne on a free loopback port, its own SQLite file
(on PostgreSQL, a database of its own: tests/postgres/databases.py), and a key per persona made
with the real `create_api_key` command.

Tests drive it with the official `mcp` SDK (`McpServer.client(...)`) or plain HTTP (httpx2). The
server is shared by the whole session; each test works in namespaces of its own
(`server.namespace(...)`) so tests cannot see each other's data.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.postgres import databases

ROOT = Path(__file__).resolve().parents[2]

# The tools the server must offer, written out (not read from the registry) so that the tests
# check the registry rather than repeat it: 28 knowledge-graph tools (18 kg-read, 10 kg-write),
# 12 vector tools, 9 memory tools and 2 marketplace tools.
OFFICIAL_TOOLS = (
    "create_entities",
    "create_relations",
    "add_observations",
    "delete_entities",
    "delete_observations",
    "delete_relations",
    "read_graph",
    "search_nodes",
    "open_nodes",
)
READ_TOOLS = {
    "read_graph",
    "search_nodes",
    "open_nodes",
    "get_entity",
    "batch_get_entities",
    "entity_exists",
    "graph_stats",
    "list_entity_types",
    "list_relation_types",
    "search_relations",
    "degree",
    "describe_entity",
    "get_neighbors",
    "extract_subgraph",
    "find_path",
    "find_all_paths",
    "export_graph",
    "entity_history",
}
WRITE_TOOLS = {
    "create_entities",
    "create_relations",
    "add_observations",
    "delete_entities",
    "delete_observations",
    "delete_relations",
    "upsert_entities",
    "merge_entities",
    "rename_entity",
    "supersede_observation",
    "declare_relation_type",
    "compact",
}
GRAPH_TOOLS = READ_TOOLS | WRITE_TOOLS
VECTOR_TOOLS = {
    "vector_upsert_embedding",
    "vector_batch_upsert",
    "vector_get_embedding",
    "vector_delete_embedding",
    "vector_search_entities",
    "vector_search_by_entity",
    "vector_recommend",
    "vector_mmr_search",
    "hybrid_search",
    "vector_reindex",
    "vector_refresh_graph_cache",
    "vector_store_stats",
}
MEMORY_TOOLS = {
    "add_memory",
    "search_memories",
    "chat",
    "add_message",
    "search_memory",
    "delete_memory",
    "memory_history",
    "update_memory",
    "restore_memory",
    "supersede_memory",
}
# The marketplace's declared tools; agent_<id> tools are listed per user, once they hold tokens.
AGENT_TOOLS = {"search_agents", "buy_agent_tokens"}
ALL_TOOLS = GRAPH_TOOLS | VECTOR_TOOLS | MEMORY_TOOLS | AGENT_TOOLS

# name → (grants, default namespace): alice and bob are tenants that must never see each other's
# data, carol may only read alice's, root is an operator.
PERSONAS: dict[str, tuple[list[str], str]] = {
    "alice": (["org:alice:*=write"], "org:alice:notes"),
    "bob": (["org:bob:*=write"], "org:bob:notes"),
    "carol": (["org:alice:*=read"], "org:alice:notes"),
    "root": (["*=write"], "default"),
}


def stateless_call(name: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A stateless 2026-07-28 `tools/call`: the JSON-RPC message, and the headers that must go
    with it (besides the key, Host and Content-Type)."""
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": meta},
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": "2026-07-28",
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
    }
    return message, headers


def asgi_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode()) for name, value in headers.items()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# On PostgreSQL: data directory → the URL of its database (made by `server_env`).
_server_databases: dict[Path, str] = {}


def server_database(data_dir: Path) -> str:
    """On PostgreSQL, the database of the server processes on `data_dir` (what the SQLite file in
    it is on SQLite): made empty on first use, dropped by `running_servers` or at exit."""
    key = data_dir.resolve()
    if key not in _server_databases:
        _server_databases[key] = databases.create(databases.new_name(data_dir.name))
    return _server_databases[key]


def release_database(data_dir: Path) -> None:
    """Drop `data_dir`'s PostgreSQL database (its processes stopped); nothing on SQLite."""
    url = _server_databases.pop(data_dir.resolve(), None)
    if url is not None:
        databases.drop(databases.base_name(url))


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A server process's environment on `data_dir`: its SQLite file there, or on PostgreSQL
    (MEMORYHUB_DATABASE_URL set for the suite) a database of its own, unless `extra` names one."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "memoryhub.settings",
        "MEMORYHUB_DATA_DIR": str(data_dir),
        "MEMORYHUB_DB_PATH": str(data_dir / "hub.sqlite3"),
        # Small pages so tests see tools/list pagination; no rate limit in the way of the suite.
        "MEMORYHUB_MCP_PAGE_SIZE": "10",
        "MEMORYHUB_RATE_LIMIT_PER_MINUTE": "0",
        "MEMORYHUB_MCP_KEEPALIVE_SECONDS": "1",
        # The embedding drainer as a thread: the default, a child process per server, is a second
        # interpreter loading Django and the model for every server the suite starts, and the
        # suite is bound by CPU. tests/vectors/test_pipeline_servers.py and bench/crash.py (the
        # crash tests) run the default.
        "MEMORYHUB_EMBED_WORKER": "thread",
    }
    env.pop("MEMORYHUB_TEST_DB_PATH", None)
    env.pop("MEMORYHUB_TEST_DB_NAME", None)
    env.update(extra)
    if databases.BASE_URL and "MEMORYHUB_DATABASE_URL" not in extra:
        env["MEMORYHUB_DATABASE_URL"] = server_database(data_dir)
    return env


def query(env: dict[str, str], statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """`statement` (sqlite3's `?` placeholders) on the database of the process with `env`: its
    SQLite file, or its PostgreSQL database. The rows."""
    url = env.get("MEMORYHUB_DATABASE_URL")
    if url:
        return databases.rows(url, statement, params)
    with closing(sqlite3.connect(env["MEMORYHUB_DB_PATH"])) as conn:
        return conn.execute(statement, params).fetchall()


@dataclass
class McpServer:
    base_url: str
    data_dir: Path
    env: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.base_url}/mcp"

    def namespace(self, persona: str = "alice") -> str:
        """A fresh namespace the persona can write (carol: one she can read)."""
        owner = {"carol": "alice", "root": "org:ops"}.get(persona, persona)
        prefix = owner if owner.startswith("org:") else f"org:{owner}"
        return f"{prefix}:t{uuid.uuid4().hex[:12]}"

    def headers(self, persona: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[persona]}

    def post_json(self, path: str, body: dict[str, Any], persona: str = "alice") -> tuple[int, dict[str, Any]]:
        """POST `body` as JSON to `path` with the persona's key: the status and the JSON answer
        (errors included)."""
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=json.dumps(body).encode(),
            headers={**self.headers(persona), "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as failed:
            return failed.code, json.loads(failed.read() or b"{}")

    def endpoint(self, *, namespace: str | None = None, tools: str | None = None, path: str = "/mcp") -> str:
        query = "&".join(f"{name}={value}" for name, value in (("namespace", namespace), ("tools", tools)) if value)
        return f"{self.base_url}{path}{'?' + query if query else ''}"

    @asynccontextmanager
    async def client(
        self,
        persona: str = "alice",
        *,
        namespace: str | None = None,
        tools: str | None = None,
        mode: str = "auto",
        **options: Any,
    ) -> AsyncIterator[Client]:
        """An official SDK client over Streamable HTTP. mode: 'auto' (2026-07-28 when the server
        offers it) or 'legacy' (initialize handshake and a session)."""
        async with httpx2.AsyncClient(headers=self.headers(persona), timeout=30) as http:
            transport = streamable_http_client(self.endpoint(namespace=namespace, tools=tools), http_client=http)
            async with Client(transport, mode=mode, **options) as client:
                yield client

    def manage(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            text=True,
            capture_output=True,
            **kwargs,
        )

    def commands(self, *calls: Sequence[str]) -> list[str]:
        """Several management commands run one after the other in one process (the real
        commands, through call_command): what each wrote to stdout. Each `manage` is a Django
        start, a second or more of CPU in a suite bound by CPU."""
        script = _COMMANDS.format(calls=[list(call) for call in calls])
        return list(json.loads(self.manage("shell", "-v", "0", "-c", script).stdout))


_COMMANDS = """
import io, json
from django.core.management import call_command
outputs = []
for args in {calls!r}:
    out = io.StringIO()
    call_command(*args, stdout=out)
    outputs.append(out.getvalue())
print(json.dumps(outputs))
"""


def _migrate_with_personas(server: McpServer) -> None:
    """`migrate` and a key per persona (the real `create_api_key` command) on `server`'s database,
    in one process."""
    calls: list[list[str]] = [["migrate", "--noinput", "-v0"]]
    for name, (grants, default) in PERSONAS.items():
        calls.append(["create_api_key", "--user", name, "--default-namespace", default])
        for grant in grants:
            calls[-1] += ["--grant", grant]
    _, *keys = server.commands(*calls)
    server.keys.update(zip(PERSONAS, (key.strip() for key in keys), strict=True))


@dataclass(frozen=True)
class Template:
    database: Path | str  # a SQLite file, or on PostgreSQL a database's name
    keys: dict[str, str]


_template: Template | None = None


def fresh_database_template() -> Template:
    """A database made by `migrate` with the personas' keys, once per test process: a server
    whose database file does not exist yet starts on a copy of it, which is the same file the
    same commands would make there (a migrate and four key commands cost several seconds of CPU
    per server). Tests of migrating (tests/durability, tests/memoryhub/test_server.py) run
    `migrate` themselves."""
    global _template
    if _template is None:
        directory = Path(tempfile.mkdtemp(prefix="memoryhub-test-template-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        maker = McpServer(base_url="", data_dir=directory, env=server_env(directory))
        _migrate_with_personas(maker)
        if databases.BASE_URL:
            # CREATE DATABASE ... TEMPLATE copies it (nobody may be connected to it then).
            _template = Template(databases.base_name(maker.env["MEMORYHUB_DATABASE_URL"]), dict(maker.keys))
            return _template
        database = Path(maker.env["MEMORYHUB_DB_PATH"])
        # Every page in the main file: the copy must not need the -wal beside it.
        with closing(sqlite3.connect(database)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _template = Template(database=database, keys=dict(maker.keys))
    return _template


# What SQLite reads when it makes a new file (kernel/sqlite): a server given another value gets a
# database of its own making, not a copy of the template.
FILE_SHAPING_SETTINGS = ("MEMORYHUB_SQLITE_PAGE_SIZE",)


def prepare_database(server: McpServer) -> None:
    """Give `server` a migrated database with the personas' keys: a copy of the template when its
    file does not exist yet, else `migrate` and new keys on the file that is there (on
    PostgreSQL: a copy of the template database when the server's database has no tables yet)."""
    shaped = any(server.env.get(name) != os.environ.get(name) for name in FILE_SHAPING_SETTINGS)
    url = server.env.get("MEMORYHUB_DATABASE_URL")
    if url:
        if shaped or not databases.is_empty(url):
            _migrate_with_personas(server)
            return
        template = fresh_database_template()
        name = databases.base_name(url)
        databases.drop(name)
        databases.create(name, template=str(template.database))
        server.keys.update(template.keys)
        return
    database = Path(server.env["MEMORYHUB_DB_PATH"])
    if database.exists() or shaped:
        _migrate_with_personas(server)
        return
    template = fresh_database_template()
    database.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template.database, database)
    server.keys.update(template.keys)


def launch_daphne(server: McpServer) -> subprocess.Popen[str]:
    port = int(server.base_url.rsplit(":", 1)[1])
    # The process writes its log through its own copy of the file descriptor.
    with open(server.data_dir / "daphne.log", "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "memoryhub.asgi:application"],
            cwd=ROOT,
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )


def wait_until_serving(server: McpServer, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{server.base_url}/healthz", timeout=2):
                return
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"daphne did not start; see {server.data_dir / 'daphne.log'}")


def new_server(data_dir: Path, **extra_env: str) -> McpServer:
    env = server_env(data_dir, **extra_env)
    return McpServer(base_url=f"http://127.0.0.1:{free_port()}", data_dir=data_dir, env=env)


def start_server(data_dir: Path, **extra_env: str) -> tuple[McpServer, subprocess.Popen[str]]:
    server = new_server(data_dir, **extra_env)
    prepare_database(server)
    process = launch_daphne(server)
    wait_until_serving(server, process)
    return server, process


@contextmanager
def running_servers(data_dir: Path, count: int = 1, **extra_env: str) -> Iterator[list[McpServer]]:
    """`count` server processes on the one database in `data_dir`, stopped on exit. The database
    is prepared once (every process has the same persona keys) and the processes start together."""
    started: list[tuple[McpServer, subprocess.Popen[str]]] = []
    # On PostgreSQL the database is dropped with the processes when this call made it.
    owned = databases.BASE_URL is not None and data_dir.resolve() not in _server_databases
    try:
        servers = [new_server(data_dir, **extra_env) for _ in range(count)]
        prepare_database(servers[0])
        for server in servers:
            server.keys = dict(servers[0].keys)
            started.append((server, launch_daphne(server)))
        for server, process in started:
            wait_until_serving(server, process)
        yield servers
    finally:
        for _, process in started:
            process.terminate()
        for _, process in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if owned:
            release_database(data_dir)


@pytest.fixture(scope="session")
def mcp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpServer]:
    with running_servers(tmp_path_factory.mktemp("mcp-server")) as (server,):
        yield server


def check_declaration(tool: Any) -> None:
    """What every declared tool must have: a title, a description, valid input and output
    schemas (outputs not closed with additionalProperties), and a description per argument."""
    import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev dependencies

    assert tool.title.strip()
    assert tool.description.strip()
    jsonschema.Draft202012Validator.check_schema(tool.input_schema)
    jsonschema.Draft202012Validator.check_schema(tool.output_schema)
    assert "additionalProperties" not in tool.output_schema
    for prop, schema in tool.input_schema["properties"].items():
        assert schema.get("description", "").strip(), f"{tool.name}.{prop} has no description"
