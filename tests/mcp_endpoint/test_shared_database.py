"""Two server processes on one database see each other's vectors, at once and without a restart.

Each daphne process keeps its own in-memory indexes; only the SQLite file (its stored vectors and
change log) connects them. This is the scale-out shape of DESIGN.md with real processes.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.mcp_endpoint.conftest import McpServer, running_servers


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[McpServer]]:
    # Same directory: same database file.
    with running_servers(tmp_path_factory.mktemp("shared-db"), 2) as servers:
        yield servers


def post(server: McpServer, path: str, body: dict[str, Any], persona: str = "alice") -> dict[str, Any]:
    request = urllib.request.Request(
        f"{server.base_url}{path}",
        data=json.dumps(body).encode(),
        headers={**server.headers(persona), "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def search(server: McpServer, query: str, persona: str = "alice") -> list[str]:
    found = post(server, "/v1/memory/search", {"query": query, "topK": 5}, persona)
    return [hit["text"] for hit in found["results"]]


def test_a_memory_written_on_one_server_is_found_on_the_other_and_deleted_everywhere(two_servers):
    first, second = two_servers
    namespace = first.namespace("alice")
    # Both servers load their index for the namespace before the write, so the other one must
    # catch up through the change log rather than build fresh.
    post(first, "/v1/memory/write", {"namespace": namespace, "text": "The office plants need water on Fridays"})
    assert search(first, "when to water the plants")[0] == "The office plants need water on Fridays"
    assert search(second, "when to water the plants")[0] == "The office plants need water on Fridays"

    written = post(second, "/v1/memory/write", {"namespace": namespace, "text": "Parking is free after 6pm"})
    assert search(first, "where can I park for free in the evening")[0] == "Parking is free after 6pm"

    assert post(first, "/v1/memory/delete", {"id": written["id"]}) == {"deleted": True, "id": written["id"]}
    assert "Parking is free after 6pm" not in search(second, "where can I park for free in the evening")


def test_graph_facts_written_through_one_server_are_found_by_meaning_on_the_other(two_servers):
    first, second = two_servers
    post(
        first,
        "/v1/graph/create_entities",
        {"entities": [{"name": "Grace", "entityType": "person", "observations": ["invented the first compiler"]}]},
        persona="bob",
    )
    assert search(second, "who wrote an early compiler", persona="bob")[0] == "invented the first compiler"
    # ...and never for another tenant.
    assert "invented the first compiler" not in search(second, "who wrote an early compiler", persona="alice")
