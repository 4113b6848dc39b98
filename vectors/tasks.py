"""Vector maintenance tasks (scheduled in kernel/maintenance.py). Each takes an optional
namespace name (None: every namespace) and calls vectors/services.py."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task

from access import namespaces
from graph.exceptions import InvalidArgument
from kernel.maintenance import MaintenanceTask, report_progress
from kernel.task_queue import Debounced
from vectors import backlog, services

logger = logging.getLogger(__name__)


def _namespace_id(namespace: str | None) -> int | None:
    if namespace is None:
        return None
    ns_id = namespaces.lookup(namespace)
    if ns_id is None:
        raise InvalidArgument(f"namespace {namespace!r} does not exist")
    return ns_id


@shared_task(base=MaintenanceTask)
def ivf_retrain_task(namespace: str | None = None) -> dict[str, Any]:
    return dict(services.retrain_grown_ivf(namespace_id=_namespace_id(namespace)))


@shared_task(base=MaintenanceTask)
def hnsw_compact_task(namespace: str | None = None) -> dict[str, Any]:
    return dict(services.compact_deleted_hnsw(namespace_id=_namespace_id(namespace)))


@shared_task(base=MaintenanceTask)
def prune_changes_task() -> dict[str, Any]:
    return dict(services.prune_change_log())


@shared_task(base=MaintenanceTask, bind=True)
def reembed_task(self: Task, namespace: str | None = None, batch: int = 256) -> dict[str, Any]:
    """Progress: the task's state is PROGRESS with meta {done, total, namespace} while it runs."""

    def progress(done: int, total: int, name: str) -> None:
        report_progress(self, done=done, total=total, namespace=name)

    return dict(services.reembed(namespace=namespace, batch=max(1, batch), progress=progress))


@shared_task(ignore_result=True)
def drain_backlog_task() -> int:
    """Embed what is pending (vectors/backlog.py), queued when a write commits; the leases keep a
    worker and the server processes from embedding the same rows. Returns the rows handled."""
    return backlog.drain()


# After a commit that queued texts: have a Celery worker drain, when a broker is configured.
queue_drain = Debounced(drain_backlog_task, what="embedding")
