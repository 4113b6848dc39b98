"""The embedding backlog on the real SQLite database (vectors/pending.py, vectors/backlog.py):
queueing in the write's transaction, leases, rewrites and deletes during a drain, failures with
backoff against a real local embeddings server, read-your-writes through the search operations,
vectors handed over with known_vectors, and the backlog in /healthz, /metrics and the admin.

With real server processes (a SIGKILL in the middle of a backlog, two processes, a provider that
fails then recovers): tests/vectors/test_pipeline_servers.py."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client, override_settings
from django.utils import timezone

from access.operations import perform
from graph.sql import db
from kernel.sql import POSTGRES, postgres_statement, stored_time
from memory.services import NewMemory
from tests.fake_embeddings import FakeEmbeddings, vector_of
from tests.threads import at_once
from vectors import backlog, store
from vectors.embedders import default_embedder
from vectors.embedding import known_vectors
from vectors.models import OwnerKind

pytestmark = pytest.mark.django_db


def _other_connection() -> Any:
    """A connection of "another process" to the test database (sqlite3's or psycopg's)."""
    if POSTGRES:
        connection.ensure_connection()
        return psycopg.connect(**connection.get_connection_params())
    return sqlite3.connect(str(settings.DATABASES["default"]["NAME"]), timeout=10)


def _aware(value: Any) -> datetime:
    """A stored time (text on SQLite, a datetime on PostgreSQL) as an aware datetime."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def _statement(sql: str) -> str:
    return postgres_statement(sql)[0] if POSTGRES else sql


def pending() -> list[tuple[int, int, int]]:
    """(owner id, attempts, claimed) of every pending row, by owner."""
    return [
        (owner, attempts, int(claimed is not None))
        for owner, attempts, claimed in db().execute(
            "SELECT owner_id, attempts, claimed_until FROM vectors_pending ORDER BY owner_id"
        )
    ]


def vectors() -> set[int]:
    model = default_embedder().model_id
    return {
        row[0]
        for row in db().execute(
            "SELECT owner_id FROM vectors_embedding WHERE owner_kind = 'observation' AND model = ?", (model,)
        )
    }


def remember(persona, *texts: str, namespace: str | None = None) -> list[int]:
    written = perform(
        persona.key.to_access(),
        "memory_write",
        namespace=namespace or persona.namespace,
        memories=[NewMemory(text=text) for text in texts],
    )
    return [int(item["id"].removeprefix("mem_")) for item in written]


def search(persona, query: str, **options) -> list[int]:
    found = perform(persona.key.to_access(), "memory_search", namespace=persona.namespace, query=query, **options)
    return [int(hit["id"].removeprefix("mem_")) for hit in found["results"]]


def test_a_write_queues_its_texts_in_its_own_transaction(alice_key):
    ids = remember(alice_key, "the backup runs at 02:00", "the office closes on Fridays")
    assert pending() == [(ids[0], 0, 0), (ids[1], 0, 0)]
    assert vectors() == set()

    # A write that fails leaves no pending row (nor text) behind.
    def failing_write() -> None:
        with transaction.atomic():
            remember(alice_key, "never committed")
            raise RuntimeError("the caller's transaction fails")

    with pytest.raises(RuntimeError):
        failing_write()
    assert [owner for owner, _, _ in pending()] == ids


def test_only_the_embedding_threads_run_at_a_lower_priority(alice_key):
    import os
    import threading

    remember(alice_key, *[f"text number {i} about the garden" for i in range(20)])
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert backlog.drain() == 20
    assert backlog._pool is not None
    theirs = list(backlog._pool.map(lambda _: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), range(8)))
    assert set(theirs) == {min(19, mine + backlog.EMBED_NICENESS)}
    # The thread that took the write lock to store them was not lowered.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


def test_a_drain_claims_embeds_stores_and_forgets(alice_key):
    ids = remember(alice_key, "alpha text", "beta text", "gamma text")
    assert backlog.drain(limit=2) == 3  # two batches
    assert pending() == []
    assert vectors() == set(ids)
    assert backlog.drain() == 0


def test_claimed_rows_are_left_to_their_claimer_until_the_lease_ends(alice_key):
    ids = remember(alice_key, "one", "two")
    claimed = backlog._claim(10)
    assert {row.owner_id for row in claimed} == set(ids)
    assert backlog._claim(10) == []  # another drainer sees nothing due
    # The claimer died: once its lease has passed, the rows are claimed again.
    db().execute("UPDATE vectors_pending SET claimed_until = ?", (stored_time(timezone.now() - timedelta(seconds=1)),))
    assert {row.owner_id for row in backlog._claim(10)} == set(ids)


def test_a_text_claimed_after_a_rewrite_is_embedded_with_its_new_text(alice_key):
    (owner,) = remember(alice_key, "the old text")
    claimed = backlog._claim(10)
    db().execute("UPDATE graph_observation SET body = 'the new text' WHERE id = ?", (owner,))
    # The rewrite queued it again (its trigger), with the claim reset.
    assert pending() == [(owner, 0, 0)]
    assert backlog._embed_and_store(claimed) == 1
    assert pending() == []
    stored = store.get(OwnerKind.OBSERVATION, owner)[0].vector
    np.testing.assert_allclose(stored, default_embedder().embed(["the new text"])[0], atol=1e-6)


