"""Vector maintenance tasks (scheduled in kernel/maintenance.py). Each takes an optional
namespace name (None: every namespace) and calls vectors/services.py."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from access import namespaces
from graph.exceptions import InvalidArgument
from kernel.maintenance import MaintenanceTask, report_progress
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


# Drain tasks queued by this process at most this often: one task drains whatever is there, so a
# burst of writes needs one message, not one per write (the server processes' drainers poll too).
CELERY_DEBOUNCE_SECONDS = 0.5
_queued_at = 0.0


def queue_drain() -> None:
    """After a commit that queued texts: have a Celery worker drain, when a broker is configured."""
    global _queued_at
    if not settings.CELERY_BROKER_URL:
        return
    moment = time.monotonic()
    if moment - _queued_at < CELERY_DEBOUNCE_SECONDS:
        return
    _queued_at = moment
    try:
        # Expires: a drain left unclaimed that long is moot (the server processes drained since).
        drain_backlog_task.apply_async(expires=60)
    except Exception:  # an unreachable broker must not fail a committed write: the threads drain too
        logger.warning("could not queue the embedding drain task", exc_info=True)
