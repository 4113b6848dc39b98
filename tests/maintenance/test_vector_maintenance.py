"""The vector maintenance services in one process: rebuild markers, the IVF growth and HNSW delete
rules, change-log pruning, re-embedding. A second IndexRegistry stands for another server process
(it sees only the database, as tests/vectors/test_store_and_indexes.py explains)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from graph.exceptions import InvalidArgument
from tests.maintenance.helpers import delete_vectors, entity_ids, entity_vectors, memories, new_namespace
from vectors import store
from vectors.embedders import default_embedder
from vectors.indexes import IndexRegistry, wait_for_rebuilds
from vectors.models import ChangeLogMark, Embedding, IndexBaseline, OwnerKind, VectorChange
from vectors.services import compact_deleted_hnsw, prune_change_log, reembed, retrain_grown_ivf


def _builds(registry: IndexRegistry) -> list[int]:
    return [entry["builds"] for entry in registry.stats()]


@pytest.mark.django_db
def test_a_rebuild_marker_rebuilds_the_index_in_every_process(settings):
    settings.MEMORYHUB_VECTOR_INDEX = "hnsw"
    key = entity_vectors(new_namespace(), 12)
    mine, theirs = IndexRegistry(8), IndexRegistry(8)
    before = [mine.current(key), theirs.current(key)]
    delete_vectors(key, entity_ids(key)[:4])
    assert [index.stats()["deleted"] for index in (mine.current(key), theirs.current(key))] == [4, 4]

    with transaction.atomic():
        store.add_rebuild_marker(key)
    after = [mine.current(key), theirs.current(key)]
    assert [index.stats()["deleted"] for index in after] == [0, 0]
    assert [len(index) for index in after] == [8, 8]
    assert all(new is not old for new, old in zip(after, before, strict=True))
    assert _builds(mine) == _builds(theirs) == [2]


@pytest.mark.django_db(transaction=True)
def test_a_large_index_is_rebuilt_in_the_background_while_searches_go_on(settings):
    settings.MEMORYHUB_VECTOR_INDEX = "hnsw"
    key = entity_vectors(new_namespace(), 30)
    server = IndexRegistry(8, inline_rebuild_max=10)
    old = server.current(key)
    with transaction.atomic():
        store.add_rebuild_marker(key)
    assert server.current(key) is old  # the search that finds the marker does not wait
    delete_vectors(key, entity_ids(key)[:1])
    assert wait_for_rebuilds(timeout=60)
    new = server.current(key)
    assert new is not old
    assert len(new) == 29  # the delete made during the rebuild is in the new index
    assert _builds(server) == [2]
    probe = np.ones(8, dtype=np.float32)
    assert len(server.search(key, probe, k=29)) == 29


@pytest.mark.django_db
def test_ivf_is_retrained_once_it_grew_past_the_threshold(settings):
    settings.MEMORYHUB_VECTOR_INDEX = "ivf"
    settings.MEMORYHUB_IVF_NLIST = 4
    settings.MEMORYHUB_IVF_RETRAIN_GROWTH_PERCENT = 50
    ns = new_namespace()
    key = entity_vectors(ns, 20)
    server = IndexRegistry(8)
    server.current(key)
    assert retrain_grown_ivf() == {"checked": 1, "rebuilt": []}
    assert IndexBaseline.objects.get().vectors == 20

    entity_vectors(ns, 9, start=20)  # 29: +45 %
    assert retrain_grown_ivf()["rebuilt"] == []
    entity_vectors(ns, 1, start=29)  # 30: +50 %
    (note,) = retrain_grown_ivf()["rebuilt"]
    assert note == {
        "namespace": ns,
        "kind": "entity",
        "model": "toy",
        "vectors": 30,
        "reason": "grew from 20 to 30 vectors",
    }
    server.current(key)
    assert _builds(server) == [2]
    assert IndexBaseline.objects.get().vectors == 30

    # Another index setting: not an IVF index, nothing checked.
    settings.MEMORYHUB_VECTOR_INDEX = "hnsw"
    assert retrain_grown_ivf() == {"checked": 0, "rebuilt": []}


@pytest.mark.django_db
def test_hnsw_deletes_are_counted_even_after_the_log_that_held_them_is_pruned(settings):
    settings.MEMORYHUB_VECTOR_INDEX = "hnsw"
    settings.MEMORYHUB_HNSW_COMPACT_DELETED_PERCENT = 25
    key = entity_vectors(new_namespace(), 40)
    assert compact_deleted_hnsw()["checked"] == 1  # baseline
    owners = entity_ids(key)
    delete_vectors(key, owners[:5])
    assert compact_deleted_hnsw()["rebuilt"] == []  # 5 of 35
    delete_vectors(key, owners[5:7])
    prune_change_log(retention_seconds=0)  # the 2 deletes leave the log, counted first
    assert not VectorChange.objects.exists()
    delete_vectors(key, owners[7:8])  # 8 of 32: 25 %
    (note,) = compact_deleted_hnsw()["rebuilt"]
    assert note["reason"] == "8 deletes since the last rebuild, 32 vectors left"
    assert IndexBaseline.objects.get().deletes == 0


@pytest.mark.django_db
def test_under_auto_an_hnsw_index_shrunk_to_exact_size_is_still_compacted(settings):
    settings.MEMORYHUB_VECTOR_INDEX = "auto"
    settings.MEMORYHUB_VECTOR_EXACT_MAX = 10
    key = entity_vectors(new_namespace(), 12)  # over 10: HNSW
    assert compact_deleted_hnsw()["checked"] == 1
    delete_vectors(key, entity_ids(key)[:6])  # 6 left: exact size, still the worn HNSW graph
    assert len(compact_deleted_hnsw()["rebuilt"]) == 1


@pytest.mark.django_db
def test_the_log_is_pruned_only_past_the_retention_window():
    key = entity_vectors(new_namespace(), 3)
    first = store.last_seq()
    ChangeLogMark.objects.create(seq=first, created_at=timezone.now() - timedelta(hours=2))
    entity_vectors(new_namespace(), 2, start=3)
    # These 3 changes, and any an earlier test on this database committed outside its transaction.
    upto_mark = VectorChange.objects.filter(seq__lte=first).count()
    assert upto_mark >= 3

    assert prune_change_log(retention_seconds=3600) == {"pruned": upto_mark, "upto": first}
    assert sorted(VectorChange.objects.values_list("seq", flat=True)) == [first + 1, first + 2]
    # The mark used stays (the next prune starts from it), older ones go; this run left a new one.
    assert ChangeLogMark.objects.count() == 2
    assert prune_change_log(retention_seconds=3600) == {"pruned": 0, "upto": first}

    server = IndexRegistry(8)
    assert len(server.current(key)) == 3


@pytest.mark.django_db
def test_an_index_that_fell_behind_the_pruned_log_is_rebuilt():
    ns = new_namespace()
    key = entity_vectors(ns, 3)
    server = IndexRegistry(8)
    assert len(server.current(key)) == 3
    entity_vectors(ns, 2, start=3)
    delete_vectors(key, entity_ids(key)[:1])
    prune_change_log(retention_seconds=0)
    # Catching up would find nothing in the log; the gap says the log was pruned past the index.
    assert len(server.current(key)) == 4
    assert _builds(server) == [2]
    assert len(IndexRegistry(8).current(key)) == 4


@pytest.mark.django_db
def test_reembed_embeds_what_the_new_model_lacks_with_progress():
    ns = new_namespace()
    owners = memories(ns, [f"memory {i}" for i in range(5)])
    old_model = default_embedder().model_id
    assert reembed() == {"model": old_model, "namespaces": []}  # nothing in another model
    progress: list[tuple[int, int, str]] = []
    with override_settings(MEMORYHUB_EMBEDDER="minilm"):
        new_model = default_embedder().model_id
        done = reembed(batch=2, progress=lambda *step: progress.append(step))
        assert done == {"model": new_model, "namespaces": [{"namespace": ns, "embedded": 5, "total": 5}]}
        assert progress == [(2, 5, ns), (4, 5, ns), (5, 5, ns)]
        assert reembed()["namespaces"] == []
        with pytest.raises(InvalidArgument, match="does not exist"):
            reembed(namespace="org:test:nowhere")
    stored = Embedding.objects.filter(owner_kind=OwnerKind.OBSERVATION, owner_id__in=owners)
    assert sorted(stored.values_list("model", flat=True).distinct()) == sorted([old_model, new_model])


@pytest.mark.django_db
def test_reembed_of_a_named_namespace_embeds_its_missing_vectors_whatever_the_model():
    ns = new_namespace()
    with override_settings(MEMORYHUB_EMBED_ON_WRITE=False):
        memories(ns, ["written while embedding was off"])
    assert reembed()["namespaces"] == []  # no other model: not a model change
    assert reembed(namespace=ns)["namespaces"] == [{"namespace": ns, "embedded": 1, "total": 1}]


@pytest.mark.django_db
def test_prune_drops_the_baselines_of_indexes_that_are_gone(settings):
    settings.MEMORYHUB_VECTOR_INDEX = "hnsw"
    kept = entity_vectors(new_namespace(), 3)
    gone = entity_vectors(new_namespace(), 3)
    compact_deleted_hnsw()
    assert IndexBaseline.objects.count() == 2
    delete_vectors(gone, entity_ids(gone))
    prune_change_log()
    assert list(IndexBaseline.objects.values_list("namespace_id", flat=True)) == [kept.namespace_id]
