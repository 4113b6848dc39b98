"""Queue a drain task on Celery after a commit, at most once per interval per process.

The write paths that leave work behind (the embedding backlog, vectors/pending.py; the extraction
queue, memory/extraction.py) ask a worker to drain after their commit. One task drains whatever is
there, so a burst of writes needs one message, not one per write; the server processes' own
drainers poll too, so a task that waits unclaimed past its expiry is moot.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


class Debounced:
    """Calling it queues `task` (a Celery task) when a broker is configured, at most once every
    `seconds` in this process; an unreachable broker is logged, never raised (the write it
    follows has committed)."""

    def __init__(self, task: Any, *, what: str, seconds: float = 0.5, expires: int = 60) -> None:
        self.task = task
        self.what = what
        self.seconds = seconds
        self.expires = expires
        self._queued_at = 0.0

    def __call__(self) -> None:
        if not settings.CELERY_BROKER_URL:
            return
        moment = time.monotonic()
        if moment - self._queued_at < self.seconds:
            return
        self._queued_at = moment
        try:
            self.task.apply_async(expires=self.expires)
        except Exception:  # the threads drain too
            logger.warning("could not queue the %s drain task", self.what, exc_info=True)
