"""MCP endpoint maintenance tasks (scheduled in memoryhub/maintenance.py)."""

from __future__ import annotations

from celery import shared_task

from mcp_endpoint import sessions
from memoryhub.maintenance import MaintenanceTask


@shared_task(base=MaintenanceTask)
def purge_sessions_task() -> dict[str, int]:
    return {"purged": sessions.purge()}
