"""`manage.py copy_to_postgres`: a SQLite database built through the real services (graph, history,
free memories, vectors, keys and grants, OAuth, a ledger, sessions) is copied into a PostgreSQL
database of its own, and every row of every table is found there as it was (BLOBs byte for byte),
the sequences continue past the copied ids, full text finds the copied rows, and a key made on
SQLite authenticates against PostgreSQL.

The target databases: tests/postgres/conftest.py.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application

from access.models import OAuthConsent
from agents import services as agents
from agents.models import Agent
from graph import services as graph
from graph.fts import INDEXED_COLUMNS as SEARCH_COLUMNS
from memory import services as memory
from memoryhub.postgres_copy import SERIAL_COLUMNS, postgres_index_form, source_tables
from tests.postgres import databases
from vectors import services as vectors

pytestmark = pytest.mark.sqlite_only(
    reason="the copy's source is the SQLite database the suite runs on (its target a PostgreSQL database of its own)"
)

ROOT = databases.__file__.rsplit("/tests/", 1)[0]


def build(alice_key: Any) -> dict[str, Any]:
    """A database with a row in nearly every table, written through the services."""
    ns = alice_key.namespace
    graph.create_entities(
        namespace=ns,
        entities=[
            {"name": "Ada Lovelace", "entityType": "person", "observations": ["wrote the first program", "née Byron"]},
            {"name": "Analytical Engine", "entityType": "machine", "observations": ["designed by Babbage"]},
            {"name": "東京タワー", "entityType": "place", "observations": ["東京の電波塔"]},
        ],
    )
    graph.create_relations(
        namespace=ns, relations=[{"from": "Ada Lovelace", "to": "Analytical Engine", "relationType": "programmed"}]
    )
    graph.add_observations(namespace=ns, observations=[{"entityName": "Ada Lovelace", "contents": ["a mathematician"]}])
    # History: a superseded fact, a renamed entity, a deleted one.
    graph.supersede_observation(namespace=ns, entity_name="Ada Lovelace", old="née Byron", new="born Augusta Byron")
    graph.rename_entity(namespace=ns, name="Analytical Engine", new_name="The Analytical Engine")
    graph.create_entities(namespace=ns, entities=[{"name": "Scratch", "entityType": "note", "observations": []}])
    graph.delete_entities(namespace=ns, entity_names=["Scratch"])
    written = memory.write_memories(
        namespace=ns,
        memories=[
            memory.NewMemory(text="the deploy runs on Fridays", tags=["ops"]),
            memory.NewMemory(text="lunch is at noon", ttl_ms=3_600_000),
        ],
    )
    vectors.upsert_embedding(namespace=ns, entity_name="Ada Lovelace", text="the first programmer")
    vectors.upsert_embedding(namespace=ns, entity_name="The Analytical Engine", text="a mechanical computer")
    # Money: credits granted, tokens bought (the append-only ledger).
    agent = Agent.objects.create(
        name="Translator", description="Translates", published=True, price_per_1k=Decimal("1.5")
    )
    agents.grant_credits(user_id=alice_key.user.pk, credits="100", note="welcome", actor="command")
    agents.buy_tokens(user_id=alice_key.user.pk, actor="test", agent_id=agent.pk, token_amount=10_000)
    # OAuth: a client, a consent with grants, an access token.
    application = Application.objects.create(
        name="Claude",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://claude.ai/api/mcp/auth_callback",
        client_secret="",
        hash_client_secret=False,
        user=alice_key.user,
    )
    OAuthConsent.objects.create(user=alice_key.user, application=application, grants=[["org:alice:*", "write"]])
    AccessToken.objects.create(
        user=alice_key.user,
        application=application,
        token=secrets.token_urlsafe(30),
        expires=timezone.now() + timedelta(hours=1),
        scope="mcp",
    )
    session = SessionStore()
    session["member"] = "alice"
    session.create()
    return {"memories": written}


def copy(url: str, *args: str) -> str:
    out = StringIO()
    call_command("copy_to_postgres", "--to", url, "--no-progress", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def pg_rows(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return conn.execute(statement, params).fetchall()


def _same(sqlite_value: Any, pg_value: Any, pg_type: str) -> bool:
    """Whether SQLite's value (through Django's connection: its converters) is PostgreSQL's."""
    if sqlite_value is None or pg_value is None:
        return sqlite_value is None and pg_value is None
    if pg_type == "bytea":
        return isinstance(sqlite_value, bytes) and bytes(pg_value) == sqlite_value
    if pg_type == "jsonb" or pg_type == "json":
        return (json.loads(sqlite_value) if isinstance(sqlite_value, str) else sqlite_value) == pg_value
    if pg_type.startswith("timestamp"):
        value = sqlite_value if isinstance(sqlite_value, datetime) else datetime.fromisoformat(str(sqlite_value))
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value == pg_value
    if pg_type == "numeric":
        return Decimal(str(sqlite_value)) == pg_value
    if pg_type == "boolean":
        return bool(sqlite_value) == pg_value
    return type(sqlite_value) is type(pg_value) and sqlite_value == pg_value


