"""How a server process holds its PostgreSQL connections, against a real server process.

- Requests borrow pooled connections (MEMORYHUB_PG_POOL_SIZE) instead of opening one each: the
  connection a REST request ran on is still open after it, and the next requests reuse it.
- A connection the database server drops (a restart, a failover, pg_terminate_backend) is
  replaced: REST requests never see it (the pool checks a connection before lending it), and the
  MCP transports' kept connection is reopened before the next call runs on it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.mcp_endpoint.conftest import McpServer, running_servers, stateless_call

pytestmark = pytest.mark.postgres_only(reason="PostgreSQL connections: pooling and lost connections")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpServer]:
    with running_servers(tmp_path_factory.mktemp("connections")) as (live,):
        yield live


def database(server: McpServer) -> psycopg.Connection[Any]:
    return psycopg.connect(server.env["MEMORYHUB_DATABASE_URL"], autocommit=True)


def backends(server: McpServer) -> dict[int, tuple[Any, str]]:
    """The server's connections: pid -> (when it connected, the last statement it ran)."""
    with database(server) as watcher:
        rows = watcher.execute(
            "SELECT pid, backend_start, query FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return {pid: (started, query) for pid, started, query in rows}


def post(server: McpServer, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return server.post_json(path, body)


def call_tool(server: McpServer, namespace: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """One stateless tools/call over Streamable HTTP (the 2026-07-28 envelope): its answer."""
    message, headers = stateless_call(name, arguments)
    request = urllib.request.Request(
        server.endpoint(namespace=namespace),
        data=json.dumps(message).encode(),
        headers={**server.headers("alice"), "Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as failed:
        return {"status": failed.code, "body": failed.read().decode()}


def test_requests_borrow_pooled_connections_instead_of_opening_their_own(server: McpServer) -> None:
    namespace = server.namespace("alice")
    marker = f"pooled-{time.monotonic_ns()}"
    assert post(server, "/v1/memory/write", {"namespace": namespace, "text": marker})[0] == 200
    before = backends(server)
    for _ in range(10):
        status, found = post(server, "/v1/graph/search_nodes", {"namespace": namespace, "query": marker})
        assert status == 200, found
    after = backends(server)
    # The connections the searches ran on were open before them and are open after them: none
    # was opened for a request and closed at its end (without the pool, each of the ten would be).
    searched = {pid for pid, (_, query) in after.items() if "graph_observation" in query}
    assert searched, after
    assert searched <= before.keys()
    assert {pid: after[pid][0] for pid in searched} == {pid: before[pid][0] for pid in searched}
    assert len(after) <= 10  # the pool's size: every connection of the process is the pool's


def test_connections_the_database_drops_are_replaced(server: McpServer) -> None:
    namespace = server.namespace("alice")
    assert post(server, "/v1/memory/write", {"namespace": namespace, "text": "before the failover"})[0] == 200
    first = call_tool(server, namespace, "get_entity", {"name": "nobody"})
    assert first["result"]["isError"] is True  # answered: no such entity
    with database(server) as admin:
        dropped = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert dropped is not None
    assert dropped[0] >= 2  # the pool's and the MCP transports' connections at least

    # REST: the pool checks a connection before lending it, so no request sees a dropped one.
    for _ in range(3):
        status, found = post(server, "/v1/graph/search_nodes", {"namespace": namespace, "query": "failover"})
        assert status == 200, found
    # MCP: its transports keep a connection; the server hung up on it while idle, so the next
    # call sees that and runs on a new one.
    for n in range(2):
        entities = [{"name": f"E{n}", "entityType": "t", "observations": []}]
        answer = call_tool(server, namespace, "create_entities", {"entities": entities})
        assert answer.get("result", {}).get("isError") is False, answer
    status, graph = post(server, "/v1/graph/open_nodes", {"namespace": namespace, "names": ["E0", "E1"]})
    assert status == 200
    assert [entity["name"] for entity in graph["entities"]] == ["E0", "E1"]
