"""A database made by an older MemoryHub opens with today's code: `manage.py migrate` on a copy of
tests/fixtures/memoryhub-2026-12.sqlite3 (built through the real services by
tests/fixtures/make_old_database.py, described by the .json manifest next to it) keeps every
table, row, vector, key and ledger entry, and the real server then serves them: the old keys
authenticate (the revoked one does not), MCP search_nodes / open_nodes find the old entities, a
semantic search finds an old memory by a paraphrase, the wallet and ledger add up.

The fixture is never regenerated to make this test pass: a new generation gets a new file name.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from tests.mcp_endpoint.conftest import ROOT, McpServer, free_port, server_env

pytestmark = pytest.mark.sqlite_only(
    reason="the fixture is a SQLite file an older MemoryHub made; PostgreSQL has no older generation yet"
)

FIXTURE = ROOT / "tests" / "fixtures" / "memoryhub-2026-12.sqlite3"
MANIFEST: dict[str, Any] = json.loads(FIXTURE.with_suffix(".json").read_text())
SAMPLES: dict[str, Any] = MANIFEST["samples"]

# Django's and SQLite's own bookkeeping: a migration may add rows (new migrations, content types,
# permissions; statistics), so these must hold at least the old rows.
BOOKKEEPING = {"django_migrations", "django_content_type", "auth_permission", "sqlite_sequence", "sqlite_stat1"}
FTS_SHADOW = re.compile(r"_(data|idx|docsize|config|content)$")


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def fts_tables(conn: sqlite3.Connection) -> tuple[set[str], set[str]]:
    """(fts5 tables, tables derived from them: their shadow tables and fts5vocab tables)."""
    virtual = dict(
        conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%'")
    )
    fts = {name for name, sql in virtual.items() if re.search(r"USING\s+fts5\s*\(", sql, re.IGNORECASE)}
    derived = {name for name, sql in virtual.items() if re.search(r"USING\s+fts5vocab", sql, re.IGNORECASE)}
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    derived |= {name for name in tables for table in fts if name.startswith(f"{table}_") and FTS_SHADOW.search(name)}
    return fts, derived


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]


def rows(conn: sqlite3.Connection, table: str, names: list[str], *, rowid: bool = False) -> list[tuple[Any, ...]]:
    selected = ", ".join(["rowid", *(f'"{name}"' for name in names)] if rowid else [f'"{name}"' for name in names])
    return sorted(conn.execute(f'SELECT {selected} FROM "{table}"').fetchall(), key=repr)


def problems_after_migration(original: Path, migrated: Path) -> list[str]:
    """What the migrated copy lost of the original (empty: nothing). Every table of the manifest
    must still exist with its row count; data tables must hold every old row unchanged in their
    old columns; Django's bookkeeping tables at least their old number of rows; FTS shadow and
    vocabulary tables must not have become empty (FTS itself is compared row by row)."""
    found: list[str] = []
    with closing(connect(original)) as old, closing(connect(migrated)) as new:
        old_fts, old_derived = fts_tables(old)
        present = {row[0] for row in new.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, count in MANIFEST["tables"].items():
            if table not in present:
                found.append(f"table {table} ({count} rows) is gone")
                continue
            now = new.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            if table in BOOKKEEPING:
                if now < count:
                    found.append(f"{table}: {now} rows, had {count}")
            elif table in old_derived:
                if count and not now:
                    found.append(f"{table}: empty, had {count} rows")
            else:
                if now != count:
                    found.append(f"{table}: {now} rows, had {count}")
                names = columns(old, table)
                missing_columns = set(names) - set(columns(new, table))
                if missing_columns:
                    found.append(f"{table}: columns {sorted(missing_columns)} are gone")
                    continue
                before = rows(old, table, names, rowid=table in old_fts)
                after = set(rows(new, table, names, rowid=table in old_fts))
                lost = [row for row in before if row not in after]
                if lost:
                    found.append(f"{table}: {len(lost)} old rows lost or changed, e.g. {lost[0]!r}"[:300])
        for kind in ("trigger", "view"):
            have = {row[0] for row in new.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,))}
            found += [f"{kind} {name} is gone" for name in MANIFEST[f"{kind}s"] if name not in have]
    return found


def integrity(path: Path) -> list[str]:
    """PRAGMA integrity_check and FTS5's own integrity-check (against its content) of each FTS table."""
    with closing(connect(path)) as conn:
        result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        fts, _ = fts_tables(conn)
        for table in sorted(fts):
            try:
                conn.execute(f'INSERT INTO "{table}"("{table}", rank) VALUES (\'integrity-check\', 1)')
            except sqlite3.DatabaseError as error:
                result.append(f"{table}: {error}")
    return [] if result == ["ok"] else result


