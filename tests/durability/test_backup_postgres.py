"""`manage.py backup` and `manage.py restore` on PostgreSQL (pg_dump / pg_restore behind the same
commands), run as an operator runs them: as commands, on databases of their own, while another
connection keeps writing. The SQLite form (its backup API and files): test_backup.py."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

from kernel import backups
from tests.mcp_endpoint.conftest import fresh_database_template

pytestmark = pytest.mark.postgres_only(reason="pg_dump and pg_restore; SQLite's backup API: test_backup.py")

ROOT = Path(__file__).resolve().parents[2]
ENTITIES = 30


def server() -> dict[str, str]:
    database = settings.DATABASES["default"]
    return {
        "host": str(database["HOST"] or "127.0.0.1"),
        "port": str(database["PORT"] or 5432),
        "user": str(database["USER"]),
    }


def url(name: str) -> str:
    where = server()
    return f"postgres://{where['user']}@{where['host']}:{where['port']}/{name}"


def connect(name: str) -> psycopg.Connection:
    return psycopg.connect(dbname=name, autocommit=True, **server())


def create_database(name: str, template: str | None = None) -> None:
    with connect("postgres") as admin:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        admin.execute(statement)


def drop_database(name: str) -> None:
    with connect("postgres") as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def env_for(name: str, data_dir: Path) -> dict[str, str]:
    import os

    env = {**os.environ, "MEMORYHUB_DATABASE_URL": url(name), "MEMORYHUB_DATA_DIR": str(data_dir)}
    env.pop("MEMORYHUB_TEST_DB_PATH", None)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, text=True, capture_output=True, check=False
    )


def names(database: str) -> set[str]:
    with connect(database) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM graph_namespace")}


def counts(database: str) -> dict[str, int]:
    with connect(database) as conn:
        return {
            label: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]  # type: ignore[index]
            for label, table in (
                ("entities", "graph_entity"),
                ("observations", "graph_observation"),
                ("relations", "graph_relation"),
                ("keys", "access_apikey"),
            )
        }


POPULATE = f"""
from access.models import Namespace
from graph.models import Entity, Observation, Relation, TypeDict
ns = Namespace.objects.create(name="org:backup:notes")
person = TypeDict.objects.create(namespace=ns, kind="entity", name="person")
knows = TypeDict.objects.create(namespace=ns, kind="relation", name="knows")
people = [Entity.objects.create(namespace=ns, name=f"person {{n}}", type=person) for n in range({ENTITIES})]
for n, entity in enumerate(people):
    Observation.objects.create(namespace=ns, entity=entity, body=f"note {{n}} about backups")
for a, b in zip(people, people[1:]):
    Relation.objects.create(namespace=ns, from_entity=a, to_entity=b, type=knows)
"""


@dataclass
class Writer:
    """Another connection committing a new namespace every few milliseconds."""

    database: str
    committed: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with connect(self.database) as conn:
            n = 0
            while not self.stop.is_set():
                name = f"org:writer:{n}"
                conn.execute("INSERT INTO graph_namespace(name, created_at, dedupe) VALUES (%s, now(), true)", [name])
                self.committed.append((time.monotonic(), name))
                n += 1
                time.sleep(0.005)

    def before(self, moment: float) -> set[str]:
        return {name for at, name in self.committed if at < moment}

    def after(self, moment: float) -> set[str]:
        return {name for at, name in self.committed if at > moment}


@dataclass
class BackedUp:
    source: str
    env: dict[str, str]
    path: Path
    output: str
    before: set[str]  # committed before the backup command started
    after: set[str]  # committed after it had finished


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackedUp]:
    source = f"mh_backup_{uuid.uuid4().hex[:8]}"
    # A migrated database (a copy of the suite's template: `migrate` on PostgreSQL is long).
    create_database(source, template=str(fresh_database_template().database))
    try:
        env = env_for(source, tmp_path_factory.mktemp("source"))
        populated = manage(env, "shell", "-c", POPULATE)
        assert populated.returncode == 0, populated.stderr
        key = manage(env, "create_api_key", "--user", "op", "--grant", "org:*=write")
        assert key.returncode == 0, key.stderr

        writer = Writer(source)
        thread = threading.Thread(target=writer.run)
        thread.start()
        try:
            while len(writer.committed) < 20:
                time.sleep(0.01)
            started = time.monotonic()
            path = tmp_path_factory.mktemp("backups") / "hub.dump"
            done = manage(env, "backup", str(path))
            finished = time.monotonic()
            while not writer.after(finished):
                time.sleep(0.01)
        finally:
            writer.stop.set()
            thread.join()
        assert done.returncode == 0, done.stderr
        yield BackedUp(source, env, path, done.stdout, writer.before(started), writer.after(finished))
    finally:
        drop_database(source)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A database name nobody has created yet, and the environment of a server on it."""
    name = f"mh_restored_{uuid.uuid4().hex[:8]}"
    try:
        yield name, env_for(name, tmp_path)
    finally:
        drop_database(name)


def printed_count(output: str, label: str) -> int:
    contents = next(line for line in output.splitlines() if "contents:" in line)
    return int(next(part.split()[0] for part in contents.split(":", 1)[1].split(",") if part.split()[1] == label))


