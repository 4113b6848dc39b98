"""The upkeep of the database itself (kernel/db_maintenance.py) and the jobs that schedule it
(kernel/maintenance.py): each backend's own, and the job lease holding under two racing claims.
SQLite's checkpoint and FTS5 checks: tests/maintenance/test_services.py and test_celery_worker.py."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, connections

from kernel import db_maintenance, maintenance
from kernel.maintenance import JOBS_BY_NAME
from kernel.models import MaintenanceJob
from kernel.sql import POSTGRES
from memoryhub import tasks


def stats(table: str) -> tuple[int, Any, Any]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_dead_tup, last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relid = %s::regclass",
            [table],
        )
        return cursor.fetchone()


def test_each_backend_schedules_its_own_upkeep():
    database_jobs = {"wal_checkpoint", "wal_truncate", "optimize", "fts_optimize", "vacuum"}
    if POSTGRES:
        assert database_jobs & set(JOBS_BY_NAME) == {"vacuum", "optimize"}
        assert JOBS_BY_NAME["vacuum"].interval == 86400  # unless MEMORYHUB_MAINTENANCE_VACUUM_SECONDS
        with pytest.raises(RuntimeError, match="SQLite upkeep"):
            db_maintenance.wal_checkpoint(mode="PASSIVE")
        with pytest.raises(RuntimeError, match="SQLite upkeep"):
            db_maintenance.fts_optimize()
    else:
        assert database_jobs & set(JOBS_BY_NAME) == {"wal_checkpoint", "wal_truncate", "optimize", "fts_optimize"}
        with pytest.raises(RuntimeError, match="PostgreSQL upkeep"):
            db_maintenance.vacuum()
        with pytest.raises(RuntimeError, match="PostgreSQL upkeep"):
            db_maintenance.analyze()
    # The other jobs are the same on both.
    assert {"purge_expired", "purge_history", "prune_changes", "purge_sessions"} <= set(JOBS_BY_NAME)
    assert all(job.summary for job in JOBS_BY_NAME.values())


@pytest.mark.postgres_only(reason="VACUUM is PostgreSQL's upkeep (SQLite: checkpoints, incremental vacuum)")
@pytest.mark.django_db(transaction=True)
def test_vacuum_reclaims_dead_rows_of_every_table_and_refuses_a_transaction():
    from django.db import transaction

    MaintenanceJob.objects.bulk_create([MaintenanceJob(name=f"dead-{n}") for n in range(200)])
    MaintenanceJob.objects.filter(name__startswith="dead-").delete()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")  # this backend's counts, visible now
    time.sleep(0.1)
    assert stats("memoryhub_maintenancejob")[0] >= 200

    result = tasks.vacuum_task.run()
    assert set(result) == {"tables", "deadRowsBefore", "ms"}
    assert result["tables"] >= 20  # every MemoryHub table, not only this one
    assert result["deadRowsBefore"] >= 200
    dead, vacuumed, analyzed = stats("memoryhub_maintenancejob")
    assert dead == 0
    assert vacuumed is not None
    assert analyzed is not None

    with transaction.atomic(), pytest.raises(RuntimeError, match="inside a transaction"):
        db_maintenance.vacuum()


def flush_statistics() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    time.sleep(0.1)


@pytest.mark.postgres_only(reason="ANALYZE of stale tables is PostgreSQL's PRAGMA optimize")
@pytest.mark.django_db(transaction=True)
def test_optimize_analyzes_only_the_tables_with_stale_statistics():
    # Counts of changes this connection made before (the test database's set-up) reach the
    # statistics the task reads only when flushed; flushed later, they made a table stale midway.
    flush_statistics()
    first = tasks.optimize_task.run()
    assert set(first) == {"analyzed", "ms"}
    assert tasks.optimize_task.run()["analyzed"] == []  # nothing changed since: nothing to do

    MaintenanceJob.objects.bulk_create([MaintenanceJob(name=f"new-{n}") for n in range(100)])
    flush_statistics()
    assert tasks.optimize_task.run()["analyzed"] == ["memoryhub_maintenancejob"]
    assert stats("memoryhub_maintenancejob")[2] is not None


@pytest.mark.django_db(transaction=True)
def test_two_processes_claiming_one_job_at_once_never_both_get_it(monkeypatch):
    """Two threads on their own connections (as two server processes) claim one job together; each
    pauses between reading the job's row and taking the lease. Exactly one may run it."""
    MaintenanceJob.objects.create(name="race")
    original = MaintenanceJob.save

    def slow_save(self: MaintenanceJob, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.3)  # the lease is decided, not yet written
        original(self, *args, **kwargs)

    monkeypatch.setattr(MaintenanceJob, "save", slow_save)
    start = threading.Barrier(2)
    claims: list[Any] = [None, None]

    def run(index: int) -> None:
        try:
            start.wait()
            claims[index] = maintenance.claim("race", runner=f"process {index}")
        except Exception as problem:
            claims[index] = problem
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    taken = [claim for claim in claims if isinstance(claim, maintenance.Claim)]
    assert len(taken) == 1, claims
    assert claims.count(None) == 1
    assert MaintenanceJob.objects.get(name="race").lease_owner == taken[0].owner
