"""The database configured for a server: SQLite by default, PostgreSQL with MEMORYHUB_DATABASE_URL.

SQLite is configured for a server rather than for a desktop app.

Every connection runs the same pragmas (Django's `init_command`), and every `atomic()` block
starts with BEGIN IMMEDIATE (`transaction_mode`), so a writer takes the write lock up front
instead of failing with "database is locked" when it upgrades a read transaction halfway.
"""

from __future__ import annotations

from typing import Any

# MEMORYHUB_DURABILITY: `sync` fsyncs the WAL on every commit (nothing acknowledged is lost on
# power failure); `async` (default) fsyncs at checkpoints only. In WAL mode that still never
# corrupts the database; it can lose the last commits before a power cut (not a process crash).
SYNCHRONOUS_FOR_DURABILITY = {"sync": "FULL", "async": "NORMAL"}


def sqlite_options(
    *,
    durability: str,
    busy_timeout_ms: int,
    page_size: int,
    cache_size_mb: int,
    mmap_size_mb: int,
) -> dict[str, Any]:
    pragmas = [
        # page_size and auto_vacuum are set once, when the file is made (kernel/sqlite/base.py):
        # run on every connection, auto_vacuum would write a page to the WAL each time.
        "PRAGMA journal_mode=WAL",
        f"PRAGMA synchronous={SYNCHRONOUS_FOR_DURABILITY[durability]}",
        f"PRAGMA cache_size={-cache_size_mb * 1024}",
        f"PRAGMA mmap_size={mmap_size_mb * 1024 * 1024}",
        "PRAGMA temp_store=MEMORY",
        "PRAGMA foreign_keys=ON",
    ]
    return {
        "init_command": ";".join(pragmas),
        "page_size": page_size,
        "transaction_mode": "IMMEDIATE",
        # sqlite3's timeout is the busy handler: how long a writer waits for the lock.
        "timeout": busy_timeout_ms / 1000,
    }


# How long a request waits for a pooled PostgreSQL connection when all are in use.
POOL_WAIT_SECONDS = 10


def postgres_database(
    url: str,
    *,
    durability: str,
    test_name: str | None,
    prepare_threshold: int = 5,
    pool_size: int = 10,
    parallel_workers: int = 0,
) -> dict[str, Any]:
    """Django's PostgreSQL settings from MEMORYHUB_DATABASE_URL (postgres://user:pw@host:port/name).

    Durability maps to `synchronous_commit`: `sync` waits for the WAL flush (and for standbys,
    where the server is so configured) before a commit is acknowledged; `async` acknowledges
    first, and a server crash can lose the last fraction of a second of commits, never corrupting."""
    import dj_database_url

    config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=0, conn_health_checks=True))
    if config.get("ENGINE") != "django.db.backends.postgresql":
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"MEMORYHUB_DATABASE_URL must be a postgres:// URL, not {url.split(':', 1)[0]}://")
    options = dict(config.get("OPTIONS") or {})
    synchronous_commit = "on" if durability == "sync" else "off"
    # No parallel workers per statement unless asked (MEMORYHUB_PG_PARALLEL_WORKERS): the store's
    # statements take milliseconds, and starting workers costs about as much (a search planned
    # parallel ran twice as long: bench/RESULTS.md); under load the workers also take cores
    # from other requests.
    options["options"] = (
        f"-c synchronous_commit={synchronous_commit} -c max_parallel_workers_per_gather={parallel_workers} "
        + options.get("options", "")
    )
    # After this many runs on one connection psycopg prepares a statement (kernel/sql.py
    # PostgresConnection); 0 never does, for a pooler that cannot keep prepared statements
    # (PgBouncer in transaction mode before 1.21). Django's own cursors never prepare.
    options.setdefault("prepare_threshold", prepare_threshold or None)
    if pool_size:
        # Each process keeps up to `pool_size` connections (psycopg_pool through Django's `pool`
        # option) instead of opening one per request: a connection costs 5-7 ms to open here,
        # more than most requests, and statements are prepared only on a connection that lives.
        # One stays open when idle; a request finding them all busy waits POOL_WAIT_SECONDS and
        # is then answered `store_busy` (503). Checked before each use (CONN_HEALTH_CHECKS), so
        # connections the server dropped (a restart, a failover) are replaced, not handed out.
        options.setdefault("pool", {"min_size": 1, "max_size": pool_size, "timeout": POOL_WAIT_SECONDS})
    config["OPTIONS"] = options
    if test_name:
        config["TEST"] = {"NAME": test_name}
    return config


def describe_database() -> dict[str, Any]:
    """What /healthz and the start-up banner report about the live database connection.

    SQLite: its version, journal mode and `synchronous` level. PostgreSQL: the server's version and
    this connection's `synchronous_commit` (what MEMORYHUB_DURABILITY set, unless the server or the
    URL's options override it: the value reported is the one in force). Both: the durability asked."""
    from django.conf import settings
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version'), current_setting('synchronous_commit')")
            server_version, synchronous_commit = cursor.fetchone()
        return {
            "engine": "postgresql",
            "server_version": server_version,
            "synchronous_commit": synchronous_commit,
            "durability": settings.DURABILITY,
        }
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal_mode = cursor.fetchone()[0]
        cursor.execute("PRAGMA synchronous")
        synchronous = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(cursor.fetchone()[0], "?")
        cursor.execute("SELECT sqlite_version()")
        version = cursor.fetchone()[0]
    return {
        "engine": "sqlite",
        "sqlite_version": version,
        "journal_mode": journal_mode.upper(),
        "synchronous": synchronous,
        "durability": settings.DURABILITY,
    }
