"""Background maintenance: every periodic job, declared once here, and the two ways they run.

- **Celery** (CELERY_BROKER_URL set): `celery -A memoryhub beat` sends each job's task on the
  schedule built by `beat_schedule()` (memoryhub/celery.py installs it), and `celery -A memoryhub
  worker` runs them (`make run-workers` starts both).
- **Embedded** (no broker, `make run`): every server process (daphne, mcp_stdio, mcp_tcp) runs the
  same jobs on a timer thread (`start_in_process()`, called by kernel/startup.py), one job at a
  time, logging each run, never letting a failure reach the server.

Either way a job runs under a lease row (kernel.models.MaintenanceJob), taken in one transaction
that holds the row (BEGIN IMMEDIATE on SQLite, SELECT ... FOR UPDATE on PostgreSQL), so no two
processes ever run one job at once: several server processes on
one database share the schedule (whichever finds a job due first runs it; the others see it ran),
and a Celery task that finds its job still running elsewhere returns at once. The row also
records each job's last run, which `manage.py maintenance --list` shows.

A task is the Celery face of a job: it lives in its app's tasks.py, takes namespaces or ids, calls
services, and returns a small JSON-able summary.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from celery import Task
from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from kernel import db_maintenance
from kernel.sql import POSTGRES

# The logger keeps its name from before the move to kernel/, so log output is unchanged.
logger = logging.getLogger("memoryhub.maintenance")


@dataclass(frozen=True)
class Job:
    name: str
    # Dotted path of the Celery task that does the work (any callable, for tests' own jobs).
    task: str
    # The setting holding the interval in seconds; 0 means never on a schedule.
    interval_setting: str
    # What the job does, for `manage.py maintenance --list`; "{fts_tables}" stands for the FTS5
    # tables the apps registered (kernel/db_maintenance.py), which the kernel does not name.
    about: str
    # Whether the task takes `namespace` (None: every namespace).
    takes_namespace: bool = False
    # The interval when the setting is not defined (a job newer than the settings that name it).
    default_interval: float | None = None

    @property
    def interval(self) -> float:
        if self.default_interval is not None:
            return float(getattr(settings, self.interval_setting, self.default_interval))
        return float(getattr(settings, self.interval_setting))

    @property
    def summary(self) -> str:
        return self.about.replace("{fts_tables}", " and ".join(db_maintenance.fts_tables()))


# The upkeep of the database itself (kernel/db_maintenance.py), which differs between backends.
SQLITE_JOBS: tuple[Job, ...] = (
    Job(
        "wal_checkpoint",
        "memoryhub.tasks.wal_checkpoint_task",
        "MEMORYHUB_MAINTENANCE_WAL_CHECKPOINT_SECONDS",
        "PASSIVE WAL checkpoint: copy committed pages into the database file without waiting",
    ),
    Job(
        "wal_truncate",
        "memoryhub.tasks.wal_truncate_task",
        "MEMORYHUB_MAINTENANCE_WAL_TRUNCATE_SECONDS",
        "TRUNCATE WAL checkpoint: copy everything and empty the WAL file",
    ),
    Job(
        "optimize",
        "memoryhub.tasks.optimize_task",
        "MEMORYHUB_MAINTENANCE_OPTIMIZE_SECONDS",
        "PRAGMA optimize: refresh planner statistics where they are stale",
    ),
    Job(
        "fts_optimize",
        "memoryhub.tasks.fts_optimize_task",
        "MEMORYHUB_MAINTENANCE_FTS_OPTIMIZE_SECONDS",
        "FTS5 optimize of {fts_tables}, then incremental vacuum",
    ),
)
POSTGRES_JOBS: tuple[Job, ...] = (
    Job(
        "vacuum",
        "memoryhub.tasks.vacuum_task",
        "MEMORYHUB_MAINTENANCE_VACUUM_SECONDS",
        "VACUUM (ANALYZE) of every MemoryHub table: reclaim dead rows, merge the full-text GIN indexes' "
        "pending entries, refresh statistics (as autovacuum does, so it cannot fall behind)",
        default_interval=86400,
    ),
    Job(
        "optimize",
        "memoryhub.tasks.optimize_task",
        "MEMORYHUB_MAINTENANCE_OPTIMIZE_SECONDS",
        "ANALYZE the tables whose planner statistics are stale (autovacuum's threshold)",
    ),
)
JOBS: tuple[Job, ...] = (POSTGRES_JOBS if POSTGRES else SQLITE_JOBS) + (
    Job(
        "purge_expired",
        "graph.tasks.purge_expired_task",
        "MEMORYHUB_MAINTENANCE_PURGE_EXPIRED_SECONDS",
        "delete memories and observations whose TTL has passed, with their vectors",
    ),
    Job(
        "purge_history",
        "graph.tasks.purge_history_task",
        "MEMORYHUB_MAINTENANCE_PURGE_HISTORY_SECONDS",
        "delete the versions of objects deleted or expired longer ago than MEMORYHUB_HISTORY_RETENTION_DAYS",
    ),
    Job(
        "ivf_retrain",
        "vectors.tasks.ivf_retrain_task",
        "MEMORYHUB_MAINTENANCE_IVF_RETRAIN_SECONDS",
        "rebuild IVF-Flat indexes that grew by MEMORYHUB_IVF_RETRAIN_GROWTH_PERCENT since their last rebuild",
        takes_namespace=True,
    ),
    Job(
        "hnsw_compact",
        "vectors.tasks.hnsw_compact_task",
        "MEMORYHUB_MAINTENANCE_HNSW_COMPACT_SECONDS",
        "rebuild HNSW indexes whose deletes reached MEMORYHUB_HNSW_COMPACT_DELETED_PERCENT of them",
        takes_namespace=True,
    ),
    Job(
        "reembed",
        "vectors.tasks.reembed_task",
        "MEMORYHUB_MAINTENANCE_REEMBED_SECONDS",
        "embed, in the current model, the text of namespaces whose vectors are of another model",
        takes_namespace=True,
    ),
    Job(
        "prune_changes",
        "vectors.tasks.prune_changes_task",
        "MEMORYHUB_MAINTENANCE_PRUNE_CHANGES_SECONDS",
        "delete vector change-log rows older than MEMORYHUB_VECTOR_CHANGE_RETENTION_SECONDS",
    ),
    Job(
        "purge_sessions",
        "mcp_endpoint.tasks.purge_sessions_task",
        "MEMORYHUB_MAINTENANCE_PURGE_SESSIONS_SECONDS",
        "delete ended MCP sessions and those idle past MEMORYHUB_MCP_SESSION_IDLE_SECONDS",
    ),
)
JOBS_BY_NAME = {job.name: job for job in JOBS}
JOBS_BY_TASK = {job.task: job for job in JOBS}


def beat_schedule(jobs: Sequence[Job] = JOBS) -> dict[str, dict[str, Any]]:
    """Celery beat's schedule: every job with an interval, sent as its task. A message not taken
    by a worker within one interval expires, so a stopped worker finds no backlog of duplicates.
    Scheduled runs store no result in the result backend: each run is recorded in its job's row."""
    return {
        job.name: {
            "task": job.task,
            "schedule": timedelta(seconds=job.interval),
            "options": {"expires": job.interval, "ignore_result": True},
        }
        for job in jobs
        if job.interval > 0
    }


