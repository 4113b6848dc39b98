"""Upkeep of the database itself. None of it changes what any query returns.

SQLite: WAL checkpoints, planner statistics (PRAGMA optimize), FTS5 index merging.
PostgreSQL: VACUUM (ANALYZE) of MemoryHub's tables (`vacuum`: dead rows reclaimed, the full-text
GIN indexes' pending entries merged, statistics refreshed) and ANALYZE of the tables whose
statistics are stale (`analyze`). The server's autovacuum does the same on its own schedule; these
runs keep a busy or badly tuned server from falling behind. Checkpoints are the server's business
(checkpoint_timeout, max_wal_size), and there are no FTS5 tables.

Services (called by memoryhub/tasks.py on a schedule, and by `manage.py maintenance`); each returns
a small JSON-able summary. kernel/maintenance.py schedules the jobs of the configured backend.
"""

from __future__ import annotations

import time
from typing import Literal, TypedDict

from django.db import connection, transaction

from kernel.sql import POSTGRES, db

CheckpointMode = Literal["PASSIVE", "FULL", "RESTART", "TRUNCATE"]
# The FTS5 tables `fts_optimize` merges, registered by the apps that own them at start (the graph:
# entity names, observation and memory text).
_fts_tables: list[str] = []


def register_fts_tables(*tables: str) -> None:
    """Called by an app at start (its AppConfig.ready) for the FTS5 tables it owns."""
    _fts_tables.extend(table for table in tables if table not in _fts_tables)


def fts_tables() -> tuple[str, ...]:
    return tuple(_fts_tables)


def _sqlite_only(what: str) -> None:
    if POSTGRES:
        raise RuntimeError(f"{what} is SQLite upkeep; the database is PostgreSQL")


def _postgres_only(what: str) -> None:
    if not POSTGRES:
        raise RuntimeError(f"{what} is PostgreSQL upkeep; the database is SQLite")


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
    _sqlite_only("a WAL checkpoint")
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
    _sqlite_only("PRAGMA optimize (on PostgreSQL: analyze)")
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
    _sqlite_only("FTS5 optimize (on PostgreSQL, vacuum merges the GIN indexes)")
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


# --- PostgreSQL ------------------------------------------------------------------------------------

# MemoryHub's tables in the connection's schema that this role may vacuum and analyze (it owns
# them, as the role that ran the migrations does), with what the statistics collector knows of them.
_TABLES_SQL = """
SELECT s.relid::regclass::text, s.n_dead_tup, s.n_mod_since_analyze, c.reltuples,
       s.last_analyze IS NULL AND s.last_autoanalyze IS NULL
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema() AND pg_has_role(c.relowner, 'USAGE')
ORDER BY 1
"""


class VacuumResult(TypedDict):
    tables: int
    deadRowsBefore: int
    ms: float


def vacuum() -> VacuumResult:
    """PostgreSQL: `VACUUM (ANALYZE)` of every MemoryHub table. Reclaims the space of deleted and
    updated rows for reuse (it does not shrink files: that is VACUUM FULL, which locks tables out
    and is never run here), merges the pending entries of the full-text GIN indexes into them, and
    refreshes the planner's statistics. Reads and writes go on meanwhile (it takes no lock they
    wait for). Cannot run inside a transaction."""
    _postgres_only("VACUUM")
    if connection.in_atomic_block:
        raise RuntimeError("VACUUM cannot run inside a transaction")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(_TABLES_SQL)
        rows = cursor.fetchall()
        if rows:
            cursor.execute(f"VACUUM (ANALYZE) {', '.join(row[0] for row in rows)}")
    return {
        "tables": len(rows),
        "deadRowsBefore": sum(int(row[1]) for row in rows),
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }


# Autovacuum's own rule for when a table needs ANALYZE (autovacuum_analyze_threshold and
# autovacuum_analyze_scale_factor at their defaults): rows changed since the last analyze exceed
# 50 + 10% of the table.
ANALYZE_THRESHOLD = 50
ANALYZE_SCALE_FACTOR = 0.1


def analyze() -> OptimizeResult:
    """PostgreSQL's counterpart of `optimize`: ANALYZE the tables whose statistics are stale (never
    gathered, or more rows changed since than autovacuum's threshold), usually none, so it is cheap
    to run hourly. The same summary as `optimize`."""
    _postgres_only("ANALYZE")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(_TABLES_SQL)
        stale = [
            name
            for name, _dead, changed, tuples, never in cursor.fetchall()
            if never or changed > ANALYZE_THRESHOLD + ANALYZE_SCALE_FACTOR * max(float(tuples), 0.0)
        ]
        if stale:
            cursor.execute(f"ANALYZE {', '.join(stale)}")
    return {"analyzed": stale, "ms": round((time.perf_counter() - started) * 1000, 1)}
