"""The SQLite backend (kernel/sqlite, kernel/database.py) as the settings configure it: the
server pragmas on every connection, and a new file's layout set once."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection

pytestmark = pytest.mark.sqlite_only(reason="SQLite's pragmas and file layout; PostgreSQL's form: test_postgres.py")


def test_connections_use_the_server_pragmas(db, settings):
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == {"async": 1, "sync": 2}[settings.DURABILITY]
        cursor.execute("PRAGMA foreign_keys")
        assert cursor.fetchone()[0] == 1
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 5000
    assert connection.transaction_mode == "IMMEDIATE"  # type: ignore[attr-defined]


def test_a_new_database_file_gets_its_layout_once_and_connections_write_nothing(db, settings):
    """page_size and incremental auto-vacuum are set when the file is made (here: the test
    database); opening a connection on an existing file must not write to its WAL."""
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA auto_vacuum")
        assert cursor.fetchone()[0] == 2  # INCREMENTAL
        cursor.execute("PRAGMA page_size")
        assert cursor.fetchone()[0] == 4096
    wal = Path(connection.settings_dict["NAME"] + "-wal")
    before = wal.stat().st_size if wal.exists() else 0
    for _ in range(5):
        extra = connection.copy()
        extra.ensure_connection()
        extra.close()
    assert (wal.stat().st_size if wal.exists() else 0) == before
