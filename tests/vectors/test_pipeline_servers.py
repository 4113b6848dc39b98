"""The write pipeline with real server processes: a SIGKILL in the middle of a backlog, two
processes writing to and searching one namespace, and an embeddings provider (a real local HTTP
server) that fails and then recovers. In-process tests of the backlog: test_backlog.py."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.crash import Server
from tests.fake_embeddings import FakeEmbeddings, vector_of
from tests.mcp_endpoint.conftest import McpServer, release_database, running_servers, server_database
from tests.mcp_endpoint.conftest import query as query_database
from tests.postgres import databases

# Waiting for a drain is bounded so a broken drainer fails the test instead of hanging it.
DRAIN_DEADLINE = 180


def post(base_url: str, key: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base_url}{path}",
        data=json.dumps(body).encode(),
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return dict(json.loads(response.read()))


def get(base_url: str, path: str) -> str:
    with urllib.request.urlopen(f"{base_url}{path}", timeout=30) as response:
        return str(response.read().decode())


def backlog(base_url: str) -> dict[str, Any]:
    return dict(json.loads(get(base_url, "/healthz"))["embedding_backlog"])


def wait_for_empty_backlog(base_url: str) -> None:
    deadline = time.monotonic() + DRAIN_DEADLINE
    while backlog(base_url)["pending"]:
        assert time.monotonic() < deadline, backlog(base_url)
        time.sleep(0.1)


def metric(base_url: str, name: str) -> float:
    for line in get(base_url, "/metrics").splitlines():
        if line.startswith(f"memoryhub_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


def stored_state(env: dict[str, str]) -> tuple[dict[int, str], dict[int, bytes], int]:
    """({observation id: text}, {observation id: its vector blob}, pending rows), read from the
    database of the server with `env` (its SQLite file, or its PostgreSQL database)."""
    texts = dict(query_database(env, "SELECT id, body FROM graph_observation"))
    vectors = {
        owner: bytes(vector)
        for owner, vector in query_database(
            env, "SELECT owner_id, vector FROM vectors_embedding WHERE owner_kind = 'observation'"
        )
    }
    ((pending,),) = query_database(env, "SELECT count(*) FROM vectors_pending")
    return texts, vectors, int(pending)


def provider_env(provider: FakeEmbeddings, **extra: str) -> dict[str, str]:
    return {
        "MEMORYHUB_EMBEDDER": "openai",
        "MEMORYHUB_EMBEDDINGS_URL": provider.url,
        "MEMORYHUB_EMBEDDINGS_MODEL": "fake-embed",
        "MEMORYHUB_EMBEDDINGS_RETRIES": "0",
        **extra,
    }


def test_a_sigkill_in_the_middle_of_a_backlog_loses_nothing_and_leaves_nothing_unembedded(tmp_path: Path) -> None:
    with FakeEmbeddings() as provider:
        # A slow provider and small batches: the backlog is still draining, a batch claimed and in
        # flight, when the server is killed.
        provider.latency = 0.3
        server = Server(tmp_path, "async")
        server.env.update(
            provider_env(provider, MEMORYHUB_EMBED_BACKLOG_BATCH="8", MEMORYHUB_EMBED_BACKLOG_LEASE_SECONDS="2")
        )
        if databases.BASE_URL:  # the suite runs on PostgreSQL: the server gets a database of its own
            server.env["MEMORYHUB_DATABASE_URL"] = server_database(tmp_path)
        key = server.prepare()
        server.start()
        try:

            def write(n: int) -> str:
                text = f"note {n}: the build agent number {n} restarts nightly"
                return str(
                    post(server.base_url, key, "/v1/memory/write", {"namespace": "crash:ryw", "text": text})["id"]
                )

            with ThreadPoolExecutor(6) as pool:
                written = list(pool.map(write, range(120)))
            left = backlog(server.base_url)["pending"]
            assert left > 0  # the kill below lands in the middle of the backlog
            server.kill()
            texts, vectors, pending = stored_state(server.env)
            assert pending == left or pending > 0
            # Every acknowledged write survived the kill.
            assert {f"mem_{owner}" for owner in texts} >= set(written)

            provider.latency = 0.0
            server.start()
            wait_for_empty_backlog(server.base_url)
        finally:
            server.stop()
    try:
        texts, vectors, pending = stored_state(server.env)
    finally:
        release_database(tmp_path)
    assert pending == 0
    assert {f"mem_{owner}" for owner in texts} == set(written)
    assert set(vectors) == set(texts)  # nothing unembedded
    for owner, text in texts.items():
        expected = np.asarray(vector_of(text), dtype=np.float32)
        stored = np.frombuffer(vectors[owner], dtype="<f4")
        np.testing.assert_allclose(stored, expected / np.linalg.norm(expected), atol=1e-6)


def eval_pairs(count: int) -> list[tuple[str, str]]:
    """(memory, a paraphrase query for it) from bench/eval."""
    root = Path(__file__).resolve().parents[2] / "bench" / "eval"
    memories = {m["id"]: m["text"] for m in map(json.loads, (root / "memories.jsonl").read_text().splitlines())}
    pairs = [
        (memories[q["relevant"][0]], q["query"])
        for q in map(json.loads, (root / "queries.jsonl").read_text().splitlines())
        if q["category"] in ("paraphrase_en", "zh_to_en") and len(q["relevant"]) == 1
    ]
    return pairs[:count]


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory) -> Any:
    # The drainer in its own process, as a server runs it by default (the suite's servers use a thread).
    with running_servers(
        tmp_path_factory.mktemp("two-processes"), count=2, MEMORYHUB_EMBED_WORKER="process"
    ) as servers:
        yield servers


def test_two_processes_each_find_the_others_write_by_a_paraphrase_in_the_next_call(
    two_servers: list[McpServer],
) -> None:
    first, second = two_servers
    key = first.keys["alice"]
    pairs = eval_pairs(15)
    for n, (memory, query) in enumerate(pairs[:12]):
        writer, searcher = (first, second) if n % 2 == 0 else (second, first)
        # Each pair in a namespace of its own with three other memories: the written one is in the
        # top 3 only if it has its vector (paraphrases share few words with their memory).
        namespace = first.namespace("alice")
        for other, _ in pairs[n + 1 : n + 4]:
            post(searcher.base_url, key, "/v1/memory/write", {"namespace": namespace, "text": other})
        written = post(writer.base_url, key, "/v1/memory/write", {"namespace": namespace, "text": memory})
        found = post(searcher.base_url, key, "/v1/memory/search", {"namespace": namespace, "query": query, "topK": 3})
        assert written["id"] in [hit["id"] for hit in found["results"]], (memory, query, found)
    namespace = first.namespace("alice")
    # Bob's key reads nothing of Alice's namespace on either process.
    for server in two_servers:
        request = urllib.request.Request(
            f"{server.base_url}/v1/memory/search",
            data=json.dumps({"namespace": namespace, "query": "anything"}).encode(),
            headers={"X-API-Key": server.keys["bob"], "Content-Type": "application/json"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 403


@pytest.mark.anyio
async def test_over_mcp_a_memory_added_on_one_process_is_found_on_the_other_in_the_next_call(
    two_servers: list[McpServer],
) -> None:
    first, second = two_servers
    pairs = eval_pairs(40)[20:]
    async with first.client("alice") as writer, second.client("alice") as reader:
        for n, (memory, query) in enumerate(pairs[:8]):
            namespace = first.namespace("alice")  # of its own, with three other memories (see above)
            for other, _ in pairs[n + 1 : n + 4]:
                await reader.call_tool("add_memory", {"memory_content": other, "cube_id": namespace})
            added = await writer.call_tool("add_memory", {"memory_content": memory, "cube_id": namespace})
            assert not added.is_error, added
            found = await reader.call_tool("search_memories", {"query": query, "cube_ids": [namespace], "top_k": 3})
            assert not found.is_error, found
            ids = [hit["id"] for hit in found.structured_content["results"]]
            assert added.structured_content["id"] in ids, (memory, query, found.structured_content)


def test_a_failing_provider_is_retried_with_backoff_and_loses_nothing(tmp_path: Path) -> None:
    with FakeEmbeddings() as provider:
        provider.fail_times = 3
        env = provider_env(provider, MEMORYHUB_EMBED_RETRY_MAX_SECONDS="1", MEMORYHUB_EMBED_BACKLOG_POLL_MS="100")
        # The child process reports what it embedded to the server's /metrics (the default worker).
        env["MEMORYHUB_EMBED_WORKER"] = "process"
        with running_servers(tmp_path, **env) as (server,):
            key = server.keys["alice"]
            namespace = server.namespace("alice")
            texts = [f"outage note {n}: the cache node {n} was replaced" for n in range(5)]
            for text in texts:
                post(server.base_url, key, "/v1/memory/write", {"namespace": namespace, "text": text})
            wait_for_empty_backlog(server.base_url)
            # It failed three times (each attempt counted and shown), then embedded everything.
            assert metric(server.base_url, "embedding_failures_total") >= 3
            assert metric(server.base_url, "embedded_texts_total") == len(texts)
            assert metric(server.base_url, "embedding_backlog_texts") == 0
            attempts = [batch for batch in provider.inputs if any(t in texts for t in batch)]
            assert len(attempts) >= 4
            assert sorted(t for batch in attempts[3:] for t in batch) == sorted(texts)
            # Every text has its provider vector: a search by its own words finds it first.
            for text in texts:
                found = post(server.base_url, key, "/v1/memory/search", {"namespace": namespace, "query": text})
                assert found["results"][0]["text"] == text
            health = json.loads(get(server.base_url, "/healthz"))
            assert health["status"] == "ok"
            assert health["embedding_backlog"] == {"ok": True, "pending": 0, "oldest_seconds": 0.0, "failing": 0}
