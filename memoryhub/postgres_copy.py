"""Copy the SQLite database into PostgreSQL (`manage.py copy_to_postgres`, docs/operations/moving-to-postgresql.md).

Every row of every table moves: the tables Django knows and those only raw SQL knows (the vector
change log, the backlog), byte for byte for BLOBs (`bytea`). What SQLite alone has is left behind:
the FTS5 tables and their shadow tables (PostgreSQL indexes the generated `search_vector`
columns instead) and `sqlite_sequence` (it sets the PostgreSQL sequences).

How, in order:
1. The source must have every migration applied; `manage.py migrate` runs on the target (a
   subprocess with MEMORYHUB_DATABASE_URL set: the very code path a server on it runs), and the
   two must then list the same applied migrations.
2. A target holding rows in any table besides the three `migrate` fills (django_migrations,
   django_content_type, auth_permission; they are replaced by the source's rows, whose ids the
   other tables refer to) is refused unless `force`.
3. One transaction for the whole copy: the target is emptied (TRUNCATE), its triggers are off
   (`ALTER TABLE ... DISABLE TRIGGER USER`: the counters, the vector change log and the backlog
   would count and log every copied row a second time, and the ledger's append-only trigger
   refuses TRUNCATE), foreign keys are checked at commit (`SET CONSTRAINTS ALL DEFERRED`), each
   table streams in with COPY in batches read from SQLite, every sequence is set past the
   highest id SQLite ever gave (max(id), or sqlite_sequence's value where AUTOINCREMENT has
   gone further), the triggers are back on, and the row counts of every table are compared
   before the commit. A failure anywhere leaves the target as it was: nothing half-copied.
   The source is read inside one transaction too, so the copy is one snapshot.
4. `search_vector` (GENERATED ALWAYS) is never written; `search_name` / `search_text`, which
   SQLite leaves NULL for text FTS5 indexes as is, are written in PostgreSQL's index form
   (graph/fts.py) so full text finds every copied row.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction


def _seeded_by_migrate() -> frozenset[str]:
    """Tables `migrate` fills on any database: replaced by the source's rows (other tables refer
    to their ids). Named through their models: the tables are Django's."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType
    from django.db.migrations.recorder import MigrationRecorder

    return frozenset(model._meta.db_table for model in (MigrationRecorder.Migration, ContentType, Permission))


def _search_columns() -> dict[str, tuple[str, str]]:
    """{table: (search column, text column)}: SQLite leaves the search column NULL when FTS5
    indexes the text itself; PostgreSQL indexes `coalesce(search column, text column)`, and the
    application writes its index form for every row (graph/fts.py says which columns)."""
    from graph.fts import INDEXED_COLUMNS

    return dict(INDEXED_COLUMNS)


DEFAULT_BATCH = 5000
# (table, column, its sequence) for every identity or serial column of the current schema: from
# the catalog, as the sequence's dependency on its column (no function evaluated per row, which
# the planner may run on rows of other schemas before it filters them out).
SERIAL_COLUMNS = (
    "SELECT t.relname, a.attname, s.oid::regclass::text FROM pg_class s "
    "JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass "
    "AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
    "JOIN pg_class t ON t.oid = d.refobjid "
    "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid "
    "WHERE s.relkind = 'S' AND t.relnamespace = current_schema()::regnamespace ORDER BY 1, 2"
)


class CopyError(Exception):
    """The copy cannot go ahead, or did not copy every row: the message says why."""


@dataclass
class TableCount:
    table: str
    source: int
    target: int

    @property
    def matches(self) -> bool:
        return self.source == self.target


@dataclass
class CopyResult:
    counts: list[TableCount]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(count.source for count in self.counts)


def postgres_index_form() -> Callable[[str], str | None]:
    """graph/fts.py's index form for PostgreSQL, whichever backend this process runs on."""
    from graph import fts

    # `index_text` is chosen by the configured backend (this process: SQLite); the PostgreSQL
    # form is asked for by name where graph/fts.py offers it.
    form = getattr(fts, "postgres_index_text", None) or getattr(fts, "_postgres_index_text", None)
    return form or fts.index_text


