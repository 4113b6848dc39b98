# Chinese text is written with its own full-width punctuation.
# ruff: noqa: RUF001
"""Extraction (memory/extraction.py) through the runner on the real SQLite store, with a real local
OpenAI-compatible HTTP server standing in for the model (tests/fake_llm.py; its answers from the
rule-based stand-in, bench/llm_standin.py, unless a test says otherwise).

The flow: `infer: true` stores the message and queues a job in the same transaction; a drain asks
for facts, then for decisions against the nearest current memories, and applies ADD / UPDATE /
INVALIDATE / NOOP with lineage (sourceId, extractedBy) and history (operation memory_extract, the
writer's key). A model that fails (500), is slow (past the timeout) or answers malformed JSON
fails the attempt, the job is retried later and the message is kept; without a model, or without
`infer`, nothing calls one. Two keys never see each other's jobs or facts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from access.operations import perform
from access.permissions import Access
from bench import llm_standin
from graph import validity
from graph.sql import db
from kernel import metrics
from memory import extraction, llm, operations
from memory.services import NewMemory
from memory.wire import parse_memory_id
from tests.conftest import ALICE, BOB, Persona
from tests.fake_llm import FakeLLM
from vectors import backlog

pytestmark = pytest.mark.django_db

MODEL = "standin-1"


@pytest.fixture
def model(fake_llm: FakeLLM) -> Iterator[FakeLLM]:
    """The stand-in model configured for extraction."""
    fake_llm.answer = llm_standin.answer
    with override_settings(
        MEMORYHUB_LLM_URL=fake_llm.url,
        MEMORYHUB_LLM_MODEL=MODEL,
        MEMORYHUB_LLM_TIMEOUT_SECONDS=5,
        MEMORYHUB_EXTRACTION_MAX_ATTEMPTS=3,
    ):
        yield fake_llm


def access_of(persona: Persona, surface: str = "mcp") -> Access:
    return dataclasses.replace(persona.key.to_access(), surface=surface)


def write(
    access: Access, *texts: str, namespace: str = ALICE, infer: Any = True, actor: str = ""
) -> list[dict[str, Any]]:
    written: list[dict[str, Any]] = perform(
        access,
        operations.WRITE,
        namespace=namespace,
        memories=[NewMemory(text=text, actor_id=actor) for text in texts],
        infer=infer,
    )
    return written


def search(access: Access, query: str, namespace: str = ALICE) -> list[dict[str, Any]]:
    backlog.drain()
    found: list[dict[str, Any]] = perform(access, operations.SEARCH, namespace=namespace, query=query, top_k=10)[
        "results"
    ]
    return found


def jobs() -> list[dict[str, Any]]:
    rows = db().execute(
        "SELECT source_id, namespace_id, attempts, last_error, failed_at, facts, key_prefix "
        "FROM memory_pendingextraction ORDER BY id"
    )
    names = ("source_id", "namespace_id", "attempts", "last_error", "failed_at", "facts", "key_prefix")
    return [dict(zip(names, row, strict=True)) for row in rows]


def extracted(source: str) -> list[dict[str, Any]]:
    """The memories extracted from message `source` (mem id), current or not, oldest first."""
    rows = db().execute(
        "SELECT id, body, extracted_by, valid_to, supersedes_id FROM graph_observation WHERE source_id = ? ORDER BY id",
        (parse_memory_id(source),),
    )
    return [
        {"id": f"mem_{ident}", "text": body, "extractedBy": by, "validTo": to, "supersedes": sup}
        for ident, body, by, to, sup in rows
    ]


def is_current(mem: str) -> bool:
    ident = parse_memory_id(mem)
    return ident in validity.valid_ids(validity.OBSERVATIONS, [ident], validity.CURRENT)


def history(access: Access, mem: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = perform(access, operations.HISTORY, id=mem)["versions"]
    return found


def calls(fake: FakeLLM) -> list[str]:
    """Which call each request was: the schema it asked for."""
    return [body["response_format"]["json_schema"]["name"] for body in fake.requests]


# --- infer on the write ---------------------------------------------------------------------------


def test_infer_queues_a_job_with_the_message_in_one_transaction(model, alice_key):
    access = access_of(alice_key)
    (written,) = write(access, "Dana's team lead is Priya.")
    assert written["inferred"] == "queued"
    assert written["duplicateOf"] is None
    (job,) = jobs()
    assert job["source_id"] == parse_memory_id(written["id"])
    assert job["attempts"] == 0
    assert job["failed_at"] is None
    assert job["key_prefix"] == alice_key.key.prefix
    # The message is a memory at once, before any model call.
    assert model.requests == []
    assert [hit["id"] for hit in search(access, "Dana team lead")] == [written["id"]]


def test_without_infer_nothing_is_queued_and_nothing_calls_the_model(model, alice_key):
    access = access_of(alice_key)
    (written,) = write(access, "Dana's team lead is Priya.", infer=False)
    assert "inferred" not in written
    assert jobs() == []
    assert extraction.drain() == 0
    assert model.requests == []


def test_without_a_model_infer_is_accepted_and_disabled(fake_llm, alice_key):
    with override_settings(MEMORYHUB_LLM_URL=None, MEMORYHUB_LLM_MODEL=None):
        assert not llm.enabled()
        (written,) = write(access_of(alice_key), "Dana's team lead is Priya.")
        assert written["inferred"] == "disabled"
        assert jobs() == []
        assert extraction.drain() == 0
    assert fake_llm.requests == []


def test_infer_must_be_a_boolean(model, alice_key):
    from kernel.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="infer"):
        write(access_of(alice_key), "x y z", infer="yes")
    assert jobs() == []


# --- the decisions --------------------------------------------------------------------------------


def test_add_then_update_then_noop_then_invalidate(model, alice_key):
    access = access_of(alice_key)
    (first,) = write(access, "Dana's team lead is Priya.")
    assert extraction.drain() == 1
    # No memory near: the fact is added without a second call.
    assert calls(model) == ["memoryhub_facts"]
    (fact,) = extracted(first["id"])
    assert fact["text"] == "Dana's team lead is Priya."
    assert fact["extractedBy"] == MODEL
    assert fact["validTo"] is None
    assert jobs() == []

    (second,) = write(access, "Dana's team lead is Marco.")
    assert extraction.drain() == 1
    assert calls(model) == ["memoryhub_facts", "memoryhub_facts", "memoryhub_decisions"]
    shown = model.requests[-1]["messages"][-1]["content"]
    assert fact["id"] in shown
    assert first["id"] in shown
    assert second["id"] not in shown
    # The stand-in UPDATEs the first memory stating the old value and INVALIDATEs the other.
    (successor,) = extracted(second["id"])
    assert successor["text"] == "Dana's team lead is Marco."
    assert successor["supersedes"] in (parse_memory_id(fact["id"]), parse_memory_id(first["id"]))
    assert not is_current(fact["id"])
    assert not is_current(first["id"])
    assert is_current(successor["id"])
    assert is_current(second["id"])
    # Current reads (memory.selectors) leave the closed ones out.
    hits = [hit for hit in search(access, "Who is Dana's team lead?") if is_current(hit["id"])]
    assert {hit["id"] for hit in hits} == {successor["id"], second["id"]}
    assert all("Marco" in hit["text"] for hit in hits)

    # The same fact again, in a message that repeats the last one: the repeat is not stored, but
    # its message is extracted again; its fact is a mention of what already says it.
    (third,) = write(access, "Indeed. Dana's team lead is Marco.")
    assert third["duplicateOf"] == second["id"]
    assert third["inferred"] == "queued"
    assert extraction.drain() == 1
    assert extracted(second["id"]) == [successor]
    mentions = [v for v in history(access, successor["id"]) if v["action"] == "mention"]
    assert mentions
    assert mentions[0]["operation"] == "memory_extract"

    # Leaving: the job fact is closed, not deleted.
    (job_fact_message,) = write(access, "Dana works at Acme.")
    extraction.drain()
    (job_fact,) = extracted(job_fact_message["id"])
    (left,) = write(access, "Dana no longer works at Acme.")
    extraction.drain()
    assert not is_current(job_fact["id"])
    assert not is_current(job_fact_message["id"])
    assert extracted(left["id"]) == []
    assert (
        db()
        .execute("SELECT count(*) FROM graph_observation WHERE id = ?", (parse_memory_id(job_fact["id"]),))
        .fetchone()[0]
        == 1
    )
    closes = [v for v in history(access, job_fact["id"]) if v["action"] == "close"]
    assert closes
    assert closes[0]["operation"] == "memory_extract"
    assert closes[0]["surface"] == "system"
    assert closes[0]["key"] == f"key:{alice_key.key.prefix}"


def test_history_of_extracted_facts_names_the_operation_and_the_writer(model, alice_key):
    access = access_of(alice_key)
    (message,) = write(access, "Dana lives in Berlin.")
    extraction.drain()
    (fact,) = extracted(message["id"])
    (created,) = history(access, fact["id"])
    assert created["action"] == "create"
    assert created["operation"] == "memory_extract"
    assert created["surface"] == "system"
    assert created["key"] == f"key:{alice_key.key.prefix}"
    assert created["userId"] == alice_key.user.pk
    (moved,) = write(access, "Dana moved to Paris.")
    extraction.drain()
    (successor,) = extracted(moved["id"])
    closes = [v for v in history(access, fact["id"]) if v["action"] == "close"]
    assert len(closes) == 1
    assert closes[0]["operation"] == "memory_extract"
    # The successor's validity starts when its message was said; the old one ends there.
    start = validity.starts([parse_memory_id(moved["id"])])[parse_memory_id(moved["id"])]
    assert validity.starts([parse_memory_id(successor["id"])])[parse_memory_id(successor["id"])] == start


def test_chinese_messages(model, alice_key):
    access = access_of(alice_key)
    (first,) = write(access, "你好！Dana的团队负责人是Priya。")
    extraction.drain()
    assert [f["text"] for f in extracted(first["id"])] == ["Dana的团队负责人是Priya。"]
    (second,) = write(access, "Dana的团队负责人是Marco。")
    extraction.drain()
    (successor,) = extracted(second["id"])
    assert successor["supersedes"] is not None
    current = [hit for hit in search(access, "Dana的团队负责人") if is_current(hit["id"])]
    assert current
    assert all("Marco" in hit["text"] for hit in current)


def test_a_message_with_nothing_to_remember_ends_its_job(model, alice_key):
    (message,) = write(access_of(alice_key), "Is it raining?")
    assert extraction.drain() == 1
    assert jobs() == []
    assert extracted(message["id"]) == []
    assert calls(model) == ["memoryhub_facts"]


def test_jobs_of_a_namespace_run_in_order(model, alice_key):
    """Two messages queued before any drain: the later fact is not shown to the earlier job."""
    access = access_of(alice_key)
    (first,) = write(access, "Dana lives in Rome.")
    (second,) = write(access, "Dana lives in Oslo.")
    assert extraction.drain() == 2
    (rome,) = extracted(first["id"])
    (oslo,) = extracted(second["id"])
    assert not is_current(rome["id"])
    assert is_current(oslo["id"])


def test_request_carries_a_json_schema_and_the_prompt(model, alice_key):
    write(access_of(alice_key), "Dana works at Globex.")
    extraction.drain()
    (body,) = model.requests
    assert body["model"] == MODEL
    assert body["temperature"] == 0
    assert body["stream"] is False
    schema = body["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert schema["schema"]["required"] == ["facts"]
    assert "<message>\nDana works at Globex.\n</message>" in body["messages"][-1]["content"]


def test_the_operator_replaces_the_prompt(model, alice_key, tmp_path):
    (tmp_path / "extract.md").write_text("Facts of [[{{message}}]] said by {{role}} ({{actor}}) at {{time}}.")
    with override_settings(MEMORYHUB_EXTRACTION_PROMPT_DIR=str(tmp_path)):
        write(access_of(alice_key), "Dana works at Globex.", actor="dana")
        extraction.drain()
    prompt = model.requests[0]["messages"][-1]["content"]
    assert prompt.startswith("Facts of [[Dana works at Globex.]] said by user (dana) at 20")


def test_bad_decisions_are_skipped_and_logged(model, alice_key, caplog):
    access = access_of(alice_key)
    (first,) = write(access, "Dana works at Acme.")
    extraction.drain()

    def answer(body: dict[str, Any]) -> str:
        if body["response_format"]["json_schema"]["name"] == "memoryhub_facts":
            return json.dumps({"facts": ["Dana works at Initech."]})
        return json.dumps(
            {
                "decisions": [
                    {"event": "UPDATE", "fact": "Dana works at Initech.", "id": "mem_999999"},  # not shown
                    {"event": "DELETE", "fact": "", "id": first["id"]},  # applied as INVALIDATE
                    {"event": "SHOUT", "fact": "x", "id": ""},
                ]
            }
        )

    model.answer = answer
    (second,) = write(access, "Dana works at Initech now.")
    extraction.drain()
    assert jobs() == []
    assert not is_current(first["id"])  # the DELETE closed it; nothing was deleted
    assert extracted(second["id"]) == []
    assert "names no memory the model was shown" in caplog.text
    assert "unknown event" in caplog.text


# --- failures: nothing is lost ----------------------------------------------------------------------


def test_a_failing_model_is_retried_and_nothing_is_lost(model, alice_key):
    access = access_of(alice_key)
    model.fail_status, model.fail_times = 500, 1
    (message,) = write(access, "Dana works at Globex.")
    assert extraction.drain() == 1
    (job,) = jobs()
    assert job["attempts"] == 1
    assert job["failed_at"] is None
    assert "HTTP 500" in job["last_error"]
    assert "simulated provider failure" in job["last_error"]
    # Waiting out its backoff: a plain drain leaves it; one that ignores backoff retries it.
    assert extraction.drain() == 0
    assert extraction.drain(ignore_backoff=True) == 1
    assert jobs() == []
    assert [f["text"] for f in extracted(message["id"])] == ["Dana works at Globex."]
    assert [hit["id"] for hit in search(access, "Dana Globex")][:2].count(message["id"]) == 1


def test_a_slow_model_times_out_and_is_retried(model, alice_key):
    access = access_of(alice_key)
    model.latency = 2.5
    with override_settings(MEMORYHUB_LLM_TIMEOUT_SECONDS=1):
        (message,) = write(access, "Dana works at Globex.")
        extraction.drain()
        (job,) = jobs()
        assert job["attempts"] == 1
        assert "did not answer within 1 seconds" in job["last_error"]
        model.latency = 0
        extraction.drain(ignore_backoff=True)
    assert jobs() == []
    assert len(extracted(message["id"])) == 1


def test_malformed_answers_are_logged_retried_and_kept_as_failed(model, alice_key, caplog):
    access = access_of(alice_key)
    model.answer = "Sure! Here are the facts: Dana works at Globex."
    (message,) = write(access, "Dana works at Globex.")
    for attempt in range(1, 4):
        extraction.drain(ignore_backoff=True)
        (job,) = jobs()
        assert job["attempts"] == attempt
        assert "not JSON" in job["last_error"]
    assert job["failed_at"] is not None  # out of attempts (3 here): kept, not retried
    assert extraction.drain(ignore_backoff=True) == 0
    assert "not JSON" in caplog.text
    # The message is untouched and found.
    assert search(access, "Dana Globex")[0]["id"] == message["id"]
    # The shape is checked too; a fenced or <think>-wrapped answer is fine.
    model.answer = '<think>hmm</think>```json\n{"facts": ["Dana works at Globex."]}\n```'
    assert extraction.retry() == 1
    assert extraction.drain() == 1
    assert jobs() == []
    assert len(extracted(message["id"])) == 1


def test_wrong_shape_is_malformed(model, alice_key):
    model.answer = json.dumps({"facts": "Dana works at Globex."})
    write(access_of(alice_key), "Dana works at Globex.")
    extraction.drain()
    (job,) = jobs()
    assert job["attempts"] == 1
    assert 'expected {"facts": [...]}' in job["last_error"]


def test_facts_are_kept_so_a_retry_only_decides(model, alice_key):
    access = access_of(alice_key)
    write(access, "Dana works at Acme.")
    extraction.drain()
    model.requests.clear()
    real = model.answer

    def failing_decisions(body: dict[str, Any]) -> str:
        if body["response_format"]["json_schema"]["name"] == "memoryhub_decisions":
            return "{not json"
        assert callable(real)
        return real(body)

    model.answer = failing_decisions
    (message,) = write(access, "Dana works at Initech.")
    extraction.drain()
    (job,) = jobs()
    assert json.loads(job["facts"]) == ["Dana works at Initech."]
    model.answer = real
    extraction.drain(ignore_backoff=True)
    assert calls(model) == ["memoryhub_facts", "memoryhub_decisions", "memoryhub_decisions"]
    assert len(extracted(message["id"])) == 1


def test_a_message_deleted_before_extraction_ends_its_job(model, alice_key):
    access = access_of(alice_key)
    (message,) = write(access, "Dana works at Globex.")
    perform(access, operations.DELETE, id=message["id"])
    assert extraction.drain() == 1
    assert jobs() == []
    assert model.requests == []


def test_a_job_claimed_by_a_process_that_died_is_taken_over(model, alice_key):
    """A claim whose lease ran out (its process was killed) is claimed again; the dead claim
    cannot apply anything after that."""
    (message,) = write(access_of(alice_key), "Dana works at Globex.")
    dead = extraction._claim()
    assert dead is not None
    assert extraction._claim() is None
    db().execute("UPDATE memory_pendingextraction SET claimed_until = '2000-01-01 00:00:00'")
    assert extraction.drain() == 1
    assert len(extracted(message["id"])) == 1
    assert extraction.process(dead) is True  # its message is there, but its job is gone
    assert len(extracted(message["id"])) == 1


# --- tenants ---------------------------------------------------------------------------------------


def test_two_keys_never_meet(model, alice_key, bob_key):
    alice, bob = access_of(alice_key), access_of(bob_key)
    (a,) = write(alice, "Dana's team lead is Priya.")
    write(bob, "Dana's team lead is Priya.", namespace=BOB)
    extraction.drain()
    (b2,) = write(bob, "Dana's team lead is Marco.", namespace=BOB)
    extraction.drain()
    # Bob's update touched only Bob's memories.
    (alice_fact,) = extracted(a["id"])
    assert is_current(alice_fact["id"])
    assert is_current(a["id"])
    assert a["id"] not in model.requests[-1]["messages"][-1]["content"]
    assert all(hit["namespace"] == ALICE for hit in search(alice, "Dana team lead"))
    assert {hit["id"] for hit in search(bob, "Dana team lead", namespace=BOB)} >= {b2["id"]}


def test_actors_in_one_namespace_are_kept_apart(model, alice_key):
    access = access_of(alice_key)
    (mine,) = write(access, "My city: Dana lives in Rome.", actor="u1")
    extraction.drain()
    (theirs,) = write(access, "Dana lives in Oslo.", actor="u2")
    extraction.drain()
    (rome,) = extracted(mine["id"])
    assert is_current(rome["id"])  # another actor's fact is not u1's to supersede
    assert len(extracted(theirs["id"])) == 1


# --- cost ------------------------------------------------------------------------------------------


def test_metrics_count_calls_tokens_decisions_and_the_backlog(model, alice_key):
    metrics.collector.reset()
    access = access_of(alice_key)
    write(access, "Dana works at Acme.")
    write(access, "Dana works at Initech.")
    text = metrics.render()
    assert "memoryhub_extraction_backlog_jobs 2" in text
    model.usage = {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}
    extraction.drain()
    model.fail_status, model.fail_times = 503, 1
    write(access, "Dana lives in Rome.")
    extraction.drain()
    text = metrics.render()
    assert 'memoryhub_llm_calls_total{purpose="extract",outcome="ok"} 2' in text
    assert 'memoryhub_llm_calls_total{purpose="decide",outcome="ok"} 1' in text
    assert 'memoryhub_llm_calls_total{purpose="extract",outcome="error"} 1' in text
    assert 'memoryhub_llm_tokens_total{purpose="extract",kind="prompt"} 200' in text
    assert 'memoryhub_llm_tokens_total{purpose="extract",kind="completion"} 14' in text
    assert 'memoryhub_llm_tokens_total{purpose="decide",kind="prompt"} 100' in text
    assert 'memoryhub_extraction_decisions_total{decision="add"} 1' in text
    assert 'memoryhub_extraction_decisions_total{decision="update"} 1' in text
    assert "memoryhub_extraction_backlog_jobs 1" in text
    assert "memoryhub_extraction_backlog_failing_jobs 1" in text
    health = extraction.health()
    assert health.pop("oldest_seconds") >= 0
    assert health == {"ok": True, "enabled": True, "pending": 1, "failing": 1, "failed": 0}


def test_a_change_back_brings_the_old_value_back(model, alice_key):
    """Rome, then Oslo, then Rome again: the third message repeats the first (which dedupe may fold
    into it), and is extracted as said now, so Rome is current again and Oslo is past."""
    access = access_of(alice_key)
    write(access, "Dana lives in Rome.")
    extraction.drain()
    (oslo,) = write(access, "Dana lives in Oslo.")
    extraction.drain()
    (again,) = write(access, "Dana lives in Rome.")
    assert extraction.drain() == 1
    (oslo_fact,) = extracted(oslo["id"])
    assert not is_current(oslo_fact["id"])
    assert not is_current(oslo["id"])
    current = [hit["text"] for hit in search(access, "Where does Dana live?") if is_current(hit["id"])]
    assert "Dana lives in Rome." in current
    assert not any("Oslo" in text for text in current)
    assert again["inferred"] == "queued"