@dataclass
class Migrated:
    data_dir: Path
    db: Path
    env: dict[str, str]


def migrate_copy(data_dir: Path) -> Migrated:
    db = data_dir / "hub.sqlite3"
    shutil.copyfile(FIXTURE, db)
    env = server_env(data_dir, MEMORYHUB_MAINTENANCE="false")
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return Migrated(data_dir=data_dir, db=db, env=env)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Migrated:
    return migrate_copy(tmp_path_factory.mktemp("old-database"))


@contextmanager
def daphne(migrated: Migrated) -> Iterator[McpServer]:
    """The real server on the migrated copy (as tests/mcp_endpoint/conftest.py starts it, without
    adding its personas: only the fixture's own keys are used)."""
    port = free_port()
    server = McpServer(base_url=f"http://127.0.0.1:{port}", data_dir=migrated.data_dir, env=migrated.env)
    server.keys = {name: key["secret"] for name, key in SAMPLES["keys"].items()}
    log = migrated.data_dir / "daphne.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "memoryhub.asgi:application"],
            cwd=ROOT,
            env=migrated.env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{server.base_url}/healthz", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"daphne did not start: {log.read_text()[-3000:]}") from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_fixture_is_small_and_complete() -> None:
    assert FIXTURE.stat().st_size < 2_000_000
    tables = MANIFEST["tables"]
    for table in (
        "access_apikey",
        "access_namespacegrant",
        "access_namespaceallowance",
        "access_auditevent",
        "auth_user",
        "graph_namespace",
        "graph_entity",
        "graph_observation",
        "graph_relation",
        "name_fts",
        "obs_fts",
        "vectors_embedding",
        "vectors_change",
        "vectors_indexbaseline",
        "vectors_changelogmark",
        "agents_agent",
        "agents_wallet",
        "agents_tokenbalance",
        "agents_ledgerentry",
        "mcp_endpoint_mcpsession",
        "memoryhub_maintenancejob",
        "django_session",
    ):
        assert tables[table] > 0, f"the fixture has no {table} rows"
    with closing(connect(FIXTURE)) as conn:
        assert sorted(MANIFEST["tables"]) == sorted(
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        )


def test_migrate_keeps_every_table_and_row(migrated: Migrated) -> None:
    assert problems_after_migration(FIXTURE, migrated.db) == []
    with closing(connect(migrated.db)) as conn:
        applied = {f"{app}.{name}" for app, name in conn.execute("SELECT app, name FROM django_migrations")}
        entity = SAMPLES["entity"]
        observations = [
            body
            for (body,) in conn.execute(
                "SELECT o.body FROM graph_observation o JOIN graph_entity e ON e.id = o.entity_id "
                "JOIN graph_namespace n ON n.id = e.namespace_id WHERE n.name = ? AND e.name = ? ORDER BY o.id",
                (SAMPLES["namespace"], entity["name"]),
            )
        ]
        memory = SAMPLES["memory"]
        stored = conn.execute(
            "SELECT body, actor_id, tags FROM graph_observation WHERE id = ? AND entity_id IS NULL",
            (int(memory["id"].removeprefix("mem_")),),
        ).fetchone()
        keys = dict(conn.execute("SELECT prefix, revoked_at IS NOT NULL FROM access_apikey"))
        vectors = dict(conn.execute("SELECT owner_kind, count(*) FROM vectors_embedding GROUP BY owner_kind"))
        ledger = [
            {"user_id": user, "kind": kind, "entries": entries, "credits": credits, "tokens": tokens}
            for user, kind, entries, credits, tokens in conn.execute(
                "SELECT user_id, kind, count(*), CAST(sum(credits) AS TEXT), sum(tokens) "
                "FROM agents_ledgerentry GROUP BY user_id, kind ORDER BY user_id, kind"
            )
        ]
    # Migrations are only ever added: the old database's history is a prefix of today's.
    assert set(MANIFEST["migrations"]) <= applied
    assert observations == entity["observations"]
    assert stored is not None
    assert (stored[0], stored[1], json.loads(stored[2])) == (memory["text"], memory["actorId"], memory["tags"])
    assert keys == {key["prefix"]: not key["valid"] for key in SAMPLES["keys"].values()}
    assert vectors["entity"] >= 1
    assert vectors["observation"] >= 1
    assert ledger == MANIFEST["ledger_totals"]


