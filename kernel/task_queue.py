"""Draining work left behind by writes: a drain task queued on Celery after a commit, at most
once per interval per process (`Debounced`), and the loop a server process drains in (`DrainLoop`).

The write paths that leave work behind (the embedding backlog, vectors/pending.py; the extraction
queue, memory/extraction.py) ask a worker to drain after their commit. One task drains whatever is
there, so a burst of writes needs one message, not one per write; the server processes' own
drainers poll too, so a task that waits unclaimed past its expiry is moot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
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


class DrainLoop:
    """Calls `drain(stop)` in a loop: at once when woken (`wake`: a local write committed), else
    every `poll_seconds` (other processes' writes, backoffs that ended), until `close`. A failed
    drain (a database hiccup) is logged and tried again on the next turn; `report`, when given,
    runs after every drain. `run` blocks: call it in the thread or process that drains."""

    def __init__(
        self,
        drain: Callable[[threading.Event], object],
        *,
        poll_seconds: float,
        what: str,
        report: Callable[[], object] | None = None,
    ) -> None:
        self.drain = drain
        self.poll_seconds = poll_seconds
        self.what = what
        self.report = report
        self.wanted = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.stop.is_set():
                try:
                    self.drain(self.stop)
                except Exception:
                    logger.exception("%s: drain failed", self.what)
                    connection.close_if_unusable_or_obsolete()
                if self.report is not None:
                    self.report()
                self.wanted.wait(self.poll_seconds)
                self.wanted.clear()
        finally:
            connection.close()

    def wake(self) -> None:
        self.wanted.set()

    def close(self) -> None:
        self.stop.set()
        self.wanted.set()
