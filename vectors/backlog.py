"""The embedding backlog: texts committed but not embedded yet, and the drainer that embeds them.

In the default write mode (MEMORYHUB_EMBED_MODE=behind) a write commits its observations together
with one `vectors_pending` row each (`enqueue`, called by vectors/embedding.py inside the write's
transaction), so the write costs no model time and a crash or restart loses nothing: whatever is
pending is embedded by the next process that drains.

Draining (`drain_once`) is three steps, and only the first and last touch the write lock:

1. claim a batch with a lease (`claimed_until`): one UPDATE ... RETURNING, so two processes (or a
   server and a Celery worker) never embed the same rows at the same time;
2. read the bodies and embed them, outside any transaction (embedding takes about a millisecond a
   text; holding SQLite's one write lock that long would stall every writer);
3. in one short transaction, re-read the bodies, store the vectors of those unchanged since the
   claim and delete their pending rows. A text deleted meanwhile only loses its row; a text
   rewritten meanwhile was queued again by its rewrite and is left for the next round.

An embedder failure keeps the rows, counts the attempt, and pushes the next one back (2^attempts
seconds, at most MEMORYHUB_EMBED_RETRY_MAX_SECONDS), with the error kept for /healthz and the admin.

Queueing is vectors/pending.py. Who drains: a thread in every server process
(`start_in_background`, woken at once when a write of this process commits and polling for other
processes' writes), Celery workers when a broker is configured (vectors/tasks.py, queued on commit), and `catch_up`, which a vector or hybrid search
calls for its own namespaces so a text written in one call is found by meaning in the next, on any
process (read-your-writes).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from graph import observations
from graph.sql import as_json, db
from kernel.sql import POSTGRES, json_values, stored_time
from kernel.task_queue import DrainLoop
from vectors import store
from vectors.embedders import Embedder, default_embedder
from vectors.embedding import embed_texts
from vectors.models import OwnerKind
from vectors.pending import forget, run_after_commit
from vectors.store import IndexKey

logger = logging.getLogger(__name__)

_IDS = json_values()

# Kept of an embedder's error message per row: enough to see what went wrong.
MAX_ERROR_LENGTH = 500


# --- draining ------------------------------------------------------------------------------------


class EmbeddingFailed(Exception):
    """The embedder failed on a batch; the failure is recorded on its rows, which stay queued."""


@dataclass(frozen=True)
class Pending:
    id: int
    owner_id: int
    namespace_id: int
    attempts: int


# SQLite: BEGIN IMMEDIATE (kernel/database.py) makes the claim one writer's at a time. PostgreSQL
# runs claims side by side: a second claimer's subquery would pick the rows a first one has just
# updated (the UPDATE waits for their row locks, then rechecks only `id IN (...)`, which still
# holds), so the subquery locks what it picks and skips rows another claim holds locked (`FOR
# UPDATE SKIP LOCKED`); a row claimed and committed before it looks fails `claimed_until`.
_CLAIM = (
    "UPDATE vectors_pending SET claimed_until = ?1 WHERE id IN (SELECT id FROM vectors_pending "
    "WHERE (claimed_until IS NULL OR claimed_until < ?2) AND (next_attempt_at IS NULL OR next_attempt_at <= ?2) "
    + ("ORDER BY id LIMIT ?3 FOR UPDATE SKIP LOCKED) " if POSTGRES else "ORDER BY id LIMIT ?3) ")
    + "RETURNING id, owner_id, namespace_id, attempts"
)


def _claim(limit: int) -> list[Pending]:
    """Lease up to `limit` due rows, oldest first, to this caller for the lease time."""
    moment = timezone.now()
    until = stored_time(moment + datetime.timedelta(seconds=settings.MEMORYHUB_EMBED_BACKLOG_LEASE_SECONDS))
    stamp = stored_time(moment)
    with transaction.atomic():
        rows = db().execute(_CLAIM, (until, stamp, limit))
        return [Pending(*row) for row in rows.fetchall()]


# A batch is split across threads only when each part gets at least this many texts.
MIN_TEXTS_PER_THREAD = 8
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _embed(texts: list[str], embedder: Embedder) -> npt.NDArray[np.float32]:
    """Vectors of `texts`, computed on the embedding threads, the batch split across
    MEMORYHUB_EMBED_BACKLOG_THREADS of them: numpy releases the GIL in the model's matrix products
    (and an HTTP embedder waits on the network), so on an idle second core the parts run side by
    side (bench/RESULTS.md, "Write pipeline"). Those threads run at a lower CPU priority than the
    thread that writes to the database (see `_lower_priority`)."""
    global _pool
    threads = max(1, min(settings.MEMORYHUB_EMBED_BACKLOG_THREADS, len(texts) // MIN_TEXTS_PER_THREAD))
    with _pool_lock:
        if _pool is None or _pool._max_workers < threads:
            _pool = ThreadPoolExecutor(
                max_workers=max(threads, settings.MEMORYHUB_EMBED_BACKLOG_THREADS),
                thread_name_prefix="memoryhub-embed",
                initializer=_lower_priority,
            )
        pool = _pool
    size = -(-len(texts) // threads)
    parts = [texts[start : start + size] for start in range(0, len(texts), size)]
    return np.concatenate(list(pool.map(lambda part: embed_texts(part, embedder=embedder), parts)))


# Added to the embedding threads' niceness (19 is the lowest priority).
EMBED_NICENESS = 10


def _lower_priority() -> None:
    """Embedding is background work: when the cores are busy, requests go first. Only the
    embedding threads are lowered (Linux gives each thread its own niceness), never the thread
    that takes SQLite's write lock: a process holding the lock at a low priority would keep every
    writer waiting while the busy cores run others (priority inversion)."""
    with contextlib.suppress(OSError, AttributeError):
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + EMBED_NICENESS))


def _embed_and_store(rows: Sequence[Pending]) -> int:
    """Embed the rows' texts (no transaction held) and store the vectors of those whose text did
    not change meanwhile; return how many were stored. Raises EmbeddingFailed when the embedder
    fails, after recording the failure on the rows."""
    if not rows:
        return 0
    bodies = observations.bodies([row.owner_id for row in rows])
    embedder = default_embedder()
    wanted = [row for row in rows if bodies.get(row.owner_id, "").strip()]
    try:
        vectors = _embed([bodies[row.owner_id] for row in wanted], embedder) if wanted else None
    except Exception as error:
        _failed(rows, error)
        raise EmbeddingFailed(str(error)) from error
    by_owner = {row.owner_id: (row, i) for i, row in enumerate(wanted)}
    stored = 0
    with transaction.atomic():
        # Re-read: a text rewritten since the claim was queued again by its rewrite (its vector of
        # the old text must not be stored); a deleted one has nothing to store.
        current = observations.bodies([row.owner_id for row in rows])
        groups: dict[int, list[tuple[int, Any]]] = {}
        done: list[int] = []
        # Rows are written in one order, namespace then owner, whoever writes them: on PostgreSQL a
        # search catching up (newest first) and a drainer (oldest first) upserting the same rows
        # in opposite orders would each wait for the other's row locks (a deadlock).
        for row in sorted(rows, key=lambda row: (row.namespace_id, row.owner_id)):
            body = current.get(row.owner_id)
            if body is None or not body.strip():
                done.append(row.owner_id)
                continue
            if body != bodies.get(row.owner_id) or row.owner_id not in by_owner:
                continue
            assert vectors is not None
            groups.setdefault(row.namespace_id, []).append((row.owner_id, vectors[by_owner[row.owner_id][1]]))
            done.append(row.owner_id)
        for ns_id, items in sorted(groups.items()):
            store.put(IndexKey(ns_id, OwnerKind.OBSERVATION, embedder.model_id), items)
            stored += len(items)
        if done:
            forget(done)
    _counts.add(embedded=stored)
    return stored


_FAILED = "UPDATE vectors_pending SET attempts = attempts + 1, last_error = ?1, claimed_until = NULL, " + (
    "next_attempt_at = CAST(j.value ->> 1 AS timestamptz) FROM jsonb_array_elements(CAST(?2 AS jsonb)) AS j "
    "WHERE vectors_pending.id = CAST(j.value ->> 0 AS bigint)"
    if POSTGRES
    else "next_attempt_at = j.value ->> 1 FROM json_each(?2) AS j WHERE vectors_pending.id = j.value ->> 0"
)


def _failed(rows: Sequence[Pending], error: BaseException) -> None:
    """Count an attempt on each row and push its next one back; nothing is dropped."""
    message = (str(error) or type(error).__name__)[:MAX_ERROR_LENGTH]
    moment = timezone.now()
    cap = settings.MEMORYHUB_EMBED_RETRY_MAX_SECONDS
    items = [
        [row.id, stored_time(moment + datetime.timedelta(seconds=min(cap, 2 ** min(row.attempts, 20))))] for row in rows
    ]
    with transaction.atomic():
        db().execute(_FAILED, (message, as_json(items)))
    _counts.add(failed=len(rows))
    logger.warning("embedding %d pending texts failed (they stay queued): %s", len(rows), message)


def drain_once(limit: int | None = None) -> int:
    """Claim, embed and store one batch of due rows; return how many rows it handled (0: nothing
    was due). Raises EmbeddingFailed when the embedder fails (the rows are kept for a later
    attempt)."""
    rows = _claim(limit or settings.MEMORYHUB_EMBED_BACKLOG_BATCH)
    _embed_and_store(rows)
    return len(rows)


def drain(*, limit: int | None = None, stop: threading.Event | None = None) -> int:
    """Drain until nothing is due (or `stop` is set); return the rows handled. An embedder failure
    ends the run (the rows wait for their backoff)."""
    handled = 0
    while stop is None or not stop.is_set():
        try:
            count = drain_once(limit)
        except EmbeddingFailed:
            break
        if not count:
            break
        handled += count
    return handled


def catch_up(namespace_ids: Iterable[int], *, limit: int | None = None) -> int:
    """Embed and store the pending texts of these namespaces now, newest first, up to `limit`
    (MEMORYHUB_EMBED_CATCH_UP_MAX); return how many. For reads whose answer depends on the
    vectors being there (vector and hybrid search): a text written in the previous call is always
    among the newest, so it is found. Leases and backoff are ignored (another process embedding
    the same rows only doubles work: storing is an upsert). One indexed query when nothing is
    pending. An embedder failure is recorded on the rows and not raised: the search goes on with
    the vectors there are (and reports the embedder's failure itself when it embeds its query)."""
    ids = sorted(set(namespace_ids))
    if not ids or not settings.MEMORYHUB_EMBED_ON_WRITE:
        return 0
    rows = [
        Pending(*row)
        for row in db().execute(
            "SELECT id, owner_id, namespace_id, attempts FROM vectors_pending "
            f"WHERE namespace_id IN {_IDS} ORDER BY id DESC LIMIT ?",
            (as_json(ids), limit or settings.MEMORYHUB_EMBED_CATCH_UP_MAX),
        )
    ]
    if not rows:
        return 0
    try:
        return _embed_and_store(rows)
    except EmbeddingFailed:
        return 0


# --- what is pending (health, metrics, admin) ----------------------------------------------------


@dataclass(frozen=True)
class BacklogState:
    size: int
    # Seconds since the oldest pending row was queued (0 when none is).
    oldest_age_seconds: float
    # Rows whose last attempt failed (they wait for their backoff).
    failing: int
    last_error: str


def state() -> BacklogState:
    """The backlog as one statement sees it (a count over the whole table: cheap while the backlog
    is small, which is the healthy case)."""
    size, oldest, failing = (
        db()
        .execute("SELECT count(*), min(enqueued_at), count(*) FILTER (WHERE attempts > 0) FROM vectors_pending")
        .fetchone()
    )
    error = ""
    if failing:
        row = (
            db()
            .execute("SELECT last_error FROM vectors_pending WHERE attempts > 0 ORDER BY next_attempt_at DESC LIMIT 1")
            .fetchone()
        )
        error = row[0] if row else ""
    age = 0.0
    if oldest:
        from django.utils.dateparse import parse_datetime

        # Text on SQLite, an aware datetime on PostgreSQL.
        parsed = oldest if isinstance(oldest, datetime.datetime) else parse_datetime(oldest)
        if parsed is not None:
            if timezone.is_naive(parsed):
                parsed = timezone.make_aware(parsed, datetime.UTC)
            age = max((timezone.now() - parsed).total_seconds(), 0.0)
    return BacklogState(int(size), round(age, 3), int(failing or 0), error)


class _Counts:
    """Texts embedded and failed by this process (for /metrics)."""

    def __init__(self) -> None:
        self.embedded = 0
        self.failed = 0
        self._lock = threading.Lock()

    def add(self, *, embedded: int = 0, failed: int = 0) -> None:
        with self._lock:
            self.embedded += embedded
            self.failed += failed


_counts = _Counts()


def counts() -> tuple[int, int]:
    """(texts embedded, texts whose embedding failed) by this process since it started."""
    return _counts.embedded, _counts.failed


# --- the background drainer of a server process ---------------------------------------------------


def drain_loop(*, report: Callable[[], object] | None = None) -> DrainLoop:
    """The backlog's drain loop: at once when woken (a local write committed), else every
    MEMORYHUB_EMBED_BACKLOG_POLL_MS (another process's writes, rows whose backoff ended). Runs in
    the worker process (`manage.py drain_embeddings`) or in a thread."""
    return DrainLoop(
        lambda stop: drain(stop=stop),
        poll_seconds=settings.MEMORYHUB_EMBED_BACKLOG_POLL_MS / 1000,
        what="embedding backlog",
        report=report,
    )


class _ThreadWorker:
    """The drainer as a thread of the server process (MEMORYHUB_EMBED_WORKER=thread)."""

    def __init__(self) -> None:
        self.drainer = drain_loop()
        self.thread = threading.Thread(target=self._run, name="memoryhub-embed-backlog", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self._load_model()
        self.drainer.run()

    @staticmethod
    def _load_model() -> None:
        """Load the built-in model before the first writes: loading holds the GIL for long
        stretches, and a writer thread starved of it while holding SQLite's write lock made other
        writers time out ("database is locked")."""
        if settings.MEMORYHUB_EMBEDDER == "builtin":
            try:
                default_embedder().embed(["warm up"])
            except Exception:  # the first drain reports a broken model as a failed attempt
                logger.exception("embedding backlog: loading the built-in model failed")

    def wake(self) -> None:
        self.drainer.wake()

    def close(self) -> None:
        self.drainer.close()
        self.thread.join(timeout=10)


class _ProcessWorker:
    """The drainer as a child process (`manage.py drain_embeddings`, MEMORYHUB_EMBED_WORKER=process):
    the model runs on its own interpreter, so neither its GIL-holding Python parts nor its numpy
    calls slow the server's request threads, and a second core embeds while the first serves. The
    server wakes it with a line on its stdin; it exits when its stdin closes, which also happens
    when the server is killed (the pipe closes with the process)."""

    # A child that died is started again at most this often.
    RESTART_SECONDS = 5.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self._spawn()

    def _spawn(self) -> None:
        self.started_at = time.monotonic()
        process = self.process = subprocess.Popen(
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "drain_embeddings"],
            stdin=subprocess.PIPE,
            # A pipe of its own (never this process's stdout, the MCP channel of a stdio server):
            # the child reports what it embedded there, for this process's /metrics.
            stdout=subprocess.PIPE,
            cwd=settings.BASE_DIR,
        )
        threading.Thread(target=self._read_counts, args=(process,), name="memoryhub-embed-counts", daemon=True).start()

    @staticmethod
    def _read_counts(process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[0] == COUNTS_LINE:
                _counts.add(embedded=int(parts[1]), failed=int(parts[2]))

    def wake(self) -> None:
        with self.lock:
            process = self.process
            if process is None:
                return
            if process.poll() is not None:
                if time.monotonic() - self.started_at < self.RESTART_SECONDS:
                    return  # the polling of the other processes covers the gap
                logger.warning("embedding worker exited with %s; starting it again", process.returncode)
                self._spawn()
                process = self.process
            assert process is not None
            assert process.stdin is not None
            try:
                process.stdin.write(b"\n")
                process.stdin.flush()
            except (BrokenPipeError, OSError):
                pass

    def close(self) -> None:
        with self.lock:
            process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


# What the worker process writes on its stdout after each round: "counts <embedded> <failed>" (the
# texts of that round), added to the server's counters for /metrics.
COUNTS_LINE = b"counts"
_reported = (0, 0)


def _report_counts() -> None:
    global _reported
    embedded, failed = counts()
    if (embedded, failed) != _reported:
        sys.stdout.buffer.write(b"%s %d %d\n" % (COUNTS_LINE, embedded - _reported[0], failed - _reported[1]))
        sys.stdout.buffer.flush()
        _reported = (embedded, failed)


def follow(stream: BinaryIO) -> None:
    """The worker process's loop (`manage.py drain_embeddings`): drain when a line arrives on
    `stream` and every poll interval; return when `stream` ends (the server closed it or died)."""
    drainer = drain_loop(report=_report_counts)

    def read() -> None:
        try:
            while stream.readline():
                drainer.wake()
        finally:
            drainer.close()

    threading.Thread(target=read, name="memoryhub-embed-wake", daemon=True).start()
    drainer.run()


_worker: _ThreadWorker | _ProcessWorker | None = None
_worker_lock = threading.Lock()


def start_in_background() -> _ThreadWorker | _ProcessWorker | None:
    """Start this server process's drainer (once; registered with kernel.startup.on_server_start):
    a child process or a thread (MEMORYHUB_EMBED_WORKER). It runs in both modes whenever embedding
    on write is on: rows queued under `behind` still drain after a switch to `inline`."""
    global _worker
    if not settings.MEMORYHUB_EMBED_ON_WRITE:
        return None
    with _worker_lock:
        if _worker is None:
            _worker = _ProcessWorker() if settings.MEMORYHUB_EMBED_WORKER == "process" else _ThreadWorker()
            # Exit stops it (a thread still inside SQLite or numpy while the interpreter finalizes
            # can abort the process).
            atexit.register(_worker.close)
        return _worker


def wake() -> None:
    """Have this process's drainer (if it runs one) look at the backlog now."""
    if _worker is not None:
        _worker.wake()


def retry_now(ids: Sequence[int]) -> int:
    """End the backoff and the claim of these pending rows (by row id) and wake the drainer: for
    an operator whose embedder is back. Returns how many rows there were."""
    with transaction.atomic():
        changed = (
            db()
            .execute(
                f"UPDATE vectors_pending SET next_attempt_at = NULL, claimed_until = NULL WHERE id IN {_IDS}",
                (as_json(ids),),
            )
            .rowcount
        )
        transaction.on_commit(run_after_commit)
    return int(changed)