# --- Leases -----------------------------------------------------------------------------------------


@dataclass
class Claim:
    job: str
    owner: str
    runner: str
    # When the lease was last renewed (time.monotonic()).
    renewed: float = field(default_factory=time.monotonic)


def _lease() -> timedelta:
    return timedelta(seconds=settings.MEMORYHUB_MAINTENANCE_LEASE_SECONDS)


def _try_claim(name: str, *, runner: str, due_after: float | None) -> Claim | datetime:
    """Take the job's lease: a Claim, or when to try again (it is running elsewhere, or with
    `due_after` seconds given, it ran more recently than that)."""
    from django.db import transaction

    from kernel.models import MaintenanceJob

    now = timezone.now()
    # The check and the take hold the job's row together: on SQLite the transaction's BEGIN
    # IMMEDIATE (kernel/database.py) holds the write lock; on PostgreSQL the row is read FOR UPDATE,
    # so a second process waits here and then sees the lease the first one took.
    with transaction.atomic():
        row, _ = MaintenanceJob.objects.get_or_create(name=name)
        if POSTGRES:
            row = MaintenanceJob.objects.select_for_update().get(pk=row.pk)
        if row.lease_owner and row.lease_until is not None and row.lease_until > now:
            return now + timedelta(seconds=min(due_after or 60.0, 60.0))
        if due_after is not None and row.last_started_at is not None:
            due = row.last_started_at + timedelta(seconds=due_after)
            if due > now:
                return due
        row.lease_owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        row.lease_until = now + _lease()
        row.last_started_at = now
        row.save(update_fields=["lease_owner", "lease_until", "last_started_at"])
    return Claim(name, row.lease_owner, runner)


