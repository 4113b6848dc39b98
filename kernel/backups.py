"""Online backup and restore of the database: SQLite through its own backup API (here), PostgreSQL
through pg_dump and pg_restore (the section at the end), behind the same two commands.

Backup (`manage.py backup PATH`) copies the live database while servers keep reading and writing
it. The copy runs inside one read transaction on the source, so it is the database as of one
instant (a consistent snapshot, whatever commits meanwhile) and it never restarts: SQLite's backup
restarts a copy whenever another connection writes between two steps, but not while the copying
connection holds its snapshot open. In WAL mode a reader never blocks writers, so the servers are
not held up at all; the one cost is that the WAL cannot be checkpointed past the snapshot until
the copy ends, so it grows for that long. The copy is written to a temporary file beside PATH,
switched to a plain one-file database (journal_mode=DELETE: no -wal or -shm to carry around),
checked with `PRAGMA integrity_check`, fsynced, and only then renamed to PATH, so PATH is never a
half-written backup.

Restore (`manage.py restore PATH`) checks that PATH is a sound MemoryHub database, then copies it
into the configured database through the backup API, so SQLite itself deals with the target's
-wal and -shm files (a leftover WAL is recovered and checkpointed first, a stale -shm is rebuilt by
the next connection) instead of files being swapped underneath it.

Whether a server is running is judged by asking SQLite to take the target out of WAL mode, which
it refuses while any other connection has the database open (a server in the middle of a request,
an MCP transport, which keeps its connection, a maintenance job, a `sqlite3` shell). The limit: a
server process that is idle between REST requests holds no connection (Django closes it after each
request), so it cannot be seen from the file. The restore therefore also holds SQLite's exclusive
lock for the whole copy: such a server's next request waits (its busy timeout) and then reads
either the old database or the restored one, never a mix. It must still be restarted afterwards,
because its in-memory vector indexes and sessions describe the old database; the command says so.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# What makes a file a MemoryHub database rather than any SQLite file: Django's record of the
# migrations applied, and the tables the apps register at start (`register_tables`: the keys, the
# namespaces, the knowledge graph and its full-text indexes, the vectors), in registration order.
_required: list[str] = ["django_migrations"]
# (label, table) of the counts a summary reports ("3 namespaces, 5 entities, ..."), in order.
_counted: list[tuple[str, str]] = []


def register_tables(*, required: Iterable[str] = (), counted: Mapping[str, str] | None = None) -> None:
    """Called by each app at start (its AppConfig.ready) for the tables it owns: `required`, those
    a database must have to be a MemoryHub one; `counted`, {label: table} of the rows a backup or
    restore reports. The kernel names no app's table itself."""
    for table in [*required, *(counted or {}).values()]:
        if table not in _required:
            _required.append(table)
    for label, table in (counted or {}).items():
        if (label, table) not in _counted:
            _counted.append((label, table))


def required_tables() -> tuple[str, ...]:
    return tuple(_required)


# Pages copied per step of the backup API (4 MB at the default page size). The steps all run in
# one snapshot, so their size only sets how often progress is reported.
STEP_PAGES = 1024

# How long the restore waits for another connection before deciding the database is in use.
IN_USE_TIMEOUT_SECONDS = 0.5


class BackupError(Exception):
    """A backup or restore that was refused or failed; the message says why, for an operator."""


@dataclass(frozen=True)
class Summary:
    """What a database holds, as printed after a backup or restore."""

    bytes: int
    # (label, rows) of each table the apps registered to be counted, in registration order.
    counts: tuple[tuple[str, int], ...]

    def count(self, label: str) -> int:
        return dict(self.counts)[label]

    def describe(self) -> str:
        return ", ".join(f"{rows} {label}" for label, rows in self.counts)


@dataclass(frozen=True)
class BackupResult:
    # A file, or a PostgresTarget (its URL without the password).
    source: Path | PostgresTarget
    target: Path
    seconds: float
    summary: Summary


@dataclass(frozen=True)
class RestoreResult:
    backup: Path
    target: Path | PostgresTarget
    seconds: float
    summary: Summary
    # Set when the target was in use and --force restored into it while open (see restore()).
    live: bool
    # Where an unreadable target database was moved before restoring (with --force), if it was.
    moved_aside: Path | None


Progress = Callable[[int, int], object]  # (pages copied, total pages)