def test_the_server_serves_the_old_data(migrated: Migrated) -> None:
    keys = SAMPLES["keys"]
    namespace = SAMPLES["namespace"]
    memory = SAMPLES["memory"]
    entity = SAMPLES["entity"]
    relation = SAMPLES["relation"]
    with daphne(migrated) as server, httpx2.Client(base_url=server.base_url, timeout=30) as http:
        search = {"query": memory["paraphrase"], "namespace": namespace, "topK": 3}
        for name, key in keys.items():
            answer = http.post("/v1/memory/search", json=search, headers={"X-API-Key": key["secret"]})
            if key["valid"]:
                assert answer.status_code == 200, (name, answer.text)
            else:
                assert answer.status_code == 401, (name, answer.text)
        # Semantic search: the paraphrase shares no word with the memory but "the", and finds it first.
        found = http.post("/v1/memory/search", json=search, headers={"X-API-Key": keys["reader"]["secret"]}).json()
        best = found["results"][0]
        assert (best["id"], best["text"], best["actorId"]) == (memory["id"], memory["text"], memory["actorId"])
        assert sorted(best["tags"]) == sorted(memory["tags"])

        async def over_mcp() -> tuple[Any, Any, list[Any]]:
            async with server.client("expiring", namespace=namespace) as client:
                searched = await client.call_tool("search_nodes", {"query": "Lovelace"})
                opened = await client.call_tool("open_nodes", {"names": [entity["name"], relation["to"]]})
                tools = []
                cursor = None
                while True:
                    page = await client.list_tools(cursor=cursor)
                    tools += page.tools
                    cursor = page.next_cursor
                    if cursor is None:
                        return searched.structured_content, opened.structured_content, tools

        searched, opened, tools = anyio.run(over_mcp)
        assert [node["name"] for node in searched["entities"]] == [entity["name"]]
        node = next(node for node in opened["entities"] if node["name"] == entity["name"])
        assert (node["entityType"], node["observations"]) == (entity["entityType"], entity["observations"])
        assert {"from": relation["from"], "to": relation["to"], "relationType": relation["relationType"]} in [
            {name: r[name] for name in ("from", "to", "relationType")} for r in opened["relations"]
        ]
        # The agent the user holds tokens of is listed as a tool, with the old balance.
        wallet = SAMPLES["wallet"]
        (agent_tool,) = [tool for tool in tools if tool.name == f"agent_{SAMPLES['agent']['id']}"]
        assert f"balance: {wallet['tokens'][str(SAMPLES['agent']['id'])]} tokens" in agent_tool.description

    # The books, read by the marketplace's own selectors in a fresh process.
    script = (
        "import json; from django.contrib.auth import get_user_model; from agents import selectors; "
        f"user = get_user_model().objects.get(username={wallet['user']!r}); "
        "summary = selectors.wallet_summary(user_id=user.pk); "
        "print(json.dumps({'credits': str(summary.credits), "
        "'tokens': {str(b.agent_id): b.tokens for b in summary.balances}, "
        "'entries': selectors.ledger(user_id=user.pk).count(), 'audit': selectors.audit()}))"
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=migrated.env,
        text=True,
        capture_output=True,
        check=True,
    )
    books = json.loads(done.stdout.strip().splitlines()[-1])
    user_entries = sum(row["entries"] for row in MANIFEST["ledger_totals"] if row["user_id"] == wallet["user_id"])
    assert books == {"credits": wallet["credits"], "tokens": wallet["tokens"], "entries": user_entries, "audit": []}
    assert integrity(migrated.db) == []


def test_the_check_notices_lost_rows_and_renamed_tables(tmp_path: Path) -> None:
    """The guard itself: a copy missing one observation, with a ledger table under a new name
    and a dropped trigger, is reported (and the untouched copy is not)."""
    copy = tmp_path / "copy.sqlite3"
    shutil.copyfile(FIXTURE, copy)
    assert problems_after_migration(FIXTURE, copy) == []
    with closing(connect(copy)) as conn:
        conn.execute("DELETE FROM graph_observation WHERE id = (SELECT max(id) FROM graph_observation)")
        conn.execute("DROP TRIGGER agents_ledger_no_update")
        conn.execute("ALTER TABLE agents_ledgerentry RENAME TO agents_ledger")
    found = "\n".join(problems_after_migration(FIXTURE, copy))
    observations, entries = MANIFEST["tables"]["graph_observation"], MANIFEST["tables"]["agents_ledgerentry"]
    assert f"graph_observation: {observations - 1} rows, had {observations}" in found
    assert "graph_observation: 1 old rows lost or changed" in found
    assert f"table agents_ledgerentry ({entries} rows) is gone" in found
    assert "trigger agents_ledger_no_update is gone" in found
