"""PostgreSQL databases of the tests' own: one per server process's data directory (what a SQLite
file of its own is on SQLite), made and dropped here.

The suite runs on PostgreSQL when MEMORYHUB_DATABASE_URL is set (`make test-postgres`); then every
server process a fixture starts (tests/mcp_endpoint/conftest.py `server_env`) gets a database
named after that URL's, this machine, this process and a counter, and it is dropped when its
processes stop or this test process ends (or, for a process that died, by the next run on this
machine: names carry the pid). Nothing here runs on SQLite.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import itertools
import os
import re
import socket
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# The suite's PostgreSQL (the base of every name here), or None: the suite runs on SQLite.
BASE_URL = os.environ.get("MEMORYHUB_DATABASE_URL") or None
# The database PostgreSQL always has: CREATE / DROP DATABASE run connected to it.
ADMIN_DATABASE = "postgres"
# PostgreSQL cuts identifiers at 63 bytes.
_MAX_NAME = 63

# This machine, in four letters of its name's hash.
_MACHINE = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:4]

_lock = threading.Lock()
_counter = itertools.count(1)
_made: list[tuple[str, str | None]] = []  # (name, base URL or None: the suite's)


def url_for(name: str, base: str | None = None) -> str:
    """`base` (the suite's URL) naming database `name` instead."""
    parts = urlsplit(base or _base())
    return urlunsplit(parts._replace(path=f"/{name}"))


def _base() -> str:
    if BASE_URL is None:
        raise RuntimeError("MEMORYHUB_DATABASE_URL is not set: the suite runs on SQLite")
    return BASE_URL


def base_name(base: str | None = None) -> str:
    return urlsplit(base or _base()).path.lstrip("/") or "memoryhub"


def _prefix(base: str | None = None) -> str:
    """The suite's database name and this machine (test runs on several machines may share one
    PostgreSQL server: `_drop_left_behind` must only judge the pids of this one)."""
    # Letters, digits and _ only: the names are written into statements unquoted-safe.
    return re.sub(r"\W", "_", base_name(base))[:24] + "_t" + _MACHINE + "_"


def admin_connection(base: str | None = None) -> Any:
    """An autocommit connection to the server's `postgres` database (CREATE/DROP DATABASE)."""
    import psycopg

    return psycopg.connect(url_for(ADMIN_DATABASE, base), autocommit=True)


def new_name(label: str, base: str | None = None) -> str:
    """A database name no other test process uses: the suite's name, this pid, a counter."""
    name = f"{_prefix(base)}{os.getpid()}_{next(_counter)}_{re.sub(r'[^a-z0-9]', '', label.lower())}"
    return name[:_MAX_NAME]


def create(name: str, *, template: str | None = None, base: str | None = None) -> str:
    """Make database `name` (empty, or a copy of `template`) on the server of `base` (default: the
    suite's), dropped when this process ends at the latest; its URL."""
    with _lock:
        if not _made:
            atexit.register(drop_all)
        if not any(made_base == base for _, made_base in _made):
            _drop_left_behind(base)
        with admin_connection(base) as conn:
            clause = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{clause}')
        _made.append((name, base))
    return url_for(name, base)


def drop(name: str, base: str | None = None) -> None:
    with admin_connection(base) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    with _lock:
        if (name, base) in _made:
            _made.remove((name, base))


def drop_all() -> None:
    """Every database this process made (atexit)."""
    for name, base in list(reversed(_made)):
        # At exit: what cannot be dropped now the next run drops (`_drop_left_behind`).
        with contextlib.suppress(Exception):
            drop(name, base)


def _drop_left_behind(base: str | None) -> None:
    """Databases of test processes that are gone (killed before their atexit ran)."""
    pattern = re.compile(rf"^{re.escape(_prefix(base))}(\d+)_")
    with admin_connection(base) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database").fetchall()]
        for name in names:
            match = pattern.match(name)
            if match and not _alive(int(match.group(1))):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_empty(url: str) -> bool:
    """Whether the database at `url` has no tables yet (never migrated)."""
    import psycopg

    with psycopg.connect(url) as conn:
        (empty,) = conn.execute("SELECT to_regclass('django_migrations') IS NULL").fetchall()[0]
        return bool(empty)


def rows(url: str, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """`statement` (sqlite3's `?` placeholders) on the database at `url`: the rows."""
    import psycopg

    from kernel.sql import postgres_statement

    converted, _ = postgres_statement(statement)
    with psycopg.connect(url) as conn:
        return conn.execute(converted, params).fetchall()