def source_tables(cursor: Any) -> list[str]:
    """The SQLite database's tables that hold data: not FTS5's (virtual tables, their shadow
    tables), not SQLite's own (sqlite_sequence, sqlite_stat1)."""
    rows = cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
    virtual = [name for name, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")]
    return [
        name
        for name, _ in rows
        if not name.startswith("sqlite_")
        and name not in virtual
        and not any(name.startswith(f"{table}_") for table in virtual)
    ]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pending_migrations() -> list[str]:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def migrate_target(url: str) -> None:
    """`manage.py migrate` on the target, in a process configured for it."""
    env = {**os.environ, "MEMORYHUB_DATABASE_URL": url}
    done = subprocess.run(
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "migrate", "--noinput", "-v0"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise CopyError(f"migrate on the target failed:\n{(done.stderr or done.stdout)[-3000:]}")


def target_columns(pg: Any) -> dict[str, list[tuple[str, bool]]]:
    """table → [(column, generated)] for the target's tables, in column order."""
    rows = pg.execute(
        "SELECT c.table_name, c.column_name, c.is_generated = 'ALWAYS' FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position"
    ).fetchall()
    tables: dict[str, list[tuple[str, bool]]] = {}
    for table, column, generated in rows:
        tables.setdefault(table, []).append((column, generated))
    return tables


def referenced_first(pg: Any, tables: list[str]) -> list[str]:
    """`tables` ordered so that a table comes after those its foreign keys point at (cycles and
    self-references are left to the deferred constraint checks)."""
    edges = pg.execute(
        "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint "
        "WHERE contype = 'f' AND connamespace = current_schema()::regnamespace"
    ).fetchall()
    needs: dict[str, set[str]] = {table: set() for table in tables}
    for child, parent in edges:
        child, parent = child.strip('"'), parent.strip('"')
        if child in needs and parent in needs and child != parent:
            needs[child].add(parent)
    ordered: list[str] = []
    placed: set[str] = set()
    while len(ordered) < len(tables):
        ready = [table for table in tables if table not in placed and needs[table] <= placed]
        if not ready:  # a cycle: the rest in name order
            ready = [table for table in tables if table not in placed]
        for table in sorted(ready):
            ordered.append(table)
            placed.add(table)
    return ordered


def _one(pg: Any, statement: str) -> Any:
    """The one value `statement` answers."""
    return pg.execute(statement).fetchall()[0][0]


def _batches(cursor: Any, size: int) -> Iterator[list[tuple[Any, ...]]]:
    while batch := cursor.fetchmany(size):
        yield batch


def copy_to_postgres(
    url: str,
    *,
    force: bool = False,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[int], Callable[[str, int], Any]] | None = None,
    describe: Callable[[str], Any] | None = None,
) -> CopyResult:
    """Copy the configured SQLite database into the PostgreSQL database at `url` (see the module
    docstring). `progress(total_rows)` is called once and returns a callable taking
    (table, rows copied): how the command draws its bar. Raises CopyError."""
    import time

    import psycopg

    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "sqlite":
        raise CopyError("the configured database is not SQLite: unset MEMORYHUB_DATABASE_URL to copy from SQLite")
    say = describe or (lambda text: None)
    pending = pending_migrations()
    if pending:
        raise CopyError(
            f"the SQLite database has {len(pending)} unapplied migrations ({', '.join(pending[:5])}...): "
            "run `manage.py migrate` on it first"
        )
    started = time.monotonic()
    say("Migrating the target...")
    migrate_target(url)
    index_form = postgres_index_form()
    try:
        pg_connection = psycopg.connect(url, autocommit=False)
    except psycopg.Error as error:
        raise CopyError(f"cannot connect to the target: {error}") from error
    with closing(pg_connection) as pg:
        pg.execute("SET TIME ZONE 'UTC'")
        columns = target_columns(pg)
        # One snapshot of the source: a transaction (Django's, so a test's own is joined).
        with transaction.atomic(using=DEFAULT_DB_ALIAS):
            connection.ensure_connection()
            source = connection.connection.cursor()
            tables = source_tables(source)
            missing = [table for table in tables if table not in columns]
            if missing:
                raise CopyError(f"tables the target does not have after migrate: {', '.join(missing)}")
            applied = set(source.execute("SELECT app, name FROM django_migrations").fetchall())
            target_applied = set(pg.execute("SELECT app, name FROM django_migrations").fetchall())
            if applied != target_applied:
                differ = sorted(applied ^ target_applied)[:5]
                raise CopyError(f"the target's migrations differ from the source's after migrate: {differ}")
            everything = sorted(columns)
            holding = [
                table
                for table in everything
                if table not in _seeded_by_migrate() and _one(pg, f"SELECT EXISTS (SELECT 1 FROM {_quote(table)})")
            ]
            if holding and not force:
                raise CopyError(
                    f"the target already holds data (in {', '.join(holding)}); --force empties every table "
                    "of the target first"
                )
            counts = {table: source.execute(f"SELECT count(*) FROM {_quote(table)}").fetchone()[0] for table in tables}
            sequences = dict(source.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
            advance = progress(sum(counts.values())) if progress else None

            pg.execute("SET CONSTRAINTS ALL DEFERRED")
            for table in everything:
                pg.execute(f"ALTER TABLE {_quote(table)} DISABLE TRIGGER USER")
            pg.execute(f"TRUNCATE {', '.join(_quote(table) for table in everything)}")
            for table in referenced_first(pg, tables):
                _copy_table(source, pg, table, columns[table], batch, index_form, advance)
            _reset_sequences(pg, tables, sequences)
            # Every foreign key checked now, with all rows in (and no trigger event pending, which
            # ALTER TABLE would refuse).
            pg.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in everything:
                pg.execute(f"ALTER TABLE {_quote(table)} ENABLE TRIGGER USER")
            result = []
            for table in everything:
                target = _one(pg, f"SELECT count(*) FROM {_quote(table)}")
                result.append(TableCount(table, counts.get(table, 0), target))
            source.close()
        if not all(count.matches for count in result):
            pg.rollback()
            raise CountMismatch(result)
        pg.commit()
        # What autovacuum does a minute after a bulk load, now (the `vacuum` job's VACUUM
        # (ANALYZE)): planner statistics, without which plans are made for empty tables (a hash
        # join over every vector where one index probe would do), and the full-text GIN indexes'
        # pending entries merged, which every search would otherwise read through. Outside a
        # transaction, as VACUUM must be.
        say("Vacuuming and gathering planner statistics (VACUUM (ANALYZE))...")
        pg.autocommit = True
        pg.execute(f"VACUUM (ANALYZE) {', '.join(_quote(table) for table in everything)}")
    return CopyResult(counts=result, seconds=time.monotonic() - started)


class CountMismatch(CopyError):
    def __init__(self, counts: list[TableCount]) -> None:
        self.counts = counts
        wrong = [f"{c.table} ({c.source} in SQLite, {c.target} in PostgreSQL)" for c in counts if not c.matches]
        super().__init__(f"row counts differ, nothing was committed: {', '.join(wrong)}")


def _copy_table(
    source: Any,
    pg: Any,
    table: str,
    target_columns: list[tuple[str, bool]],
    batch: int,
    index_form: Callable[[str], str | None],
    advance: Callable[[str, int], Any] | None,
) -> None:
    source_columns = [row[1] for row in source.execute(f"PRAGMA table_info({_quote(table)})").fetchall()]
    writable = [name for name, generated in target_columns if not generated]
    extra = [name for name in source_columns if name not in writable]
    lacking = [name for name in writable if name not in source_columns]
    if lacking:
        # A column only PostgreSQL has (vectors' change log records the writing transaction)
        # takes its default, as in any insert that leaves it out.
        defaulted = {
            row[0]
            for row in pg.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = %s AND column_default IS NOT NULL",
                [table],
            ).fetchall()
        }
        lacking = [name for name in lacking if name not in defaulted]
    writable = [name for name in writable if name in source_columns]
    if extra or lacking:
        raise CopyError(f"{table}: columns differ (only in SQLite: {extra}, only in PostgreSQL: {lacking})")
    names = ", ".join(_quote(name) for name in source_columns)
    # Each value as SQLite stores it: an expression has no declared type, so none of the
    # converters Django registers on its connection (bool, date, datetime) turns a value into
    # something else, or into None when it does not parse. PostgreSQL reads the stored text.
    stored = ", ".join(f"coalesce({_quote(name)}, NULL)" for name in source_columns)
    rows: Iterable[list[tuple[Any, ...]]] = _batches(source.execute(f"SELECT {stored} FROM {_quote(table)}"), batch)
    search = _search_columns().get(table)
    if search:
        at, text_at = source_columns.index(search[0]), source_columns.index(search[1])
        rows = (_with_index_form(rows_, at, text_at, index_form) for rows_ in rows)
    import psycopg

    try:
        with pg.cursor() as cursor, cursor.copy(f"COPY {_quote(table)} ({names}) FROM STDIN") as copy:
            for rows_ in rows:
                for row in rows_:
                    copy.write_row(row)
                if advance:
                    advance(table, len(rows_))
    except psycopg.Error as error:
        # E.g. a text with a NUL character, which PostgreSQL does not store.
        raise CopyError(f"PostgreSQL refused a row of {table}, nothing was committed: {error}") from error


def _with_index_form(
    rows: list[tuple[Any, ...]], at: int, text_at: int, index_form: Callable[[str], str | None]
) -> list[tuple[Any, ...]]:
    out = []
    for row in rows:
        if row[at] is None and row[text_at] is not None:
            row = (*row[:at], index_form(row[text_at]), *row[at + 1 :])
        out.append(row)
    return out


def _reset_sequences(pg: Any, tables: list[str], sqlite_sequence: dict[str, int]) -> None:
    """Each column's sequence past the highest id in its table, and past the highest SQLite ever
    gave (AUTOINCREMENT never reuses the id of a deleted row; neither must PostgreSQL)."""
    rows = pg.execute(SERIAL_COLUMNS).fetchall()
    for table, column, sequence in rows:
        highest = _one(pg, f"SELECT max({_quote(column)}) FROM {_quote(table)}")
        candidates = [value for value in (highest, sqlite_sequence.get(table) if table in tables else None) if value]
        if candidates:
            pg.execute("SELECT setval(%s, %s, true)", (sequence, max(candidates)))
        else:
            pg.execute("SELECT setval(%s, 1, false)", (sequence,))