def claim(name: str, *, runner: str, due_after: float | None = None) -> Claim | None:
    """The job's lease if nobody holds it (and, with `due_after`, if its last run started at least
    that many seconds ago); None otherwise. Release it with `finish`."""
    taken = _try_claim(name, runner=runner, due_after=due_after)
    return taken if isinstance(taken, Claim) else None


def finish(taken: Claim, *, result: Any = None, error: str | None = None, duration_ms: int) -> None:
    """Record the run and release the lease (unless another process took it over meanwhile)."""
    from django.db.models import F

    from kernel.models import MaintenanceJob

    updated = MaintenanceJob.objects.filter(name=taken.job, lease_owner=taken.owner).update(
        lease_owner="",
        lease_until=None,
        last_finished_at=timezone.now(),
        last_status=MaintenanceJob.Status.FAILED if error else MaintenanceJob.Status.OK,
        last_result=None if error else _json(result),
        last_error=error or "",
        last_duration_ms=duration_ms,
        last_runner=taken.runner[:160],
        runs=F("runs") + 1,
        failures=F("failures") + (1 if error else 0),
    )
    if not updated:
        logger.warning("maintenance %s: the lease expired while it ran; another process may have run it too", taken.job)


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class MaintenanceStopped(Exception):
    """Raised inside a long job (by `keep_alive`) when its process is shutting down."""


_current = threading.local()


def keep_alive() -> None:
    """Long jobs call this between batches: it renews the job's lease (so no other process takes
    over a job that is still making progress) and stops the job when its process is exiting. A
    no-op outside a job."""
    taken: Claim | None = getattr(_current, "claim", None)
    if taken is None:
        return
    stop: threading.Event | None = getattr(_current, "stop", None)
    if stop is not None and stop.is_set():
        raise MaintenanceStopped(f"{taken.job} stopped: the process is exiting")
    lease = _lease()
    if time.monotonic() - taken.renewed >= lease.total_seconds() / 4:
        from kernel.models import MaintenanceJob

        MaintenanceJob.objects.filter(name=taken.job, lease_owner=taken.owner).update(
            lease_until=timezone.now() + lease
        )
        taken.renewed = time.monotonic()


@dataclass(frozen=True)
class Outcome:
    job: str
    status: str  # "ok", "failed" or "skipped"
    result: Any = None
    error: str = ""
    duration_ms: int = 0
    # When the job is due next, as far as this run knows.
    next_due: datetime | None = None


def _run_claimed(
    taken: Claim, work: Callable[[], Any], *, stop: threading.Event | None = None, raise_errors: bool = False
) -> Outcome:
    _current.claim, _current.stop = taken, stop
    started = time.monotonic()
    try:
        result = work()
    except Exception as problem:
        duration = int((time.monotonic() - started) * 1000)
        error = f"{type(problem).__name__}: {problem}"
        if isinstance(problem, MaintenanceStopped):  # not a fault: the next run continues
            logger.warning("maintenance %s stopped after %d ms: the process is exiting", taken.job, duration)
        else:
            logger.exception("maintenance %s failed after %d ms (%s)", taken.job, duration, taken.runner)
        try:
            finish(taken, error=error, duration_ms=duration)
        except Exception:  # the database itself may be the problem; the lease then just expires
            logger.exception("maintenance %s: could not record the failure", taken.job)
        if raise_errors:
            raise
        return Outcome(taken.job, "failed", error=error, duration_ms=duration)
    finally:
        _current.claim = _current.stop = None
    duration = int((time.monotonic() - started) * 1000)
    finish(taken, result=result, duration_ms=duration)
    logger.info("maintenance %s done in %d ms (%s): %s", taken.job, duration, taken.runner, _brief(result))
    return Outcome(taken.job, "ok", result=result, duration_ms=duration)


