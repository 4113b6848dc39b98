"""The extraction drain as a Celery task (memory/extraction.py), queued when a write that queued
jobs commits and a broker is configured; the jobs' leases keep a worker and the server
processes' threads off the same job."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings

from memory import extraction

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def drain_extractions_task() -> int:
    """Extract what is due; returns how many jobs were worked on."""
    return extraction.drain()


# One task drains whatever is there, so a burst of writes needs one message, not one per write.
CELERY_DEBOUNCE_SECONDS = 0.5
_queued_at = 0.0


def queue_drain() -> None:
    """After a commit that queued jobs: have a Celery worker drain, when a broker is configured."""
    global _queued_at
    if not settings.CELERY_BROKER_URL:
        return
    moment = time.monotonic()
    if moment - _queued_at < CELERY_DEBOUNCE_SECONDS:
        return
    _queued_at = moment
    try:
        drain_extractions_task.apply_async(expires=60)
    except Exception:  # an unreachable broker must not fail a committed write: the threads drain too
        logger.warning("could not queue the extraction drain task", exc_info=True)
