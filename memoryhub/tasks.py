"""Maintenance tasks for the SQLite file (scheduled in kernel/maintenance.py)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from kernel import db_maintenance
from kernel.maintenance import MaintenanceTask


@shared_task(base=MaintenanceTask)
def wal_checkpoint_task() -> dict[str, Any]:
    return dict(db_maintenance.wal_checkpoint(mode="PASSIVE"))


@shared_task(base=MaintenanceTask)
def wal_truncate_task() -> dict[str, Any]:
    return dict(db_maintenance.wal_checkpoint(mode="TRUNCATE"))


@shared_task(base=MaintenanceTask)
def optimize_task() -> dict[str, Any]:
    return dict(db_maintenance.optimize())


@shared_task(base=MaintenanceTask)
def fts_optimize_task() -> dict[str, Any]:
    return dict(db_maintenance.fts_optimize())
