"""`manage.py copy_to_postgres` as an operator runs it, on a database of the past: the 2026-12
fixture (tests/fixtures/make_old_database.py) is refused until it is migrated, then copied whole.
Its processes run on a SQLite file of their own whichever backend the suite tests, so it runs once,
in the SQLite half of `make test`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "memoryhub-2026-12.sqlite3"


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.sqlite_only(reason="the same run on either backend (a SQLite file copied into PostgreSQL): once is enough")
def test_an_old_database_is_migrated_then_copied_whole(tmp_path: Path, fresh_target: str) -> None:
    database = tmp_path / "hub.sqlite3"
    shutil.copyfile(FIXTURE, database)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "memoryhub.settings",
        "MEMORYHUB_DATA_DIR": str(tmp_path),
        "MEMORYHUB_DB_PATH": str(database),
        "MEMORYHUB_MAINTENANCE": "false",
    }
    for name in ("MEMORYHUB_TEST_DB_PATH", "MEMORYHUB_DATABASE_URL", "MEMORYHUB_TEST_DB_NAME"):
        env.pop(name, None)

    refused = manage(env, "copy_to_postgres", "--to", fresh_target, "--no-progress")
    assert refused.returncode == 1
    assert "unapplied migrations" in refused.stderr
    with psycopg.connect(fresh_target) as conn:  # nothing was done to the target
        assert conn.execute("SELECT to_regclass('django_migrations')").fetchone() == (None,)

    assert manage(env, "migrate", "--noinput", "-v0").returncode == 0
    copied = manage(env, "copy_to_postgres", "--to", fresh_target)
    assert copied.returncode == 0, copied.stderr[-3000:]
    # The progress bar on stderr, the counts on stdout: every table, both counts the same.
    assert "row/s" in copied.stderr
    lines = copied.stdout.splitlines()
    assert lines[0].split() == ["table", "SQLite", "PostgreSQL"]
    assert "every count matches" in lines[-1]
    counts = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    assert {"graph_entity", "vectors_embedding", "agents_ledgerentry", "vectors_change"} <= counts.keys()
    for table, (source, target) in counts.items():
        assert source == target, table
    assert int(counts["graph_observation"][0]) > 0
    with psycopg.connect(fresh_target) as conn:
        for table, (source, _) in counts.items():
            assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (int(source),), table

    # A second copy into the same target is refused: it holds data now.
    again = manage(env, "copy_to_postgres", "--to", fresh_target, "--no-progress")
    assert again.returncode == 1
    assert "already holds data" in again.stderr