def _brief(result: Any, limit: int = 300) -> str:
    text = json.dumps(_json(result), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def job_callable(job: Job) -> Callable[..., Any]:
    """What runs the job in this process: the task's body (its `run`), or a plain callable."""
    target = import_string(job.task)
    return target.run if isinstance(target, Task) else target


def run_job(
    job: Job,
    *,
    runner: str,
    namespace: str | None = None,
    due_only: bool = False,
    stop: threading.Event | None = None,
) -> Outcome:
    """Run `job` in this process now, under its lease (skipped if another process holds it; with
    `due_only`, also if its interval has not passed since its last run anywhere). Failures are
    logged and returned, never raised."""
    taken = _try_claim(job.name, runner=runner, due_after=job.interval if due_only else None)
    if not isinstance(taken, Claim):
        return Outcome(job.name, "skipped", next_due=taken)
    kwargs = {"namespace": namespace} if namespace is not None else {}
    body = job_callable(job)
    outcome = _run_claimed(taken, lambda: body(**kwargs), stop=stop)
    interval = job.interval
    return replace(outcome, next_due=timezone.now() + timedelta(seconds=interval) if interval > 0 else None)


class MaintenanceTask(Task):
    """Base class of the maintenance tasks: a run in a worker holds the job's lease, so it never
    overlaps the same job in another worker or process, and is recorded like a timer run. A task
    that finds its job running elsewhere returns {"skipped": ...} at once. Failures are recorded
    and re-raised (Celery marks the task FAILURE)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        job = JOBS_BY_TASK.get(self.name)
        name = job.name if job is not None else self.name
        runner = f"celery {self.request.hostname or socket.gethostname()}"
        taken = claim(name, runner=runner)
        if taken is None:
            logger.info("maintenance %s: already running in another process, skipped", name)
            return {"skipped": f"{name} is running in another process"}
        # self.run, not Task.__call__: in a worker the request (id, hostname) is already pushed,
        # and Task.__call__ would push an empty one over it.
        return _run_claimed(taken, lambda: self.run(*args, **kwargs), raise_errors=True).result


def report_progress(task: Task, *, done: int, total: int, **extra: Any) -> None:
    """Progress of a long task: its Celery state (PROGRESS, meta {done, total, ...}, read with
    AsyncResult(id).info) when it runs in a worker; always a log line; and the lease kept alive."""
    keep_alive()
    request = task.request
    if not request.called_directly and not request.is_eager and request.id:
        task.update_state(state="PROGRESS", meta={"done": done, "total": total, **extra})
    logger.info("%s: %d/%d %s", task.name, done, total, " ".join(f"{k}={v}" for k, v in extra.items()))


# --- The embedded timer ---------------------------------------------------------------------------


class Timer:
    """Runs the jobs on their intervals in a daemon thread of this process, one at a time."""

    def __init__(self, jobs: Sequence[Job] = JOBS, *, first_delay: float = 60.0) -> None:
        self.jobs = tuple(jobs)
        # A process that just started runs nothing for up to this long (start-up builds the
        # vector indexes meanwhile); after that each job runs when due.
        self.first_delay = first_delay
        self.runner = f"timer {socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._next: dict[str, datetime] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> Timer:
        now = timezone.now()
        for job in self.jobs:
            self._next[job.name] = now + timedelta(seconds=min(job.interval, self.first_delay))
        self._thread = threading.Thread(target=self._loop, name="memoryhub-maintenance", daemon=True)
        self._thread.start()
        atexit.register(self.stop)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the job under way (a long job stops at its next batch); wait up to `timeout`."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        from django.db import connection

        try:
            while not self._stop.is_set():
                self._stop.wait(self.run_due())
        finally:
            connection.close()

    def run_due(self) -> float:
        """Run each job that is due, one after the other; return seconds until one is due next."""
        from django.db import connection

        for job in self.jobs:
            interval = job.interval
            if self._stop.is_set() or interval <= 0 or timezone.now() < self._next[job.name]:
                continue
            try:
                outcome = run_job(job, runner=self.runner, due_only=True, stop=self._stop)
                next_due = outcome.next_due
            except Exception:  # taking the lease failed (say the database is locked): retry later
                logger.exception("maintenance %s could not start", job.name)
                next_due = None
            self._next[job.name] = next_due or timezone.now() + timedelta(seconds=interval)
            # A failed job may leave a broken connection behind; the next job gets a fresh one.
            connection.close_if_unusable_or_obsolete()
        pending = [self._next[job.name] for job in self.jobs if job.interval > 0]
        if not pending:
            return 60.0
        return min(60.0, max(0.05, (min(pending) - timezone.now()).total_seconds()))


_timer: Timer | None = None
_timer_lock = threading.Lock()


def start_in_process() -> Timer | None:
    """Start the timer thread of this server process, unless Celery runs the jobs
    (CELERY_BROKER_URL), MEMORYHUB_MAINTENANCE is off, or it already runs."""
    global _timer
    if not settings.MEMORYHUB_MAINTENANCE or settings.CELERY_BROKER_URL:
        return None
    scheduled = [job for job in JOBS if job.interval > 0]
    if not scheduled:
        return None
    with _timer_lock:
        if _timer is None or not _timer.alive:
            _timer = Timer(scheduled).start()
            logger.info(
                "maintenance: %d jobs on a timer in this process (no CELERY_BROKER_URL): %s",
                len(scheduled),
                ", ".join(job.name for job in scheduled),
            )
        return _timer
