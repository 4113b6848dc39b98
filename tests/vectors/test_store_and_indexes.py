"""Stored vectors, the change log and the per-process index registry, on the real SQLite database.

"Another process" is simulated faithfully where it matters: a second `IndexRegistry` sees only what
is in the database, exactly as another server process would; the two-server test in
tests/vectors/test_two_processes.py does it with real processes.
"""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection
from django.test import override_settings

from access.operations import perform
from graph.sql import db
from kernel.sql import POSTGRES, json_values
from vectors import backlog, embedding, store
from vectors.ann import ExactIndex, HnswIndex, IvfFlatIndex
from vectors.embedders import default_embedder
from vectors.embedding import count_missing, embed_missing, embedded_ahead
from vectors.exceptions import InvalidVector
from vectors.indexes import IndexRegistry, registry, warm_up_in_background
from vectors.models import OwnerKind
from vectors.store import IndexKey

pytestmark = pytest.mark.django_db


def _unit(rows: list[list[float]]) -> np.ndarray:
    matrix = np.asarray(rows, dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def _entities(access, namespace: str, names: list[str]) -> dict[str, int]:
    perform(
        access,
        "create_entities",
        namespace=namespace,
        entities=[{"name": n, "entityType": "thing", "observations": []} for n in names],
    )
    rows = db().execute(
        f"SELECT name, id FROM graph_entity WHERE name IN {json_values(sql_type='text')}",
        (str(names).replace("'", '"'),),
    )
    return dict(rows.fetchall())


@pytest.fixture
def toy(alice_key):
    """Three entities with 3-dim vectors in model 'toy' in alice's namespace."""
    access = alice_key.key.to_access()
    ids = _entities(access, alice_key.namespace, ["a", "b", "c"])
    ns_id = db().execute("SELECT id FROM graph_namespace WHERE name = ?", (alice_key.namespace,)).fetchone()[0]
    key = IndexKey(ns_id, OwnerKind.ENTITY, "toy")
    vectors = _unit([[1, 0, 0], [0.9, 0.1, 0], [0, 0, 1]])
    store.put(key, [(ids[n], vectors[i]) for i, n in enumerate("abc")])
    return key, ids


def test_every_write_and_delete_is_logged_with_a_monotonic_seq(toy):
    key, ids = toy
    # This index's rows only: a flush by an earlier transactional test deletes vectors after it
    # emptied the log, and their deletes are logged.
    log = (
        db()
        .execute(
            "SELECT seq, owner_id, deleted FROM vectors_change WHERE namespace_id = ? AND owner_kind = ? AND model = ? "
            "ORDER BY seq",
            (key.namespace_id, key.kind, key.model),
        )
        .fetchall()
    )
    assert [row[1] for row in log] == [ids["a"], ids["b"], ids["c"]]
    assert [row[0] for row in log] == sorted(row[0] for row in log)
    seqs = dict(
        db()
        .execute("SELECT owner_id, seq FROM vectors_embedding WHERE namespace_id = ?", (key.namespace_id,))
        .fetchall()
    )
    assert seqs == {row[1]: row[0] for row in log}

    store.put(key, [(ids["a"], _unit([[0, 1, 0]])[0])])  # an update is logged too, with a newer seq
    store.delete(OwnerKind.ENTITY, [ids["b"]])
    tail = db().execute("SELECT owner_id, deleted FROM vectors_change ORDER BY seq DESC LIMIT 2").fetchall()
    assert tail == [(ids["b"], 1), (ids["a"], 0)]
    newest = db().execute("SELECT max(seq) FROM vectors_change").fetchone()[0]
    assert store.last_seq() == newest > log[-1][0]
    if not POSTGRES:
        # Dense on SQLite; on PostgreSQL an upsert that updates leaves the id its insert drew unused.
        assert newest == log[-1][0] + 2


def test_search_finds_nearest_and_sees_writes_and_deletes_at_once(toy):
    key, ids = toy
    indexes = registry()
    query = _unit([[1, 0.05, 0]])[0]
    hits = indexes.search(key, query, k=2)
    assert [owner for owner, _ in hits] == [ids["a"], ids["b"]]
    assert hits[0][1] == pytest.approx(float(_unit([[1, 0, 0]])[0] @ query), abs=1e-5)

    store.delete(OwnerKind.ENTITY, [ids["a"]])
    assert [owner for owner, _ in indexes.search(key, query, k=2)] == [ids["b"], ids["c"]]

    store.put(key, [(ids["c"], _unit([[1, 0.04, 0]])[0])])  # c moves next to the query
    assert indexes.search(key, query, k=1)[0][0] == ids["c"]


def test_a_second_registry_sees_the_first_ones_writes_through_the_log(toy):
    """Two processes: each has its own registry; only the database connects them."""
    key, ids = toy
    mine, theirs = IndexRegistry(8), IndexRegistry(8)
    query = _unit([[0, 0, 1]])[0]
    assert mine.search(key, query, k=1)[0][0] == ids["c"]
    assert theirs.search(key, query, k=1)[0][0] == ids["c"]

    store.delete(OwnerKind.ENTITY, [ids["c"]])  # "their" process deletes c
    assert ids["c"] not in [owner for owner, _ in mine.search(key, query, k=3)]
    store.put(key, [(ids["a"], _unit([[0, 0.1, 1]])[0])])
    assert mine.search(key, query, k=1)[0][0] == ids["a"]


def test_deleting_the_owner_deletes_its_vector_and_the_index_forgets_it(toy, alice_key):
    key, ids = toy
    indexes = registry()
    assert len(indexes.search(key, _unit([[1, 0, 0]])[0], k=10)) == 3
    perform(alice_key.key.to_access(), "delete_entities", namespace=alice_key.namespace, entity_names=["a"])
    assert db().execute("SELECT count(*) FROM vectors_embedding WHERE owner_id = ?", (ids["a"],)).fetchone()[0] == 0
    assert ids["a"] not in [owner for owner, _ in indexes.search(key, _unit([[1, 0, 0]])[0], k=10)]


def test_a_rolled_back_log_rebuilds_the_index(toy):
    """If the log goes backwards (a rolled-back write this process had already read), the index is
    rebuilt from the blobs instead of trusting positions that no longer mean the same rows."""
    key, ids = toy
    indexes = registry()
    indexes.search(key, _unit([[1, 0, 0]])[0], k=1)
    entry = indexes._loaded[key]
    entry.seq += 1000  # pretend it had seen writes that were later rolled back
    hits = indexes.search(key, _unit([[0, 0, 1]])[0], k=1)
    assert hits[0][0] == ids["c"]
    assert indexes._loaded[key].seq == store.last_seq()


def test_query_of_the_wrong_dimension_is_a_clear_error(toy):
    key, _ = toy
    with pytest.raises(InvalidVector, match=r"has 4 dimensions but the entity vectors of model 'toy'.* have 3"):
        registry().search(key, np.ones(4, dtype=np.float32), k=1)


def test_least_recently_used_index_is_evicted(toy):
    key, _ = toy
    small = IndexRegistry(2)
    other = [IndexKey(key.namespace_id, OwnerKind.ENTITY, f"none-{i}") for i in range(2)]
    small.current(key)
    small.current(other[0])
    small.current(key)  # key is now the most recent
    small.current(other[1])
    assert len(small) == 2
    assert key in small._loaded
    assert other[0] not in small._loaded


@pytest.mark.parametrize(
    ("kind", "expected"), [("exact", ExactIndex), ("hnsw", HnswIndex), ("ivf", IvfFlatIndex), ("auto", ExactIndex)]
)
def test_index_kind_follows_settings(toy, kind, expected):
    key, ids = toy
    with override_settings(MEMORYHUB_VECTOR_INDEX=kind, MEMORYHUB_IVF_NLIST=2):
        index = registry().current(key)
        assert isinstance(index, expected)
        assert registry().search(key, _unit([[0, 0, 1]])[0], k=1)[0][0] == ids["c"]


def test_auto_switches_to_hnsw_when_the_index_outgrows_exact_search(toy, alice_key):
    key, _ = toy
    with override_settings(MEMORYHUB_VECTOR_EXACT_MAX=2):
        assert isinstance(registry().current(key), HnswIndex)  # 3 vectors > 2
    with override_settings(MEMORYHUB_VECTOR_EXACT_MAX=3):
        assert isinstance(registry().current(key), ExactIndex)
        more = _entities(alice_key.key.to_access(), alice_key.namespace, [f"x{i}" for i in range(4)])
        store.put(key, [(owner, _unit([[1, i, 1]])[0]) for i, owner in enumerate(more.values())])
        assert isinstance(registry().current(key), HnswIndex)  # 7 > 2 x 3
        assert len(registry().current(key)) == 7


def _observation_vectors() -> tuple[int, int | None]:
    model = default_embedder().model_id
    return tuple(
        db()
        .execute(
            "SELECT count(*), max(dims) FROM vectors_embedding WHERE owner_kind = 'observation' AND model = ?", (model,)
        )
        .fetchone()
    )


def _pending() -> int:
    return int(db().execute("SELECT count(*) FROM vectors_pending").fetchone()[0])


def test_observations_are_queued_on_write_embedded_by_the_drainer_and_backfilled_when_missing(alice_key):
    access = alice_key.key.to_access()
    perform(
        access,
        "create_entities",
        namespace=alice_key.namespace,
        entities=[{"name": "Ada", "entityType": "person", "observations": ["writes compilers", "likes tea"]}],
    )
    # Behind (the default): the write committed its texts and their pending rows, no vectors yet.
    assert (_observation_vectors(), _pending()) == ((0, None), 2)
    assert backlog.drain() == 2
    assert (_observation_vectors(), _pending()) == ((2, 512), 0)
    assert count_missing() == 0

    with override_settings(MEMORYHUB_EMBED_ON_WRITE=False):
        perform(
            access,
            "add_observations",
            namespace=alice_key.namespace,
            observations=[{"entityName": "Ada", "contents": ["plays the cello"]}],
        )
    assert count_missing() == 1
    assert _pending() == 0  # off: no backlog either
    assert embed_missing() == 1
    assert count_missing() == 0


@override_settings(MEMORYHUB_EMBED_MODE="inline")
def test_inline_mode_stores_the_vectors_with_the_write(alice_key):
    perform(
        alice_key.key.to_access(),
        "create_entities",
        namespace=alice_key.namespace,
        entities=[{"name": "Ada", "entityType": "person", "observations": ["writes compilers", "likes tea"]}],
    )
    assert (_observation_vectors(), _pending()) == ((2, 512), 0)


def test_editing_an_observation_drops_its_stale_vector(alice_key):
    access = alice_key.key.to_access()
    perform(
        access,
        "create_entities",
        namespace=alice_key.namespace,
        entities=[{"name": "Ada", "entityType": "person", "observations": ["writes compilers"]}],
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE graph_observation SET body = 'writes poems'")
    assert count_missing() == 1
    embed_missing()
    assert count_missing() == 0


def test_two_namespaces_never_share_an_index(alice_key, bob_key):
    for persona in (alice_key, bob_key):
        perform(
            persona.key.to_access(),
            "create_entities",
            namespace=persona.namespace,
            entities=[{"name": "secret", "entityType": "note", "observations": [f"{persona.namespace} launch code"]}],
        )
    backlog.drain()
    keys = [key for key, _, _ in store.index_keys()]
    assert len({key.namespace_id for key in keys}) == 2
    query = default_embedder().embed(["launch code"])[0]
    for key in keys:
        hits = registry().search(key, query, k=10)
        owners = [owner for owner, _ in hits]
        namespaces = {
            row[0]
            for row in db().execute(
                f"SELECT namespace_id FROM graph_observation WHERE id IN {json_values()}",
                (str(owners),),
            )
        }
        assert namespaces == {key.namespace_id}


@pytest.mark.django_db(transaction=True)
def test_start_up_builds_the_stored_indexes_in_the_background(alice_key):
    perform(
        alice_key.key.to_access(),
        "create_entities",
        namespace=alice_key.namespace,
        entities=[{"name": "Ada", "entityType": "person", "observations": ["writes compilers"]}],
    )
    backlog.drain()
    registry().clear()
    thread = warm_up_in_background()
    assert thread is not None
    thread.join(timeout=30)
    assert [entry["size"] for entry in registry().stats()] == [1]
    with override_settings(MEMORYHUB_VECTOR_WARMUP=False):
        assert warm_up_in_background() is None


@override_settings(MEMORYHUB_EMBED_MODE="inline")
def test_an_inner_embedded_ahead_block_reuses_what_the_outer_one_embedded():
    """The MemOS add writes the same texts to several namespaces: embedded once, before its
    transaction, however many writes (each with its own block) follow."""
    model = default_embedder().model_id
    with embedded_ahead(["the first text"]):
        outer = embedding._ahead.get()
        assert outer is not None
        with embedded_ahead(["the first text", "a second text"]):
            inner = embedding._ahead.get()
            assert inner is not None
            assert inner[(model, "the first text")] is outer[(model, "the first text")]
            assert set(inner) == {(model, "the first text"), (model, "a second text")}
        assert embedding._ahead.get() is outer