@pytest.mark.django_db(transaction=True)
def test_a_text_rewritten_while_it_is_embedded_is_not_stored_with_its_old_vector(alice_key, provider):
    (owner,) = remember(alice_key, "the old text")

    def rewrite(texts: list[str]) -> None:
        # Another process rewrites the text while this one waits for the provider.
        if texts == ["the old text"]:
            with closing(_other_connection()) as other:
                other.execute(_statement("UPDATE graph_observation SET body = 'the new text' WHERE id = ?"), (owner,))
                other.commit()

    provider.before_answer = rewrite
    assert backlog.drain_once() == 1
    assert vectors() == set()  # the old text's vector was not stored
    assert pending() == [(owner, 0, 0)]  # and the new text waits
    assert backlog.drain() == 1
    assert provider.inputs[-1] == ["the new text"]
    assert vectors() == {owner}
    assert pending() == []


def test_a_deleted_text_leaves_the_backlog_with_it(alice_key):
    ids = remember(alice_key, "to be deleted", "to be kept")
    claimed = backlog._claim(10)
    perform(alice_key.key.to_access(), "memory_delete", id=f"mem_{ids[0]}")
    assert [owner for owner, _, _ in pending()] == [ids[1]]  # the delete's trigger
    assert backlog._embed_and_store(claimed) == 1
    assert vectors() == {ids[1]}
    assert pending() == []


@pytest.fixture
def provider() -> Iterator[FakeEmbeddings]:
    with (
        FakeEmbeddings() as fake,
        override_settings(
            MEMORYHUB_EMBEDDER="openai",
            MEMORYHUB_EMBEDDINGS_URL=fake.url,
            MEMORYHUB_EMBEDDINGS_MODEL="fake-embed",
            MEMORYHUB_EMBEDDINGS_RETRIES=0,
        ),
    ):
        yield fake


def test_an_embedder_failure_keeps_the_texts_and_backs_off(alice_key, provider):
    ids = remember(alice_key, "kept through an outage", "also kept")
    provider.failing = True
    assert backlog.drain() == 0  # the failed batch ends the run
    rows = list(
        db().execute(
            "SELECT attempts, next_attempt_at > ?, claimed_until, last_error FROM vectors_pending",
            (stored_time(timezone.now()),),
        )
    )
    assert len(rows) == 2
    for attempts, waits, claimed_until, last_error in rows:
        assert attempts == 1
        assert waits
        assert claimed_until is None
        assert "overloaded" in last_error
    # In its backoff the row is not due: a drain does not call the provider again.
    calls = len(provider.inputs)
    assert backlog.drain() == 0
    assert len(provider.inputs) == calls
    # The failure counts: the second attempt waits longer than the first.
    db().execute("UPDATE vectors_pending SET next_attempt_at = NULL")
    assert backlog.drain() == 0
    ((attempts, until),) = set(db().execute("SELECT attempts, next_attempt_at FROM vectors_pending"))
    assert attempts == 2
    assert (_aware(until) - timezone.now()).total_seconds() > 1.5
    state = backlog.state()
    assert (state.size, state.failing) == (2, 2)
    assert "overloaded" in state.last_error
    # The provider is back; an operator ends the backoff ("retry now" in the admin).
    provider.failing = False
    rows_ids = [row[0] for row in db().execute("SELECT id FROM vectors_pending")]
    assert backlog.retry_now(rows_ids) == 2
    assert backlog.drain() == 2
    assert pending() == []
    assert vectors() == set(ids)
    model = default_embedder().model_id
    np.testing.assert_allclose(
        store.get(OwnerKind.OBSERVATION, ids[0], model=model)[0].vector,
        np.asarray(vector_of("kept through an outage")) / np.linalg.norm(vector_of("kept through an outage")),
        atol=1e-6,
    )


def test_a_search_embeds_its_namespaces_pending_texts_first(alice_key, bob_key):
    mine = remember(alice_key, "Our deploys go out every Tuesday afternoon")
    theirs = remember(bob_key, "Bob's team deploys on Mondays")
    # Vector-only search: found only if the vector is there.
    assert search(alice_key, "When do we ship releases?", mode="vector", top_k=3) == mine
    # Alice's search embedded Alice's namespace only.
    assert [owner for owner, _, _ in pending()] == theirs
    assert search(alice_key, "When do we ship releases?", mode="keyword") == []  # no shared words


def test_catch_up_embeds_the_newest_first_up_to_its_cap(alice_key):
    ids = remember(alice_key, "first note", "second note", "third note")
    ns_id = int(db().execute("SELECT namespace_id FROM vectors_pending LIMIT 1").fetchone()[0])
    assert backlog.catch_up([ns_id], limit=2) == 2
    assert vectors() == {ids[1], ids[2]}  # a text written in the previous call is always covered
    assert backlog.catch_up([ns_id + 1000]) == 0  # another namespace: nothing pending, nothing done
    assert backlog.catch_up([ns_id]) == 1
    assert vectors() == set(ids)


