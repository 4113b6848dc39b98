"""Start Django on a benchmark database: a new temporary file (deleted afterwards) or `--db PATH`."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def django_on(db: Path | None, *, prefix: str) -> Iterator[tuple[Path, bool]]:
    """Set up Django on `db` (None: a temporary file), migrate, and yield (path, is_temporary).

    The environment is set before django.setup() because settings read it once."""
    temp_dir = tempfile.mkdtemp(prefix=prefix) if db is None else None
    db_path = Path(temp_dir) / "bench.sqlite3" if temp_dir else Path(db or "").resolve()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    if temp_dir:
        os.environ["MEMORYHUB_DATA_DIR"] = temp_dir  # the secret key file goes there too
    os.environ["MEMORYHUB_DB_PATH"] = str(db_path)
    os.environ["DJANGO_SETTINGS_MODULE"] = "memoryhub.settings"

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    try:
        call_command("migrate", verbosity=0)
        yield db_path, temp_dir is not None
    finally:
        connection.close()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)


def settle() -> None:
    """On PostgreSQL, what autovacuum does within a minute of a bulk load on a default server
    (this machine's server runs with autovacuum off): the `vacuum` maintenance job's VACUUM
    (ANALYZE), which gathers planner statistics and merges the full-text GIN indexes' pending
    entries. Timing right after a load would otherwise measure queries planned for empty tables
    and searches reading through megabytes of pending index entries, not the steady state.
    Nothing on SQLite."""
    if not os.environ.get("MEMORYHUB_DATABASE_URL"):
        return
    from kernel import db_maintenance

    db_maintenance.vacuum()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_daphne(env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """A daphne server on a free loopback port, once it accepts connections: (process, port)."""
    import socket
    import sys
    import time

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "memoryhub.asgi:application"],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, port
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.1)


def database_engine() -> str:
    """Which database the benchmark runs on: `SQLite 3.x`, or `PostgreSQL 15.x` when
    MEMORYHUB_DATABASE_URL is set (every benchmark then builds in and serves from it)."""
    import sqlite3

    url = os.environ.get("MEMORYHUB_DATABASE_URL")
    if not url:
        return f"SQLite {sqlite3.sqlite_version}"
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    version = row[0].split()[0] if row else "?"
    return f"PostgreSQL {version} ({url.rsplit('@', 1)[-1]})"


def environment_line(db_path: Path, temporary: bool) -> str:
    """What a page benchmark ran on (after Django is set up): versions, machine, database."""
    import platform

    import django

    return (
        f"Python {platform.python_version()}, {database_engine()}, Django {django.get_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs; database {db_path}{' (temporary)' if temporary else ''}\n"
    )
