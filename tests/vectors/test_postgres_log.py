"""The change log and the embedding backlog with writers that really run side by side, on
PostgreSQL: each writer is a connection of its own, committing in its own order.

On SQLite writers take turns (BEGIN IMMEDIATE), so none of this can happen there; vectors/store.py
("The change log on PostgreSQL") and vectors/backlog.py (`_CLAIM`) say what the PostgreSQL forms
do. The rows are written by connections outside the test's transaction, so they are committed;
each test deletes what it wrote.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from django.db import connection, transaction
from django.utils import timezone

from kernel.sql import postgres_statement, stored_time
from vectors import backlog, store
from vectors.indexes import IndexRegistry
from vectors.models import OwnerKind
from vectors.store import IndexKey

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres_only(reason="concurrent writers: SQLite has one writer at a time"),
]

MODEL = "two-writers"


def _connect() -> psycopg.Connection[Any]:
    connection.ensure_connection()
    return psycopg.connect(**connection.get_connection_params())


@pytest.fixture
def other() -> Iterator[tuple[psycopg.Connection[Any], psycopg.Connection[Any], IndexKey]]:
    """Two writer connections and a committed namespace of their own (deleted after)."""
    setup = _connect()
    setup.autocommit = True
    ns_id = setup.execute(  # type: ignore[index]
        "INSERT INTO graph_namespace(name, created_at, dedupe) VALUES ('pg-two-writers', now(), true) RETURNING id"
    ).fetchone()[0]
    first, second = _connect(), _connect()
    try:
        yield first, second, IndexKey(ns_id, OwnerKind.OBSERVATION, MODEL)
    finally:
        for conn in (first, second):
            conn.rollback()
            conn.close()
        setup.execute("DELETE FROM vectors_embedding WHERE namespace_id = %s", (ns_id,))
        setup.execute("DELETE FROM vectors_change WHERE namespace_id = %s", (ns_id,))
        setup.execute("DELETE FROM vectors_pending WHERE namespace_id = %s", (ns_id,))
        setup.execute("DELETE FROM graph_namespace WHERE id = %s", (ns_id,))
        setup.close()


def _vector(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def _put(conn: psycopg.Connection[Any], key: IndexKey, owner: int, vector: np.ndarray) -> int:
    """Store a vector in `conn`'s open transaction; its change-log position."""
    return conn.execute(  # type: ignore[index]
        "INSERT INTO vectors_embedding(namespace_id, owner_kind, owner_id, model, dims, vector, seq, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, 0, now()) RETURNING seq",
        (key.namespace_id, key.kind, owner, key.model, int(vector.shape[0]), store.to_blob(vector)),
    ).fetchone()[0]


def _owners(registry: IndexRegistry, key: IndexKey) -> set[int]:
    return {owner for owner, _ in registry.search(key, _vector(1, 1, 1), k=10)}