def test_the_entity_vector_tools_see_observations_written_just_before(alice_key):
    perform(
        alice_key.key.to_access(),
        "create_entities",
        namespace=alice_key.namespace,
        entities=[{"name": "Payments", "entityType": "service", "observations": ["handles card refunds"]}],
    )
    found = perform(
        alice_key.key.to_access(), "vector_search_entities", namespace=alice_key.namespace, query="giving money back"
    )
    assert [hit["entityName"] for hit in found["results"]] == ["Payments"]
    stats = perform(alice_key.key.to_access(), "vector_store_stats", namespace=alice_key.namespace)
    assert stats["observationsWithoutVector"] == 0


def test_known_vectors_are_stored_with_the_write_and_not_queued(alice_key):
    given = default_embedder().embed(["a text whose vector is known"])[0]
    with known_vectors({"a text whose vector is known": given}):
        known, other = remember(alice_key, "a text whose vector is known", "a text nobody embedded")
    assert vectors() == {known}
    assert [owner for owner, _, _ in pending()] == [other]
    np.testing.assert_array_equal(store.get(OwnerKind.OBSERVATION, known)[0].vector, given)


@override_settings(MEMORYHUB_EMBED_ON_WRITE=False)
def test_without_embedding_on_write_nothing_is_queued(alice_key):
    remember(alice_key, "not embedded at all")
    assert pending() == []
    assert vectors() == set()


def test_healthz_and_metrics_show_the_backlog(client: Client, alice_key, settings):
    settings.CELERY_BROKER_URL = None
    remember(alice_key, "waiting one", "waiting two")
    db().execute("UPDATE vectors_pending SET enqueued_at = ?", (stored_time(timezone.now() - timedelta(seconds=90)),))
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    report = body["embedding_backlog"]
    assert (report["ok"], report["pending"], report["failing"]) == (True, 2, 0)
    assert report["oldest_seconds"] >= 90
    metrics = client.get("/metrics").content.decode()
    assert "memoryhub_embedding_backlog_texts 2" in metrics
    oldest = next(
        line for line in metrics.splitlines() if line.startswith("memoryhub_embedding_backlog_oldest_seconds")
    )
    assert float(oldest.split()[1]) >= 90
    embedded_before = backlog.counts()[0]
    backlog.drain()
    metrics = client.get("/metrics").content.decode()
    assert "memoryhub_embedding_backlog_texts 0" in metrics
    assert f"memoryhub_embedded_texts_total {embedded_before + 2}" in metrics


def test_the_admin_lists_the_backlog_and_retries_now(client: Client, alice_key, django_user_model):
    (_owner,) = remember(alice_key, "waiting in the admin")
    db().execute(
        "UPDATE vectors_pending SET attempts = 3, last_error = 'provider down', next_attempt_at = ?",
        (stored_time(timezone.now() + timedelta(hours=1)),),
    )
    admin = django_user_model.objects.create_superuser("root-admin", "root@example.com", "pw")
    client.force_login(admin)
    page = client.get("/admin/vectors/pendingembedding/")
    assert page.status_code == 200
    assert "provider down" in page.content.decode()
    (row_id,) = [row[0] for row in db().execute("SELECT id FROM vectors_pending")]
    answer = client.post(
        "/admin/vectors/pendingembedding/", {"action": "retry_now", "_selected_action": [str(row_id)]}, follow=True
    )
    assert answer.status_code == 200
    assert db().execute("SELECT next_attempt_at FROM vectors_pending").fetchone() == (None,)
    # Read-only: nothing can be added or edited by hand.
    assert client.get("/admin/vectors/pendingembedding/add/").status_code == 403


@pytest.mark.postgres_only(reason="row locks taken in opposite orders; SQLite has one writer at a time")
@pytest.mark.django_db(transaction=True)
def test_a_search_catching_up_and_a_drainer_storing_the_same_rows_do_not_deadlock(alice_key, monkeypatch):
    """catch_up takes the newest rows first, a drainer the oldest. Two transactions upserting one
    set of rows in opposite orders deadlock on PostgreSQL: one was aborted with DeadlockDetected,
    which a search answered as an internal error. Both now store in one order. The two stores are
    lined up inside their transactions (after embedding, whose time varies) so they overlap."""
    import threading

    remember(alice_key, *[f"note {i} on the rota for week {i}" for i in range(200)])
    rows = [
        backlog.Pending(*row)
        for row in db().execute("SELECT id, owner_id, namespace_id, attempts FROM vectors_pending")
    ]
    lined_up = threading.Barrier(2, timeout=30)
    put = store.put

    def put_together(key: Any, items: Any) -> None:
        lined_up.wait()
        put(key, items)

    monkeypatch.setattr(store, "put", put_together)
    oldest_first = sorted(rows, key=lambda row: row.id)
    newest_first = sorted(rows, key=lambda row: -row.id)
    stored = at_once(lambda: backlog._embed_and_store(oldest_first), lambda: backlog._embed_and_store(newest_first))
    assert [result for result in stored if isinstance(result, Exception)] == []
    assert pending() == []
    assert len(vectors()) == 200