def _connect(path: Path, *, mode: str, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection in autocommit mode; `mode` 'ro' or 'rw' never creates the file, 'rwc' may."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True, isolation_level=None, timeout=timeout)


def _copy(source: sqlite3.Connection, target: sqlite3.Connection, progress: Progress | None) -> None:
    def report(status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress(total - remaining, total)

    source.backup(target, pages=STEP_PAGES, progress=report)


def check_database(connection: sqlite3.Connection, *, path: Path) -> Summary:
    """Raise BackupError unless `connection` is a sound MemoryHub database; else say what it holds."""
    try:
        problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    except sqlite3.DatabaseError as error:
        # "file is not a database", "database disk image is malformed", ...
        raise BackupError(f"{path} is not a readable SQLite database ({error})") from None
    if problems != ["ok"]:
        shown = "; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        raise BackupError(f"{path} fails SQLite's integrity check: {shown}")
    missing = [table for table in _required if table not in tables]
    if missing:
        raise BackupError(f"{path} is a SQLite database but not a MemoryHub one (no {', '.join(missing)} table)")

    def count(table: str) -> int:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    page_count = connection.execute("PRAGMA page_count").fetchone()[0]
    return Summary(
        bytes=int(page_size) * int(page_count), counts=tuple((label, count(table)) for label, table in _counted)
    )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_with_sidecars(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def backup(*, source: Path, target: Path, force: bool = False, progress: Progress | None = None) -> BackupResult:
    """Copy the database at `source` to `target` while it stays in use (see the module docstring).

    Refuses an existing `target` unless `force`; the old file is then replaced only once the new
    copy has passed its check."""
    started = time.monotonic()
    if not source.is_file():
        raise BackupError(f"there is no database at {source}")
    if target.is_dir():
        raise BackupError(f"{target} is a directory; give the backup's file name")
    if not target.parent.is_dir():
        raise BackupError(f"the directory {target.parent} does not exist")
    if target.exists():
        if target.resolve() == source.resolve():
            raise BackupError(f"{target} is the live database itself")
        if not force:
            raise BackupError(f"{target} exists; pass --force to replace it")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    _remove_with_sidecars(partial)
    try:
        # mode=rw: never create a database where there was none. The connection only reads.
        live = _connect(source, mode="rw")
        try:
            live.execute("BEGIN")
            # The snapshot starts with the transaction's first read; every step copies from it.
            live.execute("SELECT count(*) FROM sqlite_schema").fetchone()
            copy = _connect(partial, mode="rwc")
            try:
                _copy(live, copy, progress)
                # The copied header says WAL; a backup is better as one self-contained file.
                copy.execute("PRAGMA journal_mode=DELETE")
                summary = check_database(copy, path=target)
            finally:
                copy.close()
            live.execute("COMMIT")
        finally:
            live.close()
        _fsync(partial)
        os.replace(partial, target)
        _fsync(target.parent)  # the rename itself survives a power cut
    except BaseException:
        _remove_with_sidecars(partial)
        raise
    return BackupResult(source=source, target=target, seconds=time.monotonic() - started, summary=summary)


def inspect(path: Path) -> Summary:
    """Check a backup file (read only) and say what it holds; BackupError if it is not usable."""
    if not path.is_file():
        raise BackupError(f"there is no file at {path}")
    try:
        connection = _connect(path, mode="ro")
    except sqlite3.Error as error:
        raise BackupError(f"{path} cannot be opened ({error})") from None
    try:
        return check_database(connection, path=path)
    finally:
        connection.close()


def _in_use(error: sqlite3.Error) -> bool:
    return getattr(error, "sqlite_errorname", "") in {"SQLITE_BUSY", "SQLITE_LOCKED"} or "locked" in str(error)


def _take_over(target: Path) -> sqlite3.Connection:
    """Open the target so that nothing else can use it until the connection closes.

    Leaving WAL mode is possible only when no other connection has the database open, which is
    the check for a running server; exclusive locking mode then keeps the write lock from the
    first transaction until close, so no server can open the file halfway through the copy."""
    connection = _connect(target, mode="rw", timeout=IN_USE_TIMEOUT_SECONDS)
    try:
        connection.execute("PRAGMA locking_mode=EXCLUSIVE")
        connection.execute("PRAGMA journal_mode=DELETE")
        connection.execute("BEGIN EXCLUSIVE")
        connection.execute("COMMIT")
    except BaseException:
        connection.close()
        raise
    return connection


def restore(*, backup: Path, target: Path, force: bool = False, progress: Progress | None = None) -> RestoreResult:
    """Replace the database at `target` with the backup at `backup`.

    Refused, unless `force`, when the target is open in another process (a running server) or is
    not a readable database. With `force`, a target in use is restored into while open: the copy is
    one SQLite transaction, so its users see the old or the new database, never a mix (they must
    still be restarted); an unreadable target is moved aside to `<target>.broken-<time>` first."""
    started = time.monotonic()
    summary = inspect(backup)
    if target.exists() and target.resolve() == backup.resolve():
        raise BackupError(f"{backup} is the configured database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    live = False
    moved_aside: Path | None = None
    connection: sqlite3.Connection | None = None
    if target.exists():
        try:
            connection = _take_over(target)
        except sqlite3.Error as error:
            if _in_use(error):
                if not force:
                    raise BackupError(
                        f"the database {target} is open in another process (a running server?); stop the "
                        "server first, or pass --force to restore into it while it runs"
                    ) from None
                # Still WAL mode and shared: the copy below is one transaction its users will see.
                connection = _connect(target, mode="rw")
                live = True
            else:
                if not force:
                    raise BackupError(
                        f"the database {target} cannot be opened ({error}); pass --force to move it aside "
                        "and restore into a new file"
                    ) from None
                stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
                moved_aside = target.with_name(f"{target.name}.broken-{stamp}")
                for suffix in ("", "-wal", "-shm", "-journal"):
                    if Path(f"{target}{suffix}").exists():
                        os.replace(f"{target}{suffix}", f"{moved_aside}{suffix}")
    if connection is None:
        connection = _connect(target, mode="rwc")
    try:
        source = _connect(backup, mode="ro")
        try:
            try:
                _copy(source, connection, progress)
            except sqlite3.OperationalError as error:
                if live and "readonly" in str(error).lower():
                    # SQLite cannot change the page size of a database in WAL mode that others use.
                    raise BackupError(
                        f"cannot restore into {target} while it is in use: the backup's page size differs; "
                        "stop the server and run restore again"
                    ) from None
                raise
        finally:
            source.close()
        summary = check_database(connection, path=target)
    finally:
        connection.close()
    _fsync(target)
    return RestoreResult(
        backup=backup,
        target=target,
        seconds=time.monotonic() - started,
        summary=summary,
        live=live,
        moved_aside=moved_aside,
    )


# --- PostgreSQL: pg_dump / pg_restore ---------------------------------------------------------------
#
# The same commands and promises on PostgreSQL, with the server's own tools (the PostgreSQL client,
# pg_dump and pg_restore of the server's major version or newer, on PATH):
#
# - Backup: `pg_dump --format=custom` (compressed; one file; pg_restore can restore any part of it).
#   pg_dump reads one snapshot (a REPEATABLE READ transaction) and takes only ACCESS SHARE locks, so
#   servers go on reading and writing; only a schema change (a migration) waits for it. The snapshot
#   is exported by a transaction of ours first (`pg_export_snapshot`), so the row counts printed are
#   those of the very snapshot that was dumped. The archive is written beside PATH, read back whole
#   (`pg_restore --file=/dev/null`: every block decompressed, the table of contents complete),
#   checked to be a MemoryHub database (its tables), fsynced, and only then renamed to PATH.
# - Restore: the archive is checked the same way first. Then, in one transaction
#   (`pg_restore --single-transaction --clean --if-exists`), every object of the archive is dropped
#   and created again with the backup's rows: the database's users see the old database or the
#   restored one, never a mix, and a failure leaves the old one as it was. The database is created
#   when it does not exist (the role needs CREATEDB). Objects are owned by the restoring role
#   (--no-owner, --no-privileges), as when it ran the migrations.
# - In use: another session connected to the database (pg_stat_activity) is a running server, a
#   worker, a psql shell: refused unless --force, as on SQLite. The same limit: a server idle
#   between REST requests holds no connection, and every server must be restarted after a restore.

# Settings OPTIONS that are psycopg's or Django's, not libpq connection parameters.
_NOT_LIBPQ = {"isolation_level", "server_side_binding", "pool", "assume_role", "prepare_threshold", "cursor_factory"}


@dataclass(frozen=True)
class PostgresTarget:
    """Where a PostgreSQL database is: Django's settings of it, without the password in anything
    printed or passed on a command line (it goes to the tools in PGPASSWORD)."""

    name: str
    host: str
    port: str
    user: str
    password: str
    options: Mapping[str, object]

    @classmethod
    def from_settings(cls, settings_dict: Mapping[str, object]) -> PostgresTarget:
        options = dict(settings_dict.get("OPTIONS") or {})  # type: ignore[call-overload]
        return cls(
            name=str(settings_dict.get("NAME") or ""),
            host=str(settings_dict.get("HOST") or ""),
            port=str(settings_dict.get("PORT") or ""),
            user=str(settings_dict.get("USER") or ""),
            password=str(settings_dict.get("PASSWORD") or ""),
            options={key: value for key, value in options.items() if key not in _NOT_LIBPQ},
        )

    def conninfo(self, dbname: str | None = None) -> str:
        from psycopg.conninfo import make_conninfo

        params: dict[str, object] = {"dbname": dbname or self.name, **self.options}
        for key, value in (("host", self.host), ("port", self.port), ("user", self.user)):
            if value:
                params[key] = value
        return make_conninfo(**params)  # type: ignore[arg-type]

    def connect(self, dbname: str | None = None, **kwargs: object) -> Any:
        import psycopg

        return psycopg.connect(self.conninfo(dbname), password=self.password or None, **kwargs)  # type: ignore[arg-type]

    def tool_env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def __str__(self) -> str:
        where = f"{self.host or 'localhost'}{':' + self.port if self.port else ''}"
        return f"postgresql://{self.user + '@' if self.user else ''}{where}/{self.name}"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (or not on PATH): install the PostgreSQL client tools")
    return path


def _tool_major(path: str) -> int:
    # "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
    output = subprocess.run([path, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"\(PostgreSQL\) (\d+)", output)
    if match is None:
        raise BackupError(f"cannot tell the version of {path} ({output.strip() or 'no output'})")
    return int(match.group(1))


def _check_tool_version(path: str, server_version_num: int) -> None:
    """pg_dump refuses a server of a newer major version, and an older pg_restore cannot read a
    newer pg_dump's archive: say so before starting rather than after."""
    tool, server = _tool_major(path), server_version_num // 10000
    if tool < server:
        raise BackupError(
            f"{Path(path).name} is version {tool} and the server is PostgreSQL {server}: install the "
            f"PostgreSQL {server} client tools (or newer) and put them first on PATH"
        )


def _run(args: list[str], *, env: Mapping[str, str], what: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, env=dict(env), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = " ".join(done.stderr.split())[-800:] or f"exit status {done.returncode}"
        raise BackupError(f"{what} failed: {message}")
    return done


def postgres_required_tables() -> tuple[str, ...]:
    """The tables a PostgreSQL MemoryHub database must have: the registered ones but the FTS5
    tables (SQLite's; PostgreSQL keeps full text in columns of the graph's own tables)."""
    from kernel.db_maintenance import fts_tables

    sqlite_only = set(fts_tables())
    return tuple(table for table in _required if table not in sqlite_only)


_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) ", re.MULTILINE)


def inspect_archive(path: Path) -> set[str]:
    """Check that `path` is a whole pg_dump archive of a MemoryHub database: every block readable
    (restored to nowhere), its tables those a MemoryHub database must have. Returns its tables."""
    if not path.is_file():
        raise BackupError(f"there is no file at {path}")
    restore_tool = _tool("pg_restore")
    env = dict(os.environ)
    listed = subprocess.run([restore_tool, "--list", str(path)], env=env, capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        reason = " ".join(listed.stderr.split()).removeprefix("pg_restore: error: ")[:300]
        raise BackupError(f"{path} is not a readable pg_dump archive ({reason}); make one with `manage.py backup`")
    tables = {name for _schema, name in _TOC_TABLE.findall(listed.stdout)}
    missing = [table for table in postgres_required_tables() if table not in tables]
    if missing:
        raise BackupError(
            f"{path} is a pg_dump archive but not of a MemoryHub database (no {', '.join(missing)} table)"
        )
    _run([restore_tool, "--file", os.devnull, str(path)], env=env, what=f"reading {path} back")
    return tables


def _count_rows(cursor: Any) -> tuple[tuple[str, int], ...]:
    counts = []
    for label, table in _counted:
        cursor.execute(f"SELECT count(*) FROM {table}")
        counts.append((label, int(cursor.fetchone()[0])))
    return tuple(counts)


def backup_postgres(
    *, source: PostgresTarget, target: Path, force: bool = False, progress: Progress | None = None
) -> BackupResult:
    """`manage.py backup PATH` on PostgreSQL (see the section's comment): the same refusals as the
    SQLite backup, the same atomic replacement of PATH."""
    started = time.monotonic()
    if target.is_dir():
        raise BackupError(f"{target} is a directory; give the backup's file name")
    if not target.parent.is_dir():
        raise BackupError(f"the directory {target.parent} does not exist")
    if target.exists() and not force:
        raise BackupError(f"{target} exists; pass --force to replace it")
    dump = _tool("pg_dump")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.unlink(missing_ok=True)
    try:
        import psycopg

        try:
            snapshot_holder = source.connect(autocommit=False)
        except psycopg.Error as error:
            raise BackupError(f"cannot connect to the database {source} ({error})".strip()) from None
        try:
            snapshot_holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with snapshot_holder.cursor() as cursor:
                cursor.execute("SELECT pg_export_snapshot(), current_setting('server_version_num')::int")
                snapshot, server_version = cursor.fetchone()
                _check_tool_version(dump, server_version)
                cursor.execute(
                    "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = %s", [_required[0]]
                )
                if cursor.fetchone() is None:
                    raise BackupError(f"the database {source} has no MemoryHub tables (run `manage.py migrate` first?)")
                counts = _count_rows(cursor)
            _run(
                [
                    dump,
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    "--file",
                    str(partial),
                    "--dbname",
                    source.conninfo(),
                ],
                env=source.tool_env(),
                what="pg_dump",
            )
        finally:
            snapshot_holder.close()
        inspect_archive(partial)
        _fsync(partial)
        os.replace(partial, target)
        _fsync(target.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    summary = Summary(bytes=target.stat().st_size, counts=counts)
    return BackupResult(source=source, target=target, seconds=time.monotonic() - started, summary=summary)


def _other_sessions(cursor: Any) -> int:
    cursor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'"
    )
    return int(cursor.fetchone()[0])


def restore_postgres(
    *, backup: Path, target: PostgresTarget, force: bool = False, progress: Progress | None = None
) -> RestoreResult:
    """`manage.py restore PATH` on PostgreSQL (see the section's comment): refused, unless `force`,
    while another session has the database open; then one transaction replaces its contents."""
    import psycopg
    from psycopg import sql

    started = time.monotonic()
    inspect_archive(backup)
    restore_tool = _tool("pg_restore")
    try:
        connection = target.connect(autocommit=True)
    except psycopg.OperationalError as error:
        if f'database "{target.name}" does not exist' not in str(error):
            raise BackupError(f"cannot connect to the database {target} ({error})".strip()) from None
        try:
            with target.connect("postgres", autocommit=True) as maintenance:
                maintenance.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target.name)))
        except psycopg.Error as create_error:
            raise BackupError(f"the database {target} does not exist and cannot be created ({create_error})") from None
        connection = target.connect(autocommit=True)
    live = False
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version_num')::int")
            _check_tool_version(restore_tool, cursor.fetchone()[0])
            others = _other_sessions(cursor)
            if others:
                if not force:
                    raise BackupError(
                        f"the database {target} is open in another process ({others} other session"
                        f"{'s' if others != 1 else ''}: a running server?); stop the server first, or pass "
                        "--force to restore into it while it runs"
                    )
                live = True
        _run(
            [
                restore_tool,
                "--single-transaction",
                "--exit-on-error",
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--dbname",
                target.conninfo(),
                str(backup),
            ],
            env=target.tool_env(),
            what="pg_restore",
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            size = int(cursor.fetchone()[0])
            counts = _count_rows(cursor)
    finally:
        connection.close()
    return RestoreResult(
        backup=backup,
        target=target,
        seconds=time.monotonic() - started,
        summary=Summary(bytes=size, counts=counts),
        live=live,
        moved_aside=None,
    )
