"""Extraction end to end against a real server process (daphne) configured with a real local
OpenAI-compatible model server (the rule-based stand-in, bench/llm_standin.py): `infer: true`
over REST (/v1/memory/write), MCP (add_memory, add_message, with the official SDK) and MemOS
(/product/add, two user_ids), drained by the server's own extraction thread; the facts found by
search, the replaced ones closed with "close" versions in their history, and the cost in /metrics.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from bench import llm_standin
from tests.fake_llm import FakeLLM
from tests.mcp_endpoint.conftest import McpServer, running_servers
from tests.mcp_endpoint.test_vector_tools import Checked

MODEL = "standin-1"
# Waiting for the server's worker is bounded so a broken worker fails the test instead of hanging it.
DRAIN_DEADLINE = 120


@pytest.fixture(scope="module")
def model() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        server.answer = llm_standin.answer
        yield server


@pytest.fixture(scope="module")
def server(model: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpServer]:
    with running_servers(
        tmp_path_factory.mktemp("extraction-server"),
        MEMORYHUB_LLM_URL=model.url,
        MEMORYHUB_LLM_MODEL=MODEL,
        MEMORYHUB_LLM_TIMEOUT_SECONDS="10",
        MEMORYHUB_EXTRACTION_POLL_MS="100",
    ) as (running,):
        yield running


def post(server: McpServer, persona: str, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{server.base_url}{path}",
        data=json.dumps(body).encode(),
        headers={**server.headers(persona), "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def get(server: McpServer, path: str) -> str:
    with urllib.request.urlopen(f"{server.base_url}{path}", timeout=30) as response:
        return str(response.read().decode())


def queue(server: McpServer) -> dict[str, Any]:
    return dict(json.loads(get(server, "/healthz"))["extraction_backlog"])


def drained(server: McpServer) -> None:
    """Wait until the server's worker has worked on every queued message."""
    deadline = time.monotonic() + DRAIN_DEADLINE
    while queue(server)["pending"]:
        assert time.monotonic() < deadline, queue(server)
        time.sleep(0.05)


