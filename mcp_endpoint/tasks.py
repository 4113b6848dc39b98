"""MCP endpoint maintenance tasks (scheduled in kernel/maintenance.py)."""

from __future__ import annotations

from celery import shared_task

from kernel.maintenance import MaintenanceTask
from mcp_endpoint import sessions


@shared_task(base=MaintenanceTask)
def purge_sessions_task() -> dict[str, int]:
    return {"purged": sessions.purge()}
