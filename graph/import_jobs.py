"""Imports that run behind a request: the console's uploads (console/transfer.py).

An upload is stored under MEMORYHUB_IMPORT_DIR with a name the server chooses, recorded as an
`ImportJob`, and queued for this process's import worker: one thread that runs the jobs one after
another (two at once would only take turns at SQLite's one write lock; each import commits in
chunks, graph.services.import_file, so agents' writes get the lock in between). The worker runs the import through the runner
(`access.operations.perform(access, "import_file", ...)`) with the uploader's access, so the grant
is checked again when it starts and the history records who imported. The upload is deleted when
the job ends, whatever the outcome.

Progress: while a job waits or runs, a publisher thread puts its state (phase, records done, total)
in the cache every HEARTBEAT_SECONDS, with a lifetime of STALE_SECONDS, rather than in the row (a
write per step would compete with the import's own). A job whose row says queued or running but
whose state is missing from the cache has no process working on it any more (the server stopped
or died: the chunks it committed stay, the rest was not imported) and reads as "interrupted". In a deployment of
several server processes, the cache must be shared (Redis; the cluster setting) for another process
to see a job's progress.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from access.operations import perform
from access.permissions import Access
from graph.models import ImportJob
from kernel.datadir import ensure_dir
from kernel.errors import DomainError

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 0.25  # how often a waiting or running job's state is published
STALE_SECONDS = 15  # published state lives this long: a job silent for longer has no worker
SKIPPED_KEPT = 1000  # skipped relations kept on the row (all are counted)
INTERRUPTED = "interrupted"  # a state of `status`, never stored


@dataclass
class Progress:
    """A job's published state: `phase` queued, reading (the file), importing, finished."""

    phase: str = "queued"
    done: int = 0
    total: int = 0


def _key(job_id: int) -> str:
    return f"graph:import-job:{job_id}"


def upload_dir() -> Path:
    return ensure_dir(Path(settings.MEMORYHUB_IMPORT_DIR))