def versions(server: McpServer, persona: str, mem: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = post(server, persona, "/v1/memory/history", {"id": mem})["versions"]
    return found


def closed_by_extraction(server: McpServer, persona: str, mem: str) -> bool:
    return any(v["action"] == "close" and v["operation"] == "memory_extract" for v in versions(server, persona, mem))


def write(server: McpServer, persona: str, namespace: str, text: str, **extra: Any) -> dict[str, Any]:
    written: dict[str, Any] = post(
        server, persona, "/v1/memory/write", {"namespace": namespace, "text": text, "infer": True, **extra}
    )
    return written


def search(server: McpServer, persona: str, namespace: str, query: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = post(
        server, persona, "/v1/memory/search", {"namespace": namespace, "query": query, "topK": 10}
    )["results"]
    return found


def test_rest_add_update_and_history(server: McpServer, model: FakeLLM) -> None:
    ns, other = server.namespace("alice"), server.namespace("bob")
    first = write(server, "alice", ns, "Dana's team lead is Priya.")
    assert first["inferred"] == "queued"
    # Bob's namespace, the same words: never shown to Alice's jobs, never changed by them.
    bobs = write(server, "bob", other, "Dana's team lead is Priya.")
    drained(server)
    priya = [hit for hit in search(server, "alice", ns, "Dana's team lead") if hit["id"] != first["id"]]
    assert [hit["text"] for hit in priya] == ["Dana's team lead is Priya."]
    (created,) = versions(server, "alice", priya[0]["id"])
    assert created["operation"] == "memory_extract"
    assert created["surface"] == "system"
    assert created["key"].startswith("key:")

    second = write(server, "alice", ns, "Dana's team lead is Marco.")
    drained(server)
    hits = search(server, "alice", ns, "Who is Dana's team lead?")
    assert second["id"] in {hit["id"] for hit in hits}
    assert any(hit["text"] == "Dana's team lead is Marco." and hit["id"] != second["id"] for hit in hits)
    # The fact and the message that said Priya are closed (kept, with a "close" version each);
    # a current read leaves them out.
    for old in (first["id"], priya[0]["id"]):
        assert closed_by_extraction(server, "alice", old)
    assert not [hit for hit in hits if "Priya" in hit["text"]]
    (fact,) = [hit for hit in hits if hit["id"] != second["id"]]
    assert fact["sourceId"] == second["id"]
    assert fact["extractedBy"] == MODEL
    assert fact["supersedes"] in (first["id"], priya[0]["id"])
    # The past is still there for asOf and includeExpired reads.
    past = post(
        server,
        "alice",
        "/v1/memory/search",
        {"namespace": ns, "query": "Dana's team lead", "topK": 10, "includeExpired": True},
    )["results"]
    assert {first["id"], priya[0]["id"]} <= {hit["id"] for hit in past if not hit["current"]}
    # Bob's memories were not touched.
    assert not closed_by_extraction(server, "bob", bobs["id"])
    assert all(hit["namespace"] == other for hit in search(server, "bob", other, "Dana's team lead"))


def test_without_infer_nothing_calls_the_model(server: McpServer, model: FakeLLM) -> None:
    drained(server)
    before = len(model.requests)
    written = post(
        server, "alice", "/v1/memory/write", {"namespace": server.namespace(), "text": "Dana lives in Rome."}
    )
    assert "inferred" not in written
    assert queue(server)["pending"] == 0
    assert len(model.requests) == before


@pytest.mark.anyio
async def test_mcp_add_memory_and_add_message(server: McpServer) -> None:
    ns = server.namespace("alice")
    async with server.client("alice", namespace=ns) as client:
        tools = await Checked.of(client)
        added = await tools.ok("add_memory", {"memory_content": "Dana works at Acme.", "infer": True})
        assert added["inferred"] == "queued"
        drained(server)
        recorded = await tools.ok(
            "add_message",
            {
                "conversation_first_message": "Hi",
                "messages": [
                    {"role": "user", "content": "Big news! Dana works at Globex."},
                    {"role": "assistant", "content": "Congratulations to Dana!"},
                ],
                "infer": True,
            },
        )
        assert recorded["inferred"] == "queued"
        assert recorded["added"] == 2
        drained(server)
        found = await tools.ok("search_memories", {"query": "Where does Dana work?", "cube_ids": ns, "top_k": 10})
        texts = {hit["text"]: hit["id"] for hit in found["results"]}
        assert "Dana works at Globex." in texts
        history = await tools.ok("memory_history", {"id": texts["Dana works at Globex."]})
        (created,) = history["versions"]
        assert created["operation"] == "memory_extract"
    # The add_memory text that said Acme is closed by the update (its fact too).
    assert closed_by_extraction(server, "alice", added["id"])


def test_memos_add_with_infer_keeps_two_users_apart(server: McpServer) -> None:
    added = post(
        server,
        "alice",
        "/product/add",
        {"user_id": "u1", "messages": [{"role": "user", "content": "Dana works at Acme."}], "infer": True},
    )
    assert added["code"] == 200
    (item,) = added["data"]
    assert item["inferred"] == "queued"
    post(
        server,
        "alice",
        "/product/add",
        {"user_id": "u2", "messages": [{"role": "user", "content": "Dana works at Globex."}], "infer": True},
    )
    drained(server)
    # u2's Globex does not replace u1's Acme: each user's facts are decided against their own.
    assert not closed_by_extraction(server, "alice", item["memory_id"])
    found = post(server, "alice", "/product/search", {"user_id": "u1", "query": "Where does Dana work?"})
    memories = [m for group in found["data"]["text_mem"] for m in group["memories"]]
    texts = [m["memory"] for m in memories]
    assert "Dana works at Acme." in texts
    assert not any("Globex" in text for text in texts)
    assert len([text for text in texts if text == "Dana works at Acme."]) == 2  # the message and its fact
    (fact,) = [m for m in memories if m["metadata"].get("source_id")]
    assert fact["metadata"]["source_id"] == item["memory_id"]
    assert fact["metadata"]["extracted_by"] == MODEL
    without = post(server, "alice", "/product/add", {"user_id": "u1", "messages": "Dana lives in Rome."})
    assert "inferred" not in without["data"][0]


def test_metrics_and_health_show_the_cost_and_the_queue(server: McpServer) -> None:
    write(server, "alice", server.namespace(), "Dana lives in Oslo.")
    drained(server)
    assert queue(server) == {
        "ok": True,
        "enabled": True,
        "pending": 0,
        "failing": 0,
        "failed": 0,
        "oldest_seconds": 0.0,
    }
    text = get(server, "/metrics")
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if not line.startswith("#")
    }
    assert values['memoryhub_llm_calls_total{purpose="extract",outcome="ok"}'] >= 1
    assert values['memoryhub_llm_tokens_total{purpose="extract",kind="prompt"}'] > 0
    assert values['memoryhub_llm_tokens_total{purpose="extract",kind="completion"}'] > 0
    assert values['memoryhub_extraction_decisions_total{decision="add"}'] >= 1
    assert values["memoryhub_extraction_backlog_jobs"] == 0


def test_sigkill_loses_no_job(model: FakeLLM, tmp_path: Any) -> None:
    """The server is killed right after acknowledging a write with infer, and the drainer is killed
    in the middle of its model call: the job is still there, and the next drain extracts it."""
    import signal
    import subprocess
    import sys

    from tests.mcp_endpoint.conftest import ROOT, query, start_server

    running, process = start_server(
        tmp_path,
        MEMORYHUB_LLM_URL=model.url,
        MEMORYHUB_LLM_MODEL=MODEL,
        MEMORYHUB_EXTRACTION_WORKER="off",
        MEMORYHUB_EXTRACTION_LEASE_SECONDS="1",
    )
    try:
        written = write(running, "alice", running.namespace(), "Dana works at Initech.")
        assert written["inferred"] == "queued"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    model.latency = 30.0  # the drainer is killed while it waits for this answer
    before = len(model.requests)
    drainer = subprocess.Popen(
        [sys.executable, "manage.py", "drain_extractions"], cwd=ROOT, env=running.env, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + DRAIN_DEADLINE
        while len(model.requests) == before:
            assert time.monotonic() < deadline
            assert drainer.poll() is None
            time.sleep(0.05)
    finally:
        drainer.send_signal(signal.SIGKILL)
        drainer.wait(timeout=10)
    model.latency = 0.0

    # Its lease (1 s here) runs out; then a drain takes the job over.
    deadline = time.monotonic() + DRAIN_DEADLINE
    while "Worked on 1 " not in running.manage("drain_extractions").stdout:
        assert time.monotonic() < deadline
    ((pending,),) = query(running.env, "SELECT count(*) FROM memory_pendingextraction")
    facts = query(
        running.env, "SELECT body, extracted_by FROM graph_observation WHERE source_id = ?", (int(written["id"][4:]),)
    )
    assert pending == 0
    assert facts == [("Dana works at Initech.", MODEL)]
