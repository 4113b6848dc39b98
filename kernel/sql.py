"""The raw database connection under Django's, and the time format it stores.

The store's hot paths talk to this connection directly (graph/sql.py says why); it is the same
connection Django uses, so `transaction.atomic()` covers these statements too.

On SQLite `db()` is the sqlite3 connection itself. On PostgreSQL it is `PostgresConnection`, the
same two calls (`execute`, `executemany`) over Django's psycopg connection, taking statements
written with sqlite3's placeholders (`?` and `:name`). What differs beyond placeholders is
written out per backend where the statement is (`POSTGRES` says which one runs).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone
from psycopg_pool import PoolTimeout

# Which backend runs: fixed by the settings before any app module is imported.
POSTGRES: bool = connections[DEFAULT_DB_ALIAS].vendor == "postgresql"

# One token of a statement: a quoted string or identifier (copied as is), a `::` cast, a `?` or
# `?NNN`, a `:name` placeholder, or a `%` (doubled for psycopg).
_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|::|\?(\d*)|:([A-Za-z_][A-Za-z0-9_]*)|%""")


@lru_cache(maxsize=2048)
def postgres_statement(statement: str) -> tuple[str, bool]:
    """`statement` with sqlite3's placeholders as psycopg's: `?` as `%s`, `:name` as `%(name)s`,
    `?NNN` as `%(_NNN)s`; and whether it numbers its placeholders (its parameters, a sequence,
    are then passed by those names)."""
    numbered = False

    def replace(match: re.Match[str]) -> str:
        nonlocal numbered
        token = match.group()
        if token == "?":
            return "%s"
        if token.startswith("?"):
            numbered = True
            return f"%(_{match.group(1)})s"
        if token == "%":
            return "%%"
        if match.group(2):
            return f"%({match.group(2)})s"
        # psycopg reads `%` as a placeholder even inside quotes.
        return token.replace("%", "%%")

    converted = _TOKEN.sub(replace, statement)
    return converted, numbered


def _postgres_params(numbered: bool, params: Params) -> Params:
    if numbered and not isinstance(params, Mapping):
        return {f"_{index}": value for index, value in enumerate(params, start=1)}
    return params


def json_rows(param: str = "?") -> str:
    """A table of the elements of the JSON array `param`, one column `value` (`value ->> 0` reads
    a pair's first item on both backends)."""
    return f"jsonb_array_elements(CAST({param} AS jsonb))" if POSTGRES else f"json_each({param})"


def in_json(param: str = "?", sql_type: str = "bigint") -> str:
    """`IN (SELECT value FROM json_each(param))`, for `x {in_json()}`: membership in the JSON list
    `param` (the same text as `{in_json()}` on SQLite). On PostgreSQL `= ANY(ARRAY(...))` of
    the same list: an index condition planned for a short list, where `IN (SELECT ...
    jsonb_array_elements_text(...))` is planned as a join with 100 rows (the function's default
    estimate) and may read a big table whole to hash it."""
    if POSTGRES:
        return (
            f"= ANY(ARRAY(SELECT CAST(value AS {sql_type}) FROM jsonb_array_elements_text(CAST({param} AS jsonb)) "
            "AS value))"
        )
    return f"IN {json_values(param)}"


def json_values(param: str = "?", sql_type: str = "bigint") -> str:
    """`(SELECT value FROM json_each(param))`: the scalars of the JSON array `param` as a subquery
    for `x IN ...`; on PostgreSQL cast to `sql_type` (bigint, text), which it compares strictly.
    The parameter is the same JSON text on both backends (graph/sql.py `as_json`)."""
    if POSTGRES:
        return f"(SELECT CAST(value AS {sql_type}) FROM jsonb_array_elements_text(CAST({param} AS jsonb)) AS value)"
    return f"(SELECT value FROM json_each({param}))"


Params = Sequence[Any] | Mapping[str, Any]


# Whether a statement (with its parameters' Python types) runs with its parameters bound by the
# server: True once it has, False once PostgreSQL refused to type them (see `_first_run`).
_server_bound: dict[tuple[str, tuple[type, ...]], bool] = {}
_SERVER_BOUND_MAX = 10_000
_PROBE = "SAVEPOINT memoryhub_binding"


