"""`manage.py backup` and `manage.py restore`, run as an operator runs them: as commands, against
the database of a real daphne process that writer threads keep writing to over HTTP."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench import crash

pytestmark = pytest.mark.sqlite_only(
    reason="SQLite's backup API and files (PRAGMA integrity_check, -wal); PostgreSQL's pg_dump form: "
    "test_backup_postgres.py"
)

NAMESPACE = "crash:backup"


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=crash.ROOT, env=env, text=True, capture_output=True, check=False
    )


def open_read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def stored(conn: sqlite3.Connection, write: crash.Write) -> int:
    """How many times `write` is in the database behind `conn`."""
    if write.kind == "relation":
        sql = (
            "SELECT count(*) FROM graph_relation r JOIN graph_namespace n ON n.id = r.namespace_id "
            "JOIN graph_entity f ON f.id = r.from_id JOIN graph_entity t ON t.id = r.to_id "
            "WHERE n.name = ? AND f.name = ? AND t.name = ?"
        )
        return conn.execute(sql, (write.namespace, write.name, write.target)).fetchone()[0]
    if write.kind == "memory":
        sql = (
            "SELECT count(*) FROM graph_observation o JOIN graph_namespace n ON n.id = o.namespace_id "
            "WHERE n.name = ? AND o.entity_id IS NULL AND o.body = ? AND o.id = ?"
        )
        return conn.execute(sql, (write.namespace, write.text, int(write.memory_id.removeprefix("mem_")))).fetchone()[0]
    sql = (
        "SELECT count(*) FROM graph_observation o JOIN graph_namespace n ON n.id = o.namespace_id "
        "JOIN graph_entity e ON e.id = o.entity_id WHERE n.name = ? AND e.name = ? AND o.body = ?"
    )
    return conn.execute(sql, (write.namespace, write.name, write.text)).fetchone()[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class BackedUp:
    server: crash.Server
    key: str
    path: Path
    output: str
    before: list[crash.Write]  # acknowledged before the backup command started
    after: list[crash.Write]  # acknowledged after it had finished


@pytest.fixture(scope="module")
def backed_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackedUp]:
    server = crash.Server(tmp_path_factory.mktemp("live"), "sync")
    key = server.prepare()
    server.start()
    try:
        writer = crash.Writer(server.base_url, key, NAMESPACE, threads=2, seed=7)
        writer.start()
        try:
            writer.wait_for_acks(40)
            before = writer.acked()
            path = tmp_path_factory.mktemp("backups") / "hub-backup.sqlite3"
            # The writers keep going while the command copies the database.
            done = manage(server.env, "backup", str(path))
            finished = len(writer.acked())
            # The server went on serving writes after the backup, too.
            writer.wait_for_acks(finished + 10)
        finally:
            writer.stop()
        assert done.returncode == 0, done.stderr
        after = writer.acked()[finished:]
        yield BackedUp(server, key, path, done.stdout, before, after)
    finally:
        server.stop()


def test_a_backup_of_a_live_server_is_sound_and_holds_every_acknowledged_write(backed_up):
    assert "integrity: ok" in backed_up.output
    assert "size:" in backed_up.output
    assert "time:" in backed_up.output
    # One self-contained file: no WAL to carry along.
    assert not Path(f"{backed_up.path}-wal").exists()
    conn = open_read_only(backed_up.path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert {w.kind for w in backed_up.before} == set(crash.WEIGHTS)
        assert [w.token for w in backed_up.before if stored(conn, w) != 1] == []
        # The server kept writing after the copy; those writes are not in it.
        assert backed_up.after
        assert [w.token for w in backed_up.after if stored(conn, w)] == []
    finally:
        conn.close()


def test_restore_into_a_fresh_data_dir_serves_the_backed_up_data(backed_up, tmp_path):
    fresh = crash.Server(tmp_path / "fresh", "sync")
    fresh.data_dir.mkdir()
    done = manage(fresh.env, "restore", str(backed_up.path))
    assert done.returncode == 0, done.stderr
    assert "Restored" in done.stdout
    assert "integrity: ok" in done.stdout

    fresh.start()  # no migrate: the restored file is complete, API keys included
    try:
        api = crash.check_through_api(fresh.base_url, backed_up.key, backed_up.before)
        assert (api.unreadable, api.unsearchable) == ([], [])
        verdict = crash.run_verifier(fresh, backed_up.before, [NAMESPACE])
        assert verdict["found"] == [1] * len(backed_up.before)
        assert verdict["integrity"] == ["ok"]
        assert verdict["invariants"] == []
        assert (verdict["torn"], verdict["unembedded"], verdict["memory_ids_wrong"]) == (0, 0, 0)
    finally:
        fresh.stop()


def test_backup_refuses_to_overwrite_an_existing_file_unless_forced(backed_up, tmp_path):
    target = tmp_path / "existing.sqlite3"
    target.write_bytes(b"an older backup")

    refused = manage(backed_up.server.env, "backup", str(target))
    assert refused.returncode != 0
    assert "exists; pass --force" in refused.stderr
    assert target.read_bytes() == b"an older backup"

    forced = manage(backed_up.server.env, "backup", "--force", str(target))
    assert forced.returncode == 0, forced.stderr
    conn = open_read_only(target)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    assert [p.name for p in tmp_path.iterdir()] == ["existing.sqlite3"]  # no partial file left behind


def test_restore_refuses_anything_but_a_memoryhub_database_and_leaves_the_database_alone(backed_up, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = crash.server_env(data_dir, "sync")
    assert manage(env, "restore", str(backed_up.path)).returncode == 0
    target = data_dir / "hub.sqlite3"
    original = sha256(target)

    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a database, just some text " * 200)
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE things(id INTEGER PRIMARY KEY)")
    conn.close()

    for path, reason in (
        (garbage, "is not a readable SQLite database"),
        (other, "not a MemoryHub one"),
        (tmp_path / "missing.sqlite3", "there is no file"),
    ):
        refused = manage(env, "restore", str(path))
        assert refused.returncode != 0
        assert reason in refused.stderr
        assert sha256(target) == original


def test_restore_refuses_while_a_server_has_the_database_open_and_force_restores_into_it(backed_up):
    server, key = backed_up.server, backed_up.key  # still running, since the fixture started it
    try:
        # An MCP session: the MCP transports keep their database connection between requests.
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        request = urllib.request.Request(
            f"{server.base_url}/mcp",
            data=json.dumps(initialize).encode(),
            headers={
                "X-API-Key": key,
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200

        refused = manage(server.env, "restore", str(backed_up.path))
        assert refused.returncode != 0
        assert "is open in another process" in refused.stderr
        assert crash.check_through_api(server.base_url, key, backed_up.after).unreadable == []

        # --force: one SQLite transaction into the open database; the server reads the backup's state.
        forced = manage(server.env, "restore", "--force", str(backed_up.path))
        assert forced.returncode == 0, forced.stderr
        assert "restart every server process" in forced.stdout
        assert crash.check_through_api(server.base_url, key, backed_up.before).unreadable == []
        graph_writes = [w for w in backed_up.after if w.kind in ("entity", "observation", "relation")]
        gone = crash.check_through_api(server.base_url, key, graph_writes).unreadable
        assert sorted(gone) == sorted(w.token for w in graph_writes)
    finally:
        server.stop()
    conn = open_read_only(server.db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
