"""The PostgreSQL backend (kernel/database.py postgres_database) as the settings configure it: the
durability mode as `synchronous_commit` on every connection, what /healthz reports of it, and the
URL checks. The SQLite form of these checks: test_sqlite.py."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction

from access.models import Namespace
from kernel import sql
from kernel.database import describe_database, postgres_database


def connect(config: dict) -> psycopg.Connection:
    """A connection of our own made from the Django settings `config`, as Django would make it."""
    return psycopg.connect(
        host=config["HOST"] or None,
        port=config["PORT"] or None,
        user=config["USER"] or None,
        password=config["PASSWORD"] or None,
        dbname=connection.settings_dict["NAME"],
        # Django takes `pool` for itself (psycopg_pool); the rest are psycopg's.
        **{name: value for name, value in config["OPTIONS"].items() if name != "pool"},
    )


@pytest.mark.postgres_only(reason="synchronous_commit is PostgreSQL's; SQLite's synchronous: test_sqlite.py")
def test_connections_commit_as_the_durability_mode_asks(db, settings):
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == {"sync": "on", "async": "off"}[settings.DURABILITY]
        cursor.execute("SHOW TimeZone")
        assert cursor.fetchone()[0] == "UTC"
    assert describe_database()["synchronous_commit"] == {"sync": "on", "async": "off"}[settings.DURABILITY]
    url = (
        f"postgres://{connection.settings_dict['USER']}@{connection.settings_dict['HOST']}:"
        f"{connection.settings_dict['PORT']}/{connection.settings_dict['NAME']}"
    )
    for durability, expected in (("sync", "on"), ("async", "off")):
        with connect(postgres_database(url, durability=durability, test_name=None)) as other:
            assert other.execute("SHOW synchronous_commit").fetchone() == (expected,)


@pytest.mark.postgres_only(reason="parallel query is PostgreSQL's")
def test_statements_run_without_parallel_workers_unless_asked(db):
    """MEMORYHUB_PG_PARALLEL_WORKERS (0 by default) is each connection's
    max_parallel_workers_per_gather: a search planned parallel ran twice as long on this machine."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_parallel_workers_per_gather")
        assert cursor.fetchone()[0] == "0"
    url = (
        f"postgres://{connection.settings_dict['USER']}@{connection.settings_dict['HOST']}:"
        f"{connection.settings_dict['PORT']}/{connection.settings_dict['NAME']}"
    )
    with connect(postgres_database(url, durability="sync", test_name=None, parallel_workers=3)) as other:
        assert other.execute("SHOW max_parallel_workers_per_gather").fetchone() == ("3",)


@pytest.mark.postgres_only(reason="what /healthz reports of a PostgreSQL server")
def test_the_description_names_the_server_and_its_commit_mode(db, settings):
    described = describe_database()
    assert set(described) == {"engine", "server_version", "synchronous_commit", "durability"}
    assert described["engine"] == "postgresql"
    assert int(described["server_version"].split(".")[0]) >= 15
    assert described["durability"] == settings.DURABILITY


def test_the_url_options_keep_their_own_and_only_postgres_urls_are_taken():
    config = postgres_database(
        "postgres://u:p@db.example:6543/hub?options=-c%20statement_timeout%3D5000", durability="sync", test_name="t"
    )
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"], config["TEST"]) == (
        "db.example",
        6543,
        "hub",
        {"NAME": "t"},
    )
    assert config["OPTIONS"]["options"].split() == [
        "-c",
        "synchronous_commit=on",
        "-c",
        "max_parallel_workers_per_gather=0",
        "-c",
        "statement_timeout=5000",
    ]
    with pytest.raises(ImproperlyConfigured, match="must be a postgres:// URL"):
        postgres_database("mysql://u@h/db", durability="sync", test_name=None)


@pytest.mark.postgres_only(reason="daphne on a PostgreSQL database; the SQLite form: tests/memoryhub/test_server.py")
def test_daphne_reports_each_durability_mode_as_the_servers_synchronous_commit(tmp_path):
    """The whole chain: MEMORYHUB_DURABILITY in a real server's environment, the connection it
    opens, and what its /healthz says, on a database of its own."""
    import json
    import os
    import subprocess
    import sys
    import time
    import urllib.request
    import uuid
    from pathlib import Path

    from psycopg import sql

    from bench.setup import free_port

    root = Path(__file__).resolve().parents[2]
    database = connection.settings_dict
    where = {"host": database["HOST"] or "127.0.0.1", "port": database["PORT"] or 5432, "user": database["USER"]}
    name = f"mh_healthz_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **where) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        env = {
            **os.environ,
            "MEMORYHUB_DATABASE_URL": f"postgres://{where['user']}@{where['host']}:{where['port']}/{name}",
            "MEMORYHUB_DATA_DIR": str(tmp_path),
            "MEMORYHUB_MAINTENANCE": "false",
        }
        env.pop("MEMORYHUB_TEST_DB_PATH", None)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=root, env=env, check=True)
        for durability, expected in (("sync", "on"), ("async", "off")):
            port = free_port()
            log = tmp_path / f"daphne-{durability}.log"
            with log.open("wb") as stderr:
                server = subprocess.Popen(
                    [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "memoryhub.asgi:application"],
                    cwd=root,
                    env={**env, "MEMORYHUB_DURABILITY": durability},
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                )
            try:
                body = None
                deadline = time.monotonic() + 60
                while body is None and time.monotonic() < deadline:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                            body = json.load(response)
                    except OSError:
                        time.sleep(0.2)
                assert body is not None, "daphne did not answer within 60 s"
                assert body["status"] == "ok"
                assert body["database"]["engine"] == "postgresql"
                assert body["database"]["durability"] == durability
                assert body["database"]["synchronous_commit"] == expected
            finally:
                server.terminate()
                server.wait(timeout=15)
            # The start-up line names the database (never a password) and the commit mode.
            banner = (
                f"MemoryHub database: postgresql://{where['user']}@{where['host']}:{where['port']}/{name} (PostgreSQL"
            )
            assert banner in log.read_text()
            assert f"synchronous_commit={expected}" in log.read_text()
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **where) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_statements_are_prepared_after_the_threshold_and_zero_turns_it_off():
    url = "postgres://u@h/db"
    assert postgres_database(url, durability="async", test_name=None)["OPTIONS"]["prepare_threshold"] == 5
    assert (
        postgres_database(url, durability="async", test_name=None, prepare_threshold=2)["OPTIONS"]["prepare_threshold"]
        == 2
    )
    assert (
        postgres_database(url, durability="async", test_name=None, prepare_threshold=0)["OPTIONS"]["prepare_threshold"]
        is None
    )