def compare_every_table(url: str) -> dict[str, int]:
    """Every row of every SQLite table against the target's, column by column: table → rows."""
    index_form = postgres_index_form()
    types = {
        (table, column): data_type
        for table, column, data_type in pg_rows(
            url,
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND is_generated = 'NEVER'",
        )
    }
    keys: dict[str, list[str]] = {}
    for table, column in pg_rows(
        url,
        "SELECT c.relname, a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) WHERE i.indisprimary "
        "AND c.relnamespace = current_schema()::regnamespace ORDER BY a.attnum",
    ):
        keys.setdefault(table, []).append(column)
    cursor = connection.connection.cursor()
    counted = {}
    for table in source_tables(cursor):
        columns = [row[1] for row in cursor.execute(f'PRAGMA table_info("{table}")').fetchall()]
        names = ", ".join(f'"{name}"' for name in columns)
        key = [columns.index(name) for name in keys.get(table, columns)]
        source = {tuple(row[i] for i in key): row for row in cursor.execute(f'SELECT {names} FROM "{table}"')}
        copied = {tuple(row[i] for i in key): row for row in pg_rows(url, f'SELECT {names} FROM "{table}"')}
        assert source.keys() == copied.keys(), table
        search = SEARCH_COLUMNS.get(table)
        for row_key, row in source.items():
            for at, (name, value) in enumerate(zip(columns, row, strict=True)):
                if search and name == search[0] and value is None:
                    value = index_form(row[columns.index(search[1])])
                assert _same(value, copied[row_key][at], types[(table, name)]), (table, row_key, name, value)
        counted[table] = len(source)
    return counted


def test_every_row_of_every_table_is_copied(alice_key, root_key, fresh_target) -> None:
    """Into a database with no tables yet: the copy migrates it first."""
    target = fresh_target
    build(alice_key)
    out = copy(target)
    assert "every count matches" in out
    counted = compare_every_table(target)
    # The build reached the tables it meant to (not a comparison of empty tables).
    for table in (
        "graph_entity",
        "graph_observation",
        "graph_relation",
        "graph_version",
        "vectors_embedding",
        "vectors_change",
        "access_apikey",
        "access_namespacegrant",
        "agents_ledgerentry",
        "agents_wallet",
        "oauth2_provider_accesstoken",
        "access_oauthconsent",
        "django_session",
        "auth_user",
    ):
        assert counted[table] > 0, table
    # The printed table: one line per table, SQLite's count and PostgreSQL's.
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:-1]}
    assert lines["graph_entity"] == [str(counted["graph_entity"])] * 2
    # Byte for byte: the vectors.
    (vector,) = pg_rows(target, "SELECT vector FROM vectors_embedding ORDER BY id LIMIT 1")[0:1]
    (expected,) = connection.connection.execute("SELECT vector FROM vectors_embedding ORDER BY id LIMIT 1").fetchone()
    assert bytes(vector[0]) == expected
    # Planner statistics were gathered: the first queries are not planned for empty tables.
    analyzed = dict(pg_rows(target, "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables"))
    assert analyzed["graph_observation"] is True
    assert analyzed["vectors_embedding"] is True


def test_sequences_continue_past_the_copied_ids(alice_key, target) -> None:
    build(alice_key)
    copy(target)
    serial = pg_rows(target, SERIAL_COLUMNS)
    assert {("graph_entity", "id"), ("vectors_change", "seq"), ("agents_ledgerentry", "id")} <= {
        (table, column) for table, column, _ in serial
    }
    for table, column, sequence in serial:
        ((highest,),) = pg_rows(target, f'SELECT max("{column}") FROM "{table}"')
        ((following,),) = pg_rows(target, "SELECT nextval(%s)", (sequence,))
        assert following > (highest or 0), table
    # AUTOINCREMENT never reused the deleted entity's id on SQLite; PostgreSQL goes past it too.
    ((sqlite_next,),) = connection.connection.execute(
        "SELECT seq FROM sqlite_sequence WHERE name = 'graph_entity'"
    ).fetchall()
    ((pg_next,),) = pg_rows(target, "SELECT nextval(pg_get_serial_sequence('graph_entity', 'id'))")
    assert pg_next > sqlite_next


