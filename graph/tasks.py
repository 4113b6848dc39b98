"""Knowledge-graph maintenance tasks (scheduled in kernel/maintenance.py)."""

from __future__ import annotations

from celery import shared_task

from graph import services
from kernel.maintenance import MaintenanceTask


@shared_task(base=MaintenanceTask)
def purge_expired_task() -> dict[str, int]:
    return {"purged": services.purge_expired()}


@shared_task(base=MaintenanceTask)
def purge_history_task() -> dict[str, int]:
    return {"purgedVersions": services.purge_history()}
