"""The server as `make run` starts it: daphne, a real socket, a real SQLite file (on PostgreSQL,
a database of its own: tests/postgres/databases.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from tests.postgres import databases

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_reports_the_database_and_its_mode(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["durability"] in {"sync", "async"}
    if connection.vendor == "postgresql":
        assert body["database"]["engine"] == "postgresql"
        assert body["database"]["synchronous_commit"] in {"on", "off"}
    else:
        assert body["database"]["engine"] == "sqlite"
        assert body["database"]["journal_mode"] == "WAL"
    assert client.post("/healthz").status_code == 405


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.sqlite_only(reason="a fresh SQLite file in MEMORYHUB_DB_PATH; PostgreSQL: tests/kernel/test_postgres.py")
@pytest.mark.parametrize(("durability", "synchronous"), [("sync", "FULL"), ("async", "NORMAL")])
def test_daphne_serves_healthz_on_a_fresh_database(tmp_path, durability, synchronous):
    env = {
        **os.environ,
        "MEMORYHUB_DATA_DIR": str(tmp_path),
        "MEMORYHUB_DB_PATH": str(tmp_path / "db" / "hub.sqlite3"),
        "MEMORYHUB_DURABILITY": durability,
    }
    if databases.BASE_URL:
        # A fresh database of its own, as the file is on SQLite.
        name = databases.new_name("fresh")
        env["MEMORYHUB_DATABASE_URL"] = databases.create(name)
        env.pop("MEMORYHUB_TEST_DB_NAME", None)
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    if not databases.BASE_URL:
        assert (tmp_path / "db" / "hub.sqlite3").is_file()
    port = _free_port()
    server = subprocess.Popen(
        [python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "memoryhub.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    body = json.load(response)
                    break
            except OSError:
                time.sleep(0.2)
        assert body is not None, "daphne did not answer within 30 s"
        assert body["status"] == "ok"
        if not databases.BASE_URL:
            assert body["database"]["journal_mode"] == "WAL"
            assert body["database"]["synchronous"] == synchronous
        assert body["database"]["durability"] == durability
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=10)
        if databases.BASE_URL:
            databases.drop(name)
    if databases.BASE_URL:
        assert "MemoryHub database: " in output
    else:
        assert f"MemoryHub database: {tmp_path / 'db' / 'hub.sqlite3'}" in output
    # daphne's own access log is kept (kernel/twisted_http.py drops only Twisted's duplicate).
    assert '"GET /healthz" 200' in output
