"""The extraction drain as a Celery task (memory/extraction.py), queued when a write that queued
jobs commits and a broker is configured; the jobs' leases keep a worker and the server
processes' threads off the same job."""

from __future__ import annotations

from celery import shared_task

from kernel.task_queue import Debounced
from memory import extraction


@shared_task(ignore_result=True)
def drain_extractions_task() -> int:
    """Extract what is due; returns how many jobs were worked on."""
    return extraction.drain()


# After a commit that queued jobs: have a Celery worker drain, when a broker is configured.
queue_drain = Debounced(drain_extractions_task, what="extraction")