def test_a_change_with_a_lower_position_committed_after_a_higher_one_is_not_missed(other):
    first, second, key = other
    registry = IndexRegistry(4)
    _put(first, key, 900, _vector(1, 0, 0))
    first.commit()
    assert _owners(registry, key) == {900}

    low = _put(first, key, 901, _vector(0, 1, 0))  # drawn first, committed last
    writer = int(first.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
    high = _put(second, key, 902, _vector(0, 0, 1))
    second.commit()
    assert low < high
    assert _owners(registry, key) == {900, 902}
    # The index has read past the open transaction's position: "everything after the highest
    # position read" would never look at it again.
    assert registry._loaded[key].seq >= high > low
    assert writer in registry._loaded[key].tail.waiting

    first.commit()
    assert _owners(registry, key) == {900, 901, 902}
    assert writer not in registry._loaded[key].tail.waiting


def test_a_delete_committed_late_and_a_rolled_back_write_are_seen_right(other):
    first, second, key = other
    for owner, vector in ((910, _vector(1, 0, 0)), (911, _vector(0, 1, 0))):
        _put(first, key, owner, vector)
    first.commit()
    registry = IndexRegistry(4)
    assert _owners(registry, key) == {910, 911}

    first.execute("DELETE FROM vectors_embedding WHERE owner_id = 910 AND model = %s", (MODEL,))
    _put(second, key, 912, _vector(0, 0, 1))
    second.commit()
    assert _owners(registry, key) == {910, 911, 912}
    first.commit()
    assert _owners(registry, key) == {911, 912}

    _put(first, key, 913, _vector(1, 1, 0))
    writer = int(first.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
    _put(second, key, 914, _vector(0, 1, 1))
    second.commit()
    assert _owners(registry, key) == {911, 912, 914}
    assert writer in registry._loaded[key].tail.waiting
    first.rollback()
    assert _owners(registry, key) == {911, 912, 914}
    # Ended: no longer looked at (other transactions on the server may be).
    assert writer not in registry._loaded[key].tail.waiting


def test_an_index_built_while_a_write_is_open_catches_it_when_it_commits(other):
    """The build's snapshot cannot see the open write, whose position is below the build's."""
    first, second, key = other
    _put(second, key, 920, _vector(1, 0, 0))
    second.commit()
    _put(first, key, 921, _vector(0, 1, 0))  # open while the index is built
    _put(second, key, 922, _vector(0, 0, 1))
    second.commit()
    registry = IndexRegistry(4)
    assert _owners(registry, key) == {920, 922}
    first.commit()
    assert _owners(registry, key) == {920, 921, 922}


def test_two_drainers_never_claim_the_same_row(other):
    """A claim in an open transaction holds its rows; a second claimer skips them, not waits for
    them and not takes them again."""
    first, second, key = other
    setup = _connect()
    setup.autocommit = True
    try:
        setup.execute(
            "INSERT INTO vectors_pending(owner_id, namespace_id, enqueued_at, attempts, last_error) "
            "SELECT 930 + n, %s, now(), 0, '' FROM generate_series(0, 5) AS n",
            (key.namespace_id,),
        )
    finally:
        setup.close()
    claim, numbered = postgres_statement(backlog._CLAIM)
    assert numbered
    until = stored_time(timezone.now() + timedelta(minutes=5))
    now = stored_time(timezone.now())
    params = {"_1": until, "_2": now, "_3": 4}
    second.execute("SET lock_timeout = '2s'")  # waiting for the first claim would fail the test
    mine = {row[1] for row in first.execute(claim, params).fetchall()}
    theirs = {row[1] for row in second.execute(claim, params).fetchall()}
    assert len(mine) == 4
    assert theirs == set(range(930, 936)) - mine
    first.commit()
    second.commit()
    # Both claims hold: nothing is left to claim.
    assert first.execute(claim, params).fetchall() == []
    first.rollback()


class _RolledBack(Exception):
    pass


def test_an_index_undoes_its_own_transactions_write_when_that_rolls_back(other):
    """A search inside a writing transaction sees that transaction's own vectors (read your
    writes); if the transaction rolls back, the index forgets them at its next catch-up."""
    _, second, key = other
    _put(second, key, 940, _vector(1, 0, 0))
    second.commit()
    registry = IndexRegistry(4)
    assert _owners(registry, key) == {940}  # built before: the transaction's writes are caught up

    def in_a_transaction_of_its_own() -> tuple[set[int], set[int]]:
        # A thread: its own Django connection, outside the test's transaction.
        try:
            try:
                with transaction.atomic():
                    store.put(key, [(941, _vector(0, 1, 0))])
                    store.delete(OwnerKind.OBSERVATION, [940], model=MODEL)
                    inside = _owners(registry, key)
                    raise _RolledBack
            except _RolledBack:
                pass
            return inside, _owners(registry, key)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        inside, after = pool.submit(in_a_transaction_of_its_own).result()
    assert inside == {941}
    assert after == {940}
    assert _owners(registry, key) == {940}