def test_each_process_pools_its_connections_and_zero_turns_it_off():
    url = "postgres://u@h/db"
    pooled = postgres_database(url, durability="async", test_name=None)
    assert pooled["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 10, "timeout": 10}
    # Django's pool requires connections that are not kept per thread, and checks each before
    # lending it (a connection the server dropped is replaced).
    assert (pooled["CONN_MAX_AGE"], pooled["CONN_HEALTH_CHECKS"]) == (0, True)
    assert postgres_database(url, durability="async", test_name=None, pool_size=3)["OPTIONS"]["pool"]["max_size"] == 3
    assert "pool" not in postgres_database(url, durability="async", test_name=None, pool_size=0)["OPTIONS"]


def test_a_pool_that_stays_busy_is_a_busy_store():
    from psycopg_pool import PoolTimeout

    assert sql.is_busy(PoolTimeout("couldn't get a connection after 10.00 sec"))


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres_only(reason="server-side binding and prepared statements are psycopg's and PostgreSQL's")
def test_a_statement_run_often_on_a_connection_is_prepared_once(db, settings):
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    assert threshold == 5
    marker = f"/* {uuid.uuid4().hex} */"
    statement = f"SELECT name {marker} FROM graph_namespace WHERE name = ?"
    Namespace.objects.create(name="org:acme:main")
    for run in range(threshold + 2):
        assert sql.db().execute(statement, ("org:acme:main",)).fetchall() == [("org:acme:main",)]
        prepared = [text for text in prepared_statements() if marker in text]
        # psycopg prepares on the run after `threshold` runs; the server holds it once.
        assert len(prepared) == (1 if run >= threshold else 0), run
    assert prepared[0].count("$1") == 1


@pytest.mark.postgres_only(reason="server-side binding is psycopg's and PostgreSQL's")
def test_a_statement_the_server_cannot_type_runs_as_before_without_spoiling_the_transaction(transactional_db):
    marker = uuid.uuid4().hex
    untypable = f"SELECT ? IS NULL AS {'x' + marker}"
    with transaction.atomic():
        Namespace.objects.create(name="org:acme:kept")
        # PostgreSQL cannot type `$1 IS NULL` of a NULL (IndeterminateDatatype): inside the
        # transaction a savepoint takes the refusal, and the statement runs bound in the client.
        assert sql.db().execute(untypable, (None,)).fetchone() == (True,)
        assert sql.db().execute(untypable, ("a",)).fetchone() == (False,)
        assert Namespace.objects.filter(name="org:acme:kept").exists()
    assert Namespace.objects.filter(name="org:acme:kept").exists()
    # Learned once per process: the next run goes straight to the client-bound form.
    assert sql.db().execute(untypable, (None,)).fetchone() == (True,)
    # A statement that is wrong on both forms still says what is wrong, and the transaction it
    # was in is aborted as it would have been.
    with pytest.raises(psycopg.errors.UndefinedTable, match="does_not_exist_" + marker), transaction.atomic():
        sql.db().execute(f"SELECT * FROM does_not_exist_{marker} WHERE id = ?", (1,))


@pytest.mark.postgres_only(reason="prepared statements are PostgreSQL's")
def test_full_text_searches_are_planned_for_their_words_and_never_prepared(db, settings):
    """search_nodes and memory search run their full-text statements with prepare=False: the
    plan depends on how many rows hold the words, which a generic plan cannot know. The other
    statements of a search are prepared as usual."""
    from graph import selectors, services

    services.create_entities(
        namespace="org:acme:main",
        entities=[{"name": f"n{i}", "entityType": "note", "observations": [f"deploy item {i}"]} for i in range(3)],
    )
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    for _ in range(threshold + 3):
        found = selectors.search_nodes(namespace="org:acme:main", query="deploy")
        assert {entity["name"] for entity in found["entities"]} == {"n0", "n1", "n2"}
    prepared = prepared_statements()
    assert not [text for text in prepared if "@@" in text], prepared
    assert [text for text in prepared if "FROM graph_namespace WHERE name" in text]
