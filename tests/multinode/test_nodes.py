"""Three nodes on hosts of their own, one PostgreSQL, one Redis, nginx in front (conftest.py):
what one node writes, the others find; a node killed mid-write loses nothing it acknowledged and
the others keep serving."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import psycopg
import pytest

from tests.mcp_endpoint.conftest import McpServer
from tests.multinode.conftest import Machines, SharedDatabase

pytestmark = pytest.mark.postgres_only(reason="several hosts share the store only through PostgreSQL")

# A failure detector for "it never arrived", not a performance limit (bench/multinode.py measures).
WAIT = 15.0


@pytest.fixture
def http() -> Iterator[httpx2.Client]:
    with httpx2.Client(timeout=60) as client:
        yield client


def post(server: McpServer, http: httpx2.Client, path: str, body: dict[str, Any], persona: str = "alice") -> Any:
    response = http.post(f"{server.base_url}{path}", json=body, headers=server.headers(persona))
    assert response.status_code == 200, response.text
    return response.json()


def search(server: McpServer, http: httpx2.Client, namespace: str, query: str) -> list[str]:
    found = post(server, http, "/v1/memory/search", {"namespace": namespace, "query": query})
    return [hit["text"] for hit in found["results"]]


def by_meaning(server: McpServer, http: httpx2.Client, namespace: str, query: str) -> list[str]:
    """The MemOS API's embedding mode: vectors only, so a hit is found by meaning alone."""
    body = {
        "user_id": "u1",
        "memory_type": "text_mem",
        "mem_cube_ids": [namespace],
        "search_query": query,
        "search_type": "embedding",
    }
    found = post(server, http, "/product/get_all", body)
    return [memory["memory"] for cube in found["data"] for memory in cube["memories"]]


def test_every_node_is_its_own_host_with_its_own_data_directory(machines: Machines, http: httpx2.Client) -> None:
    addresses = {node.host.address for node in machines.nodes}
    assert len(addresses) == 3
    assert len({node.data_dir for node in machines.nodes}) == 3
    for node in machines.nodes:
        health = http.get(f"{node.base_url}/healthz").json()
        assert health["status"] == "ok", health
        assert health["database"]["engine"] == "postgresql"
        # The node reaches the database through its own link, not this machine's loopback.
        assert node.env["MEMORYHUB_DATABASE_URL"].startswith(f"postgres://postgres@{node.host.gateway}:")


def test_a_write_through_one_node_is_found_through_the_others_by_keyword_and_by_meaning(
    machines: Machines, http: httpx2.Client
) -> None:
    writer, *readers = machines.servers
    namespace = writer.namespace("alice")
    text = "The greenhouse tomatoes need water every second morning"
    post(writer, http, "/v1/memory/write", {"namespace": namespace, "text": text})
    for reader in readers:
        # One shared store: the first read after the acknowledgement finds it.
        assert search(reader, http, namespace, "greenhouse tomatoes") == [text]
    for reader in readers:
        # No word in common: only the vector side can find it, through the node's own index,
        # which learns of the new vector from the change log.
        deadline = time.monotonic() + WAIT
        while by_meaning(reader, http, namespace, "when do the plants under glass get watered") != [text]:
            assert time.monotonic() < deadline, f"{reader.base_url} never found it by meaning"
            time.sleep(0.05)


def test_tenants_stay_apart_across_nodes(machines: Machines, http: httpx2.Client) -> None:
    alice_node, bob_node, _ = machines.servers
    namespace = alice_node.namespace("alice")
    post(alice_node, http, "/v1/memory/write", {"namespace": namespace, "text": "alice's private plan"})
    response = http.post(
        f"{bob_node.base_url}/v1/memory/search",
        json={"namespace": namespace, "query": "private plan"},
        headers=bob_node.headers("bob"),
    )
    assert response.status_code == 403


def acknowledged_rows(database: SharedDatabase, ids: list[int]) -> set[int]:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{database.name}") as connection:
        rows = connection.execute("SELECT id FROM graph_observation WHERE id = ANY(%s)", [ids]).fetchall()
    return {row[0] for row in rows}


def test_a_node_killed_mid_write_loses_no_acknowledged_write_and_the_others_keep_serving(
    machines: Machines, shared_database: SharedDatabase
) -> None:
    """Writers go through nginx; node 0 is SIGKILLed while they write. Every write that was
    answered 200 is in the database afterwards; writes after the kill are answered by the others."""
    proxy = machines.through_proxy
    namespace = proxy.namespace("alice")
    acknowledged: list[tuple[float, int]] = []
    refused: list[int] = []
    stop = threading.Event()
    counter = itertools.count()

    def write() -> None:
        with httpx2.Client(timeout=30) as client:
            while not stop.is_set():
                n = next(counter)
                try:
                    response = client.post(
                        f"{proxy.base_url}/v1/memory/write",
                        json={"namespace": namespace, "text": f"durable note number {n}"},
                        headers=proxy.headers("alice"),
                    )
                except httpx2.HTTPError:
                    refused.append(n)
                    continue
                if response.status_code == 200:
                    acknowledged.append((time.monotonic(), int(response.json()["id"].removeprefix("mem_"))))
                else:
                    # A request in flight on the killed node: nginx answers 502, never 200.
                    refused.append(n)

    writers = [threading.Thread(target=write) for _ in range(4)]
    for thread in writers:
        thread.start()
    try:
        deadline = time.monotonic() + WAIT
        while len(acknowledged) < 40:
            assert time.monotonic() < deadline, "the writers made no progress"
            time.sleep(0.02)
        killed_at = time.monotonic()
        machines.nodes[0].kill()
        deadline = time.monotonic() + WAIT
        while sum(1 for at, _ in acknowledged if at > killed_at + 0.5) < 40:
            assert time.monotonic() < deadline, "the surviving nodes did not keep serving writes"
            time.sleep(0.02)
    finally:
        stop.set()
        for thread in writers:
            thread.join(timeout=60)
        # Later tests of the package get all three nodes again.
        machines.nodes[0].start()

    ids = [row_id for _, row_id in acknowledged]
    assert len(ids) == len(set(ids))
    assert acknowledged_rows(shared_database, ids) == set(ids)
    survivor = machines.servers[1]
    with httpx2.Client(timeout=60) as http:
        assert search(survivor, http, namespace, "durable note number")