def test_a_backup_taken_while_another_connection_writes_is_one_snapshot_and_restores_whole(backed_up, fresh):
    assert "integrity: ok" in backed_up.output
    assert "size:" in backed_up.output
    assert "time:" in backed_up.output
    assert "postgresql://" in backed_up.output
    # A custom-format archive: pg_restore lists it.
    listed = subprocess.run(["pg_restore", "--list", str(backed_up.path)], capture_output=True, text=True, check=True)
    assert "TABLE DATA public graph_entity" in listed.stdout

    name, env = fresh
    done = manage(env, "restore", str(backed_up.path))  # the database does not exist: created
    assert done.returncode == 0, done.stderr
    assert "Restored" in done.stdout
    assert "integrity: ok" in done.stdout

    restored = names(name)
    assert backed_up.before <= restored  # every commit acknowledged before the backup started
    assert not backed_up.after & restored  # none made after it finished
    # The counts printed are those of the snapshot that was dumped, though writes went on.
    assert printed_count(backed_up.output, "namespaces") == len(restored) == printed_count(done.stdout, "namespaces")
    assert counts(name) == counts(backed_up.source) | {"entities": ENTITIES}
    assert counts(name)["relations"] == ENTITIES - 1
    # Triggers, functions and generated columns came along: the counters and full text work.
    with connect(name) as conn:
        conn.execute(
            "INSERT INTO graph_observation(namespace_id, entity_id, body, actor_id, tags, created_at, extracted_by) "
            "SELECT namespace_id, id, 'restored zebra', '', '[]', now(), '' FROM graph_entity WHERE name = 'person 0'"
        )
        assert conn.execute("SELECT obs_count FROM graph_entity WHERE name = 'person 0'").fetchone() == (2,)
        found = conn.execute(
            "SELECT count(*) FROM graph_observation WHERE search_vector @@ to_tsquery('simple', 'zebra')"
        ).fetchone()
        assert found == (1,)


def test_backup_refuses_to_overwrite_an_existing_file_unless_forced(backed_up, tmp_path):
    target = tmp_path / "existing.dump"
    target.write_bytes(b"an older backup")

    refused = manage(backed_up.env, "backup", str(target))
    assert refused.returncode != 0
    assert "exists; pass --force" in refused.stderr
    assert target.read_bytes() == b"an older backup"

    forced = manage(backed_up.env, "backup", "--force", str(target))
    assert forced.returncode == 0, forced.stderr
    assert backups.inspect_archive(target) >= {"graph_entity", "django_migrations"}
    assert [p.name for p in tmp_path.iterdir()] == ["existing.dump"]  # no partial file left behind


def test_restore_refuses_anything_but_a_memoryhub_archive_and_leaves_the_database_alone(backed_up, fresh, tmp_path):
    name, env = fresh
    assert manage(env, "restore", str(backed_up.path)).returncode == 0
    original = (names(name), counts(name))

    garbage = tmp_path / "notes.txt"
    garbage.write_text("not an archive, just some text " * 200)
    sqlite_file = tmp_path / "hub.sqlite3"
    import sqlite3

    with sqlite3.connect(sqlite_file) as conn:
        conn.execute("CREATE TABLE things(id INTEGER PRIMARY KEY)")
    conn.close()
    other = f"mh_other_{uuid.uuid4().hex[:8]}"
    create_database(other)
    try:
        with connect(other) as conn:
            conn.execute("CREATE TABLE things(id integer PRIMARY KEY)")
        foreign = tmp_path / "other.dump"
        subprocess.run(["pg_dump", "--format=custom", "--file", str(foreign), url(other)], check=True)
    finally:
        drop_database(other)
    truncated = tmp_path / "truncated.dump"
    truncated.write_bytes(backed_up.path.read_bytes()[: backed_up.path.stat().st_size // 2])

    for path, reason in (
        (garbage, "is not a readable pg_dump archive"),
        (sqlite_file, "is not a readable pg_dump archive"),
        (foreign, "not of a MemoryHub database"),
        (truncated, "is not a readable pg_dump archive"),
        (tmp_path / "missing.dump", "there is no file"),
    ):
        refused = manage(env, "restore", str(path))
        assert refused.returncode != 0, path
        assert reason in refused.stderr, refused.stderr
        assert (names(name), counts(name)) == original


def test_restore_refuses_while_another_session_has_the_database_open_and_force_restores_into_it(backed_up, fresh):
    name, env = fresh
    assert manage(env, "restore", str(backed_up.path)).returncode == 0
    # A session that stays connected, as a server's MCP transport or a worker does.
    with connect(name) as session:
        session.execute("INSERT INTO graph_namespace(name, created_at, dedupe) VALUES ('org:late:1', now(), true)")

        refused = manage(env, "restore", str(backed_up.path))
        assert refused.returncode != 0
        assert "is open in another process" in refused.stderr
        assert "org:late:1" in names(name)

        forced = manage(env, "restore", "--force", str(backed_up.path))
        assert forced.returncode == 0, forced.stderr
        assert "restart every server process" in forced.stdout
        # The open session reads the backup's state: the later write is gone, the rest is there.
        now = {row[0] for row in session.execute("SELECT name FROM graph_namespace")}
        assert "org:late:1" not in now
        assert backed_up.before <= now


def test_tools_older_than_the_server_are_refused_with_what_to_install(monkeypatch):
    monkeypatch.setattr(backups, "_tool_major", lambda path: 14)
    with pytest.raises(backups.BackupError, match="pg_dump is version 14 and the server is PostgreSQL 15"):
        backups._check_tool_version("/usr/bin/pg_dump", 150020)
    backups._check_tool_version("/usr/bin/pg_dump", 140011)  # same major: fine