class PostgresConnection:
    """sqlite3.Connection's `execute` and `executemany` over Django's psycopg connection: each
    returns a psycopg cursor (fetchone, fetchall, iteration, rowcount, description).

    `execute` binds parameters on the server where it can, so psycopg can prepare a statement
    run often on a connection (its `prepare_threshold`, MEMORYHUB_PG_PREPARE_THRESHOLD): a
    prepared statement skips PostgreSQL's planning, about 0.3 ms of a 0.4 ms point read here
    (bench/RESULTS.md). Django's own cursors bind in the client, where every statement is planned
    anew. Some statements cannot be typed without their values inlined (`? IS NULL` of a
    None, one parameter used as two types); those run as before, found out once per process."""

    __slots__ = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, statement: str, params: Params = (), *, prepare: bool | None = None) -> Any:
        """`prepare=False`: plan this statement for its values on every run, never with a generic
        plan. For a statement whose best plan depends on its values more than planning costs: a
        full-text match, where how many rows hold the words decides between walking the newest
        rows and reading the index's matches (graph/selectors.py `_ranked_matches_postgres`)."""
        # Parameters always go along (empty or not), so psycopg always undoubles `%%`.
        converted, numbered = postgres_statement(statement)
        values = _postgres_params(numbered, params)
        key = (converted, tuple(map(type, values.values() if isinstance(values, Mapping) else values)))
        bound = _server_bound.get(key)
        if bound is None:
            if len(_server_bound) >= _SERVER_BOUND_MAX:
                # Statements are templates, so this stays small; a bound all the same, should
                # one ever carry its values in its text.
                _server_bound.clear()
            return self._first_run(key, converted, values, prepare)
        cursor = psycopg.Cursor(self.raw) if bound else self.raw.cursor()
        cursor.execute(converted, values, prepare=prepare)
        return cursor

    def _first_run(
        self, key: tuple[str, tuple[type, ...]], converted: str, values: Params, prepare: bool | None
    ) -> Any:
        """Run a statement server-bound for the first time in this process; if PostgreSQL cannot
        type its parameters (an error of class 42, raised before it runs), run it client-bound
        from now on. Inside a transaction a savepoint keeps the refusal from aborting it."""
        # Not in autocommit: in a transaction, or about to begin one with this statement.
        savepoint = not self.raw.autocommit
        if savepoint:
            self.raw.execute(_PROBE)
        try:
            cursor = psycopg.Cursor(self.raw)
            cursor.execute(converted, values, prepare=prepare)
        except psycopg.Error as refused:
            if not (refused.sqlstate or "").startswith("42"):
                raise
            if savepoint:
                self.raw.execute("ROLLBACK TO " + _PROBE)
                self.raw.execute("RELEASE " + _PROBE)
            _server_bound[key] = False
            cursor = self.raw.cursor()
            cursor.execute(converted, values, prepare=prepare)
            return cursor
        if savepoint:
            self.raw.execute("RELEASE " + _PROBE)
        _server_bound[key] = True
        return cursor

    def executemany(self, statement: str, rows: Iterable[Params]) -> Any:
        cursor = self.raw.cursor()
        converted, numbered = postgres_statement(statement)
        cursor.executemany(converted, [_postgres_params(numbered, row) for row in rows])
        return cursor


# A transient conflict, PostgreSQL's side: lock_not_available, deadlock_detected,
# serialization_failure. SQLite's: SQLITE_BUSY and SQLITE_LOCKED (the primary code, the low byte).
_BUSY_SQLSTATES = frozenset({"55P03", "40P01", "40001"})
_BUSY_SQLITE_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def is_busy(error: BaseException) -> bool:
    """Whether `error` (the driver's, or Django's wrapping it) says the database was busy rather
    than that the statement was wrong: the transaction did not happen and can be run again."""
    for cause in (error, error.__cause__):
        code = getattr(cause, "sqlite_errorcode", None)  # set on what sqlite3 raises
        if isinstance(cause, sqlite3.Error) and code is not None and code & 0xFF in _BUSY_SQLITE_CODES:
            return True
        if isinstance(cause, psycopg.Error) and cause.sqlstate in _BUSY_SQLSTATES:
            return True
        if isinstance(cause, PoolTimeout):  # every pooled connection stayed in use
            return True
    return False


def db() -> Any:
    """This thread's connection: sqlite3's, or PostgresConnection over psycopg's (see above).

    Typed Any: both answer `execute(statement, params)` with a cursor of the DB-API."""
    # One lookup of this thread's connection: each attribute read through the `connection`
    # proxy looks it up again (an asgiref Local), which was a seventh of a search's Python time.
    wrapper = connections[DEFAULT_DB_ALIAS]
    wrapper.ensure_connection()
    raw = wrapper.connection
    assert raw is not None
    if POSTGRES:
        return PostgresConnection(raw)
    return raw


def now() -> str:
    """The current time in the format Django stores DateTimeFields in SQLite."""
    # What `stored_time` gives for an aware UTC time (timezone.now() with USE_TZ), without the
    # backend's adapter: reads call this per statement, and marked reads per row.
    return str(timezone.now().replace(tzinfo=None))


def stored_time(value: datetime) -> str:
    """`value` in the format Django stores DateTimeFields in SQLite (UTC, compared as text)."""
    return str(connections[DEFAULT_DB_ALIAS].ops.adapt_datetimefield_value(value))


def iso(value: str | datetime | None) -> str | None:
    """A stored datetime as ISO 8601 UTC with a Z, to the second: how every surface shows times
    (the seed's format)."""
    if value is None:
        return None
    if isinstance(value, str) and value[10:11] == " " and (len(value) == 19 or (len(value) == 26 and value[19] == ".")):
        # The stored form (`stored_time`: naive UTC, "YYYY-MM-DD HH:MM:SS[.ffffff]"), cut rather
        # than parsed: reads that mark every fact's validity call this per row.
        return f"{value[:10]}T{value[11:19]}Z"
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
