"""Maintenance tasks for the database itself (kernel/maintenance.py schedules those of the backend:
the WAL checkpoints and FTS5 optimize on SQLite, vacuum on PostgreSQL; optimize on both)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from kernel import db_maintenance
from kernel.maintenance import MaintenanceTask
from kernel.sql import POSTGRES


@shared_task(base=MaintenanceTask)
def wal_checkpoint_task() -> dict[str, Any]:
    return dict(db_maintenance.wal_checkpoint(mode="PASSIVE"))


@shared_task(base=MaintenanceTask)
def wal_truncate_task() -> dict[str, Any]:
    return dict(db_maintenance.wal_checkpoint(mode="TRUNCATE"))


@shared_task(base=MaintenanceTask)
def optimize_task() -> dict[str, Any]:
    if POSTGRES:
        return dict(db_maintenance.analyze())
    return dict(db_maintenance.optimize())


@shared_task(base=MaintenanceTask)
def vacuum_task() -> dict[str, Any]:
    return dict(db_maintenance.vacuum())


@shared_task(base=MaintenanceTask)
def fts_optimize_task() -> dict[str, Any]:
    return dict(db_maintenance.fts_optimize())