def create(*, user_id: int, namespace: str, filename: str, chunks: Iterable[bytes]) -> ImportJob:
    """Store the upload (`chunks`) under a name of the server's choosing and record a queued job.
    The caller has checked that the user may write `namespace`; `filename` is for display only."""
    stored_name = f"{secrets.token_hex(16)}.upload"
    path = upload_dir() / stored_name
    size = 0
    try:
        with path.open("xb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                size += len(chunk)
        return ImportJob.objects.create(
            user_id=user_id, namespace=namespace, filename=filename[:255], stored_name=stored_name, size=size
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise


class _Worker:
    """This process's import worker and the publisher of its jobs' progress (both daemon threads,
    started with the first job)."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[tuple[int, Access]] = queue.Queue()
        self.pending: dict[int, Progress] = {}
        self.finished: dict[int, threading.Event] = {}
        self.lock = threading.Lock()
        self.started = False

    def submit(self, job_id: int, access: Access) -> None:
        with self.lock:
            self.pending[job_id] = Progress()
            self.finished[job_id] = threading.Event()
            if not self.started:
                threading.Thread(target=self.work, name="import-worker", daemon=True).start()
                threading.Thread(target=self.publish_forever, name="import-progress", daemon=True).start()
                self.started = True
        self.publish()  # at once: the job page may be read before the publisher's next turn
        self.jobs.put((job_id, access))

    def work(self) -> None:
        while True:
            job_id, access = self.jobs.get()
            try:
                _run(job_id, access, self.pending[job_id])
            except Exception:  # a database failure recording the outcome: the job reads as interrupted
                logger.exception("import job %s could not be recorded", job_id)
            finally:
                connection.close()
                with self.lock:
                    self.pending.pop(job_id, None)
                    event = self.finished.pop(job_id)
                cache.set(_key(job_id), asdict(Progress(phase="finished")), timeout=STALE_SECONDS)
                event.set()

    def publish(self) -> None:
        with self.lock:
            states = {_key(job_id): asdict(progress) for job_id, progress in self.pending.items()}
        if states:
            cache.set_many(states, timeout=STALE_SECONDS)

    def publish_forever(self) -> None:
        while True:
            time.sleep(HEARTBEAT_SECONDS)
            try:
                self.publish()
            except Exception:  # an unreachable cache: the next turn tries again
                logger.warning("could not publish import progress", exc_info=True)

    def wait(self, job_id: int, timeout: float) -> bool:
        with self.lock:
            event = self.finished.get(job_id)
        return event is None or event.wait(timeout)


_worker = _Worker()


def start(job: ImportJob, access: Access) -> None:
    """Queue `job` for this process's import worker, to run with `access` (the uploader's)."""
    _worker.submit(job.pk, access)


def wait(job_id: int, timeout: float) -> bool:
    """Block until this process's worker is done with the job (or `timeout` seconds pass);
    whether it is. For tests and orderly shutdowns."""
    return _worker.wait(job_id, timeout)


def _run(job_id: int, access: Access, progress: Progress) -> None:
    job = ImportJob.objects.get(pk=job_id)
    path = upload_dir() / job.stored_name
    ImportJob.objects.filter(pk=job_id).update(state=ImportJob.State.RUNNING, started_at=timezone.now())
    progress.phase = "reading"

    def advanced(done: int, total: int) -> None:
        # Called per batch of records (graph.services.import_graph); the publisher sends it on.
        progress.phase, progress.done, progress.total = "importing", done, total

    outcome: dict[str, Any]
    try:
        result = perform(access, "import_file", namespace=job.namespace, path=str(path), progress=advanced)
    except DomainError as error:  # a file that does not parse, a grant withdrawn, a limit
        outcome = {
            "state": ImportJob.State.FAILED,
            "error": error.message,
            "total": progress.total,
            "done": progress.done,
        }
    except Exception:
        logger.exception("import job %s failed", job_id)
        outcome = {
            "state": ImportJob.State.FAILED,
            "error": "The import failed unexpectedly.",
            "total": progress.total,
            "done": progress.done,
        }
    else:
        skipped = [dict(entry) for entry in result["skipped"]]
        counts = {name: value for name, value in result.items() if name != "skipped"}
        outcome = {
            "state": ImportJob.State.DONE,
            "counts": counts,
            "skipped": skipped[:SKIPPED_KEPT],
            "skipped_count": len(skipped),
            "total": progress.total,
            "done": progress.total,
        }
    finally:
        path.unlink(missing_ok=True)
    ImportJob.objects.filter(pk=job_id).update(**outcome, stored_name="", finished_at=timezone.now())


def jobs_of(user: Any) -> QuerySet[ImportJob]:
    """The jobs `user` may see, newest first: their own; every one for a superuser."""
    jobs = ImportJob.objects.order_by("-id")
    return jobs if user.is_superuser else jobs.filter(user_id=user.pk)


def status(job: ImportJob) -> dict[str, Any]:
    """{state, phase, done, total} of `job`: state queued, running, done, failed or interrupted
    (queued or running with no process working on it); refreshes `job` when it has just ended."""
    if job.state in (ImportJob.State.QUEUED, ImportJob.State.RUNNING):
        live = cache.get(_key(job.pk))
        if live is None or live["phase"] == "finished":
            job.refresh_from_db()  # it may have ended since the row was read
        elif live is not None:
            state = ImportJob.State.QUEUED if live["phase"] == "queued" else ImportJob.State.RUNNING
            return {"state": str(state), "phase": live["phase"], "done": live["done"], "total": live["total"]}
        if job.state in (ImportJob.State.QUEUED, ImportJob.State.RUNNING):
            return {"state": INTERRUPTED, "phase": INTERRUPTED, "done": job.done, "total": job.total}
    return {"state": str(job.state), "phase": "finished", "done": job.done, "total": job.total}
