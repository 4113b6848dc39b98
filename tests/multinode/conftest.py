"""Several machines, one memory: server nodes on hosts of their own (network namespaces, see
hosts.py) sharing one PostgreSQL database and one Redis, behind nginx.

PostgreSQL, Redis, nginx and socat are real and required: without them these tests fail, never
skip. They use Redis database 7 unless MEMORYHUB_MULTINODE_REDIS_DB names another, and a
PostgreSQL database of their own, made here and dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from bench.hosts import Node, Proxy, nodes_behind_nginx
from tests.cluster.conftest import require_redis
from tests.mcp_endpoint.conftest import McpServer, fresh_database_template

REDIS_DB = int(os.environ.get("MEMORYHUB_MULTINODE_REDIS_DB", "7"))
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SharedDatabase:
    name: str
    keys: dict[str, str]

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:5432/{self.name}"


@pytest.fixture(scope="package")
def shared_database() -> Iterator[SharedDatabase]:
    """A migrated PostgreSQL database with a key per persona (a copy of the suite's template,
    tests/mcp_endpoint/conftest.py), dropped at the end."""
    template = fresh_database_template()
    name = f"mh_multinode_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.database}"')
    try:
        yield SharedDatabase(name, dict(template.keys))
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Machines:
    nodes: list[Node]
    proxy: Proxy
    servers: list[McpServer]
    through_proxy: McpServer


@pytest.fixture(scope="package")
def machines(tmp_path_factory: pytest.TempPathFactory, shared_database: SharedDatabase) -> Iterator[Machines]:
    """Three nodes on hosts of their own, one database, one Redis, nginx in front."""
    require_redis(f"redis://127.0.0.1:6379/{REDIS_DB}")
    base = tmp_path_factory.mktemp("multinode")
    with nodes_behind_nginx(
        base,
        3,
        database=shared_database.name,
        redis_db=REDIS_DB,
        proxy_port=free_port(),
        # Published marketplace agents answer with the extractive provider: no LLM involved.
        MEMORYHUB_MARKETPLACE_HEARTBEAT_SECONDS="1",
        MEMORYHUB_MCP_KEEPALIVE_SECONDS="1",
        # As the suite's other servers (tests/mcp_endpoint/conftest.py server_env).
        MEMORYHUB_EMBED_WORKER="thread",
    ) as (nodes, proxy):
        servers = [
            McpServer(base_url=node.base_url, data_dir=node.data_dir, env=node.env, keys=dict(shared_database.keys))
            for node in nodes
        ]
        through_proxy = McpServer(
            base_url=proxy.base_url, data_dir=base, env=nodes[0].env, keys=dict(shared_database.keys)
        )
        yield Machines(nodes, proxy, servers, through_proxy)
