"""Django's SQLite backend, with the file's layout set once when the file is made.

`page_size` and `auto_vacuum` only take effect on a new database, but running `PRAGMA
auto_vacuum` on an existing one still writes a page to the WAL, and `synchronous` is not yet
lowered at that point, so every new connection paid a write and an fsync. Here they run once,
when the file is new (or empty, as Django's test database starts), before WAL mode fixes the
page size; every connection then runs only the cheap pragmas of `init_command`.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from django.db.backends.sqlite3 import base


def prepare_file(path: str, *, page_size: int) -> None:
    """Give a new database file its page size, incremental auto-vacuum and WAL mode."""
    if path == ":memory:" or path.startswith("file:") or (os.path.exists(path) and os.path.getsize(path) > 0):
        return
    connection = sqlite3.connect(path)
    try:
        connection.execute(f"PRAGMA page_size={int(page_size)}")
        connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
        # Writes the header (with the two settings above) and makes the file a WAL database.
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        params: dict[str, Any] = super().get_connection_params()
        # Ours, not sqlite3.connect's.
        self.page_size = params.pop("page_size", 4096)
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        prepare_file(str(conn_params["database"]), page_size=self.page_size)
        return super().get_new_connection(conn_params)
