"""Upkeep of the SQLite file itself: WAL checkpoints, planner statistics, FTS5 index merging.

Services (called by memoryhub/tasks.py on a schedule, and by `manage.py maintenance`); each returns
a small JSON-able summary. None of them changes what any query returns.
"""

from __future__ import annotations

import time
from typing import Literal, TypedDict

from django.db import transaction

from kernel.sql import db

CheckpointMode = Literal["PASSIVE", "FULL", "RESTART", "TRUNCATE"]
# The FTS5 tables `fts_optimize` merges, registered by the apps that own them at start (the graph:
# entity names, observation and memory text).
_fts_tables: list[str] = []


def register_fts_tables(*tables: str) -> None:
    """Called by an app at start (its AppConfig.ready) for the FTS5 tables it owns."""
    _fts_tables.extend(table for table in tables if table not in _fts_tables)


def fts_tables() -> tuple[str, ...]:
    return tuple(_fts_tables)


class CheckpointResult(TypedDict):
    mode: str
    busy: bool
    walPages: int
    checkpointedPages: int


def wal_checkpoint(*, mode: CheckpointMode = "PASSIVE") -> CheckpointResult:
    """Copy committed pages from the WAL into the database file.

    PASSIVE copies what it can without waiting for anyone, so it is cheap enough to run often;
    SQLite's own automatic checkpoint (every 1000 pages) does the same, but only inside a committing
    writer, which then pays for it. TRUNCATE waits (up to the busy timeout) for writers, copies
    everything and empties the WAL file, so it cannot grow without bound when readers keep some
    checkpoint from finishing. `busy` means it could not finish (a reader or writer was in the way);
    the next run catches up."""
    if mode not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
        raise ValueError(f"unknown checkpoint mode {mode!r}")
    conn = db()
    if conn.in_transaction:
        # Inside a transaction a checkpoint can only report "busy".
        raise RuntimeError("a WAL checkpoint cannot run inside a transaction")
    busy, log_pages, checkpointed = conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return {"mode": mode, "busy": bool(busy), "walPages": int(log_pages), "checkpointedPages": int(checkpointed)}


class OptimizeResult(TypedDict):
    analyzed: list[str]
    ms: float


def optimize() -> OptimizeResult:
    """`PRAGMA optimize`: refresh the query planner's statistics (ANALYZE, with a row budget per
    index) for the tables that might benefit, which is usually none, so it is cheap to run hourly.

    Mask 0x10002 asks SQLite 3.46+ to consider every table; older versions (Debian 12 ships 3.40)
    ignore that bit and only consider tables this connection has queried, so from a maintenance
    connection it mostly does nothing there. Deliberately not a plain ANALYZE: the hot queries are
    written for the planner without statistics (graph/sql.py, vectors/store.py), and statistics
    on every table would change plans no benchmark has checked."""
    conn = db()
    started = time.perf_counter()
    conn.execute("PRAGMA analysis_limit=400")
    # 0x1: report what would be analyzed, without doing it.
    analyzed = [row[0] for row in conn.execute("PRAGMA optimize(0x10003)").fetchall()]
    conn.execute("PRAGMA optimize(0x10002)")
    return {"analyzed": analyzed, "ms": round((time.perf_counter() - started) * 1000, 1)}


class FtsOptimizeResult(TypedDict):
    tables: dict[str, float]
    freedPages: int


def fts_optimize() -> FtsOptimizeResult:
    """Merge each FTS5 index into a single b-tree (FTS5 'optimize'): every write adds a small
    segment that searches must consult until merged, and deletes leave tombstones. Then return the
    pages that freed to the file system (the file uses incremental auto-vacuum).

    Holds the write lock for each table's merge (about a second per 100k rows), so it runs rarely
    (daily by default); FTS5's automerge keeps segment counts in check between runs."""
    conn = db()
    timings: dict[str, float] = {}
    for table in _fts_tables:
        started = time.perf_counter()
        with transaction.atomic():
            conn.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
        timings[table] = round((time.perf_counter() - started) * 1000, 1)
    free_before = conn.execute("PRAGMA freelist_count").fetchone()[0]
    if not conn.in_transaction:
        # Through executescript (sqlite3_exec): the pragma frees one page per step of its statement,
        # and cursor.execute() (even with fetchall) steps it once. executescript would commit an
        # open transaction first, hence only outside one (the pragma is then its own).
        conn.executescript("PRAGMA incremental_vacuum;")
    free_after = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return {"tables": timings, "freedPages": max(0, int(free_before) - int(free_after))}