def test_the_copy_is_usable_on_postgresql(alice_key, target) -> None:
    """Full text finds copied rows (the index form written where SQLite left it NULL), the
    ledger is still append-only, and alice's key authenticates against PostgreSQL."""
    build(alice_key)
    copy(target)
    found = pg_rows(target, "SELECT name FROM graph_entity WHERE search_vector @@ to_tsquery('simple', 'lovelace')")
    assert found == [("Ada Lovelace",)]
    bigram = pg_rows(target, "SELECT name FROM graph_entity WHERE search_vector @@ to_tsquery('simple', '東京')")
    assert bigram == [("東京タワー",)]
    import psycopg

    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        pg_rows(target, "DELETE FROM agents_ledgerentry")
    # The counters' triggers are back: a new observation counts.
    ((before,),) = pg_rows(target, "SELECT obs_count FROM graph_entity WHERE name = 'Ada Lovelace'")
    with psycopg.connect(target) as conn:
        conn.execute(
            "INSERT INTO graph_observation(namespace_id, entity_id, body, search_text, actor_id, tags, created_at, "
            "valid_from, dedupe_key) SELECT namespace_id, id, 'one more', 'one more', '', '[]', now(), now(), NULL "
            "FROM graph_entity WHERE name = 'Ada Lovelace'"
        )
    ((after,),) = pg_rows(target, "SELECT obs_count FROM graph_entity WHERE name = 'Ada Lovelace'")
    assert after == before + 1
    # The key's prefix, hash and grants as authentication reads them (access/secrets.py), through
    # the ORM: access/authentication.py `_key_rows` still speaks to the sqlite3 connection itself.
    check = (
        "import sys, django; django.setup(); from access import secrets; from access.models import ApiKey; "
        "key = ApiKey.objects.get(prefix=secrets.prefix_of(sys.argv[1]), revoked_at=None); "
        "assert secrets.verify(sys.argv[1], key.secret_hash); "
        "print(key.pk, sorted((g.pattern, g.permission) for g in key.grants.all()))"
    )
    env = {**os.environ, "MEMORYHUB_DATABASE_URL": target, "DJANGO_SETTINGS_MODULE": "memoryhub.settings"}
    env.pop("MEMORYHUB_TEST_DB_PATH", None)
    done = subprocess.run(
        [sys.executable, "-c", check, alice_key.secret], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"{alice_key.key.pk} [('org:alice:*', 'write')]"


def test_a_target_with_data_is_refused_unless_forced(alice_key, target) -> None:
    build(alice_key)
    copy(target)
    with pytest.raises(CommandError, match="already holds data"):
        copy(target)
    # --force empties the target first: the same rows again, not twice as many.
    out = copy(target, "--force")
    assert "every count matches" in out
    compare_every_table(target)


def test_a_database_that_is_not_postgresql_is_refused(db) -> None:
    with pytest.raises(CommandError, match="postgres://"):
        call_command("copy_to_postgres", "--to", "mysql://x/y", stdout=StringIO())


def test_a_count_that_differs_fails_and_commits_nothing(alice_key, target, monkeypatch) -> None:
    """Rows lost on the way (here: one table's copy made to skip its rows) are caught by the
    count comparison: the command fails, prints the table with MISMATCH, and the target keeps
    nothing of the copy."""
    from memoryhub import postgres_copy

    build(alice_key)
    real = postgres_copy._copy_table

    def losing_relations(source, pg, table, *args):
        if table != "graph_relation":
            real(source, pg, table, *args)

    monkeypatch.setattr(postgres_copy, "_copy_table", losing_relations)
    out = StringIO()
    with pytest.raises(CommandError, match=r"row counts differ, nothing was committed: graph_relation \(1 in SQLite"):
        call_command("copy_to_postgres", "--to", target, "--no-progress", stdout=out, stderr=StringIO())
    assert [line.split()[-1] for line in out.getvalue().splitlines() if "MISMATCH" in line] == ["MISMATCH"]
    assert pg_rows(target, "SELECT count(*) FROM graph_entity") == [(0,)]


def test_a_table_only_raw_sql_knows_is_copied_too(alice_key, target) -> None:
    """The tables come from SQLite's catalog, not from Django's models: one made by raw SQL on
    both databases (no model, no migration of Django's) moves with the rest."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE raw_notes (id integer PRIMARY KEY AUTOINCREMENT, body text, packed blob)")
        cursor.executemany(
            "INSERT INTO raw_notes (body, packed) VALUES (%s, %s)", [("first", b"\x00\xff"), ("second", None)]
        )
    import psycopg

    with psycopg.connect(target) as conn:
        conn.execute(
            "CREATE TABLE raw_notes (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, body text, packed bytea)"
        )
    out = copy(target)
    assert [line.split() for line in out.splitlines() if line.startswith("raw_notes")] == [["raw_notes", "2", "2"]]
    assert pg_rows(target, "SELECT id, body, packed FROM raw_notes ORDER BY id") == [
        (1, "first", b"\x00\xff"),
        (2, "second", None),
    ]
    assert pg_rows(target, "SELECT nextval(pg_get_serial_sequence('raw_notes', 'id'))") == [(3,)]


def test_a_table_postgresql_lacks_is_refused_by_name(db, target) -> None:
    """A SQLite table the target does not have after migrate (a table some raw SQL made on
    SQLite only) stops the copy before anything is written: its rows would be lost."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE stray_notes (id integer PRIMARY KEY, body text)")
    with pytest.raises(CommandError, match="tables the target does not have after migrate: stray_notes"):
        copy(target)
    assert pg_rows(target, "SELECT count(*) FROM django_migrations") != [(0,)]  # migrated, nothing more
