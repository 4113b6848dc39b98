"""Every kind of maintenance task, sent with apply_async to a real Celery worker (a subprocess on
the real Redis and on this session's database), checked by its effect on the database.

The worker holds no vector index: for IVF retraining and HNSW compaction the test process plays
the server whose loaded index must be rebuilt, so what is checked is that a server's index is
retrained when a worker decided it should be."""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from access import namespaces
from graph.fts import build_match, build_tsquery
from graph.models import Observation
from graph.sql import db
from graph.tasks import purge_expired_task
from kernel.models import MaintenanceJob
from mcp_endpoint.models import McpSession
from mcp_endpoint.tasks import purge_sessions_task
from memoryhub.tasks import fts_optimize_task, optimize_task, vacuum_task, wal_checkpoint_task, wal_truncate_task
from tests.maintenance.helpers import delete_vectors, entity_ids, entity_vectors, memories, new_namespace
from vectors.embedders import default_embedder
from vectors.indexes import registry
from vectors.models import Embedding, OwnerKind, VectorChange
from vectors.tasks import hnsw_compact_task, ivf_retrain_task, prune_changes_task, reembed_task

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.sqlite_only(reason="WAL checkpoints and FTS5 merges; PostgreSQL's VACUUM and ANALYZE: the next test")
def test_sqlite_upkeep_runs_in_the_worker(ivf_worker):
    ns = new_namespace()
    memories(ns, [f"the deploy notes, part {i}" for i in range(20)])

    wal = f"{connection.settings_dict['NAME']}-wal"
    page = connection.cursor().execute("PRAGMA page_size").fetchone()[0]
    before = os.path.getsize(wal)
    assert before > 10 * page

    truncated = ivf_worker.send(wal_truncate_task)
    assert truncated["mode"] == "TRUNCATE"
    assert truncated["busy"] is False
    # Emptied; what is there now is the one write recording the job's run (a WAL header and a frame).
    assert os.path.getsize(wal) <= 32 + (24 + page)

    memories(ns, ["one more write goes to the WAL"])
    passive = ivf_worker.send(wal_checkpoint_task)
    assert passive["mode"] == "PASSIVE"
    assert passive["busy"] is False
    assert passive["checkpointedPages"] == passive["walPages"] > 0

    assert set(ivf_worker.send(optimize_task)) == {"analyzed", "ms"}
    merged = ivf_worker.send(fts_optimize_task)
    assert set(merged["tables"]) == {"name_fts", "obs_fts"}
    # The merged index still finds everything.
    matches = db().execute("SELECT count(*) FROM obs_fts WHERE obs_fts MATCH ?", (build_match("deploy notes"),))
    assert matches.fetchone()[0] == 20

    jobs = {job.name: job for job in MaintenanceJob.objects.all()}
    for name in ("wal_truncate", "wal_checkpoint", "optimize", "fts_optimize"):
        assert jobs[name].runs == 1
        assert jobs[name].last_status == "ok"
        assert jobs[name].last_runner.startswith("celery ")
        assert not jobs[name].lease_owner
    assert jobs["wal_truncate"].last_result == truncated


@pytest.mark.postgres_only(reason="VACUUM and ANALYZE; SQLite's checkpoints and FTS5 merges: the test above")
def test_postgresql_upkeep_runs_in_the_worker(ivf_worker):
    ns = new_namespace()
    memories(ns, [f"the deploy notes, part {i}" for i in range(20)])

    vacuumed = ivf_worker.send(vacuum_task)
    assert set(vacuumed) == {"tables", "deadRowsBefore", "ms"}
    assert vacuumed["tables"] >= 20
    assert set(ivf_worker.send(optimize_task)) == {"analyzed", "ms"}
    # The vacuum merged the GIN indexes' pending entries: the index still finds everything.
    matches = db().execute(
        "SELECT count(*) FROM graph_observation WHERE search_vector @@ to_tsquery('simple', ?)",
        (build_tsquery("deploy notes"),),
    )
    assert matches.fetchone()[0] == 20

    jobs = {job.name: job for job in MaintenanceJob.objects.all()}
    for name in ("vacuum", "optimize"):
        assert jobs[name].runs == 1
        assert jobs[name].last_status == "ok"
        assert jobs[name].last_runner.startswith("celery ")
        assert not jobs[name].lease_owner
    assert jobs["vacuum"].last_result == vacuumed


def test_expired_memories_and_dead_sessions_are_purged_by_the_worker(ivf_worker):
    ns = new_namespace()
    keep = memories(ns, ["the office moves in May"])
    gone = memories(ns, ["a code valid for one hour", "another stale note"], expired=True)
    assert Embedding.objects.filter(owner_kind=OwnerKind.OBSERVATION, owner_id__in=gone).count() == 2

    assert ivf_worker.send(purge_expired_task) == {"purged": 2}
    assert list(Observation.objects.filter(namespace__name=ns).values_list("id", flat=True)) == keep
    assert not Embedding.objects.filter(owner_kind=OwnerKind.OBSERVATION, owner_id__in=gone).exists()

    live = McpSession.objects.create(session_id=uuid.uuid4().hex, transport="stdio")
    idle = McpSession.objects.create(session_id=uuid.uuid4().hex, transport="stdio")
    ended = McpSession.objects.create(session_id=uuid.uuid4().hex, transport="http", ended_at=timezone.now())
    McpSession.objects.filter(pk=idle.pk).update(last_seen_at=timezone.now() - timedelta(days=2))

    assert ivf_worker.send(purge_sessions_task) == {"purged": 2}
    assert list(McpSession.objects.filter(pk__in=[live.pk, idle.pk, ended.pk]).values_list("pk", flat=True)) == [
        live.pk
    ]


def test_a_grown_ivf_index_is_retrained_in_the_server_holding_it(ivf_worker, settings):
    # This process is the server: same index settings as the worker.
    settings.MEMORYHUB_VECTOR_INDEX = "ivf"
    settings.MEMORYHUB_IVF_NLIST = 4
    ns = new_namespace("ivf")
    key = entity_vectors(ns, 20)
    first = registry().current(key)
    assert first is not None
    assert {"kind": "ivf", "trained": True, "size": 20}.items() <= first.stats().items()

    # First sight of the index: the worker records where it stands, nothing to rebuild yet.
    assert ivf_worker.send(ivf_retrain_task) == {"checked": 1, "rebuilt": []}

    entity_vectors(ns, 20, start=20)  # doubled: past the 50 % growth threshold
    assert registry().current(key) is first  # caught up in place: the lists are still the old ones
    result = ivf_worker.send(ivf_retrain_task, namespace=ns)
    assert result["checked"] == 1
    assert [(note["namespace"], note["kind"], note["vectors"]) for note in result["rebuilt"]] == [(ns, "entity", 40)]

    # The server applies the worker's decision when it next uses the index.
    rebuilt = registry().current(key)
    assert rebuilt is not first
    assert rebuilt is not None
    assert {"kind": "ivf", "trained": True, "size": 40}.items() <= rebuilt.stats().items()
    assert [entry["builds"] for entry in registry().stats()] == [2]
    probe = np.ones(8, dtype=np.float32)
    assert len(registry().search(key, probe, k=40)) == 40

    # Measured from the new baseline, there is nothing to do until it grows again.
    assert ivf_worker.send(ivf_retrain_task)["rebuilt"] == []


def test_an_hnsw_index_worn_by_deletes_is_compacted_in_the_server_holding_it(hnsw_worker, settings):
    settings.MEMORYHUB_VECTOR_INDEX = "hnsw"
    ns = new_namespace("hnsw")
    key = entity_vectors(ns, 20)
    assert registry().current(key).stats()["kind"] == "hnsw"
    assert hnsw_worker.send(hnsw_compact_task) == {"checked": 1, "rebuilt": []}

    delete_vectors(key, entity_ids(key)[:5])  # 5 deletes, 15 left: past 20 %
    worn = registry().current(key)
    assert {"size": 15, "deleted": 5}.items() <= worn.stats().items()

    result = hnsw_worker.send(hnsw_compact_task, namespace=ns)
    assert [(note["namespace"], note["vectors"]) for note in result["rebuilt"]] == [(ns, 15)]
    compacted = registry().current(key)
    assert compacted is not worn
    assert {"kind": "hnsw", "size": 15, "deleted": 0}.items() <= compacted.stats().items()
    assert hnsw_worker.send(hnsw_compact_task)["rebuilt"] == []


def test_a_changed_embedding_model_is_reembedded_with_progress(ivf_worker, celery_client):
    """The tests write with the built-in model; the worker is configured with MiniLM, i.e. the
    operator switched MEMORYHUB_EMBEDDER. Progress arrives as PROGRESS states, which the Redis
    result backend publishes (subscribed here before the task is sent, so none is missed)."""
    ns = new_namespace("model")
    owners = memories(ns, [f"note {i} about the quarterly planning" for i in range(5)])
    old_model = default_embedder().model_id
    task_id = str(uuid.uuid4())
    updates = celery_client.pubsub()
    updates.subscribe(f"celery-task-meta-{task_id}")
    try:
        result = reembed_task.apply_async(kwargs={"batch": 2}, queue=ivf_worker.queue, task_id=task_id)
        outcome = result.get(timeout=180)
        states = []
        while (message := updates.get_message(timeout=5)) is not None:
            if message["type"] == "message":
                body = json.loads(message["data"])
                states.append((body["status"], body["result"]))
    finally:
        updates.close()
        result.forget()

    new_model = outcome["model"]
    assert new_model != old_model
    assert outcome["namespaces"] == [{"namespace": ns, "embedded": 5, "total": 5}]
    progress = [(meta["done"], meta["total"], meta["namespace"]) for status, meta in states if status == "PROGRESS"]
    assert progress == [(2, 5, ns), (4, 5, ns), (5, 5, ns)]
    assert states[-1] == ("SUCCESS", outcome)
    assert f"vectors.tasks.reembed_task: 4/5 namespace={ns}" in ivf_worker.log_text()

    stored = Embedding.objects.filter(owner_kind=OwnerKind.OBSERVATION, owner_id__in=owners)
    assert stored.filter(model=new_model).count() == 5
    assert stored.filter(model=old_model).count() == 5  # kept: switching back costs nothing
    # Nothing is left to re-embed.
    assert ivf_worker.send(reembed_task) == {"model": new_model, "namespaces": []}
    assert namespaces.lookup(ns) is not None


def test_the_change_log_is_pruned_and_a_server_behind_it_rebuilds(ivf_worker):
    ns = new_namespace("log")
    key = entity_vectors(ns, 3)
    behind = registry().current(key)
    assert behind is not None
    assert len(behind) == 3
    entity_vectors(ns, 2, start=3)  # written while this server did not look

    result = ivf_worker.send(prune_changes_task)  # retention 0 in that worker: everything goes
    assert result["pruned"] >= 5
    assert not VectorChange.objects.exists()

    # The log no longer says what changed since this index was built: it is rebuilt, not left stale.
    current = registry().current(key)
    assert current is not behind
    assert len(current) == 5
