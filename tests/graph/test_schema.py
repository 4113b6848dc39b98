"""The FTS tables, views and triggers exist after migrating (a table rebuild would drop them); on
PostgreSQL the generated search_vector columns with their GIN indexes, and the counter triggers."""

from __future__ import annotations

import pytest

from graph.sql import db as connection

TRIGGERS = {
    "graph_entity_ai",
    "graph_entity_ad",
    "graph_entity_au_name",
    "graph_entity_au_type",
    "graph_observation_ai",
    "graph_observation_ad",
    "graph_observation_au_body",
    "graph_observation_au_entity",
    "graph_relation_ai",
    "graph_relation_ad",
    "graph_relation_au",
}


@pytest.mark.sqlite_only(reason="FTS5 tables and views; the PostgreSQL form checks the tsvector columns")
def test_the_migrations_create_fts_tables_views_and_triggers(db):
    listed = db_connection_rows()
    rows = dict(listed)
    assert {name for name, kind in listed if kind == "trigger"} >= TRIGGERS
    assert rows["name_fts"] == "table"
    assert rows["obs_fts"] == "table"
    assert rows["graph_entity_fts_src"] == "view"
    assert rows["graph_observation_fts_src"] == "view"


def db_connection_rows() -> list[tuple[str, str]]:
    return connection().execute("SELECT name, type FROM sqlite_master").fetchall()


@pytest.mark.sqlite_only(reason="FTS5's tokenizer; on PostgreSQL the application writes the tokens (graph/fts.py)")
def test_fts_uses_the_diacritic_folding_tokenizer(db):
    (sql,) = connection().execute("SELECT sql FROM sqlite_master WHERE name = 'obs_fts'").fetchone()
    assert "unicode61 remove_diacritics 2" in sql
    assert "content='graph_observation_fts_src'" in sql


# The counter triggers on PostgreSQL (one function per table keeps every counter; graph/migrations/0002).
POSTGRES_TRIGGERS = {
    ("graph_entity", "graph_entity_ai"),
    ("graph_entity", "graph_entity_ad"),
    ("graph_entity", "graph_entity_au_type"),
    ("graph_observation", "graph_observation_ai"),
    ("graph_observation", "graph_observation_ad"),
    ("graph_observation", "graph_observation_au_entity"),
    ("graph_relation", "graph_relation_ai"),
    ("graph_relation", "graph_relation_ad"),
    ("graph_relation", "graph_relation_au"),
}


@pytest.mark.postgres_only(reason="tsvector columns and GIN indexes; the SQLite form checks the FTS5 tables")
def test_the_migrations_create_search_vectors_indexes_and_triggers(db):
    conn = connection()
    generated = dict(
        conn.execute(
            "SELECT c.relname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attname = 'search_vector' AND a.attgenerated = 's'"
        ).fetchall()
    )
    # The application's index form (graph/fts.py index_text), read by the 'simple' configuration.
    assert generated == {
        "graph_entity": "to_tsvector('simple'::regconfig, COALESCE(search_name, name))",
        "graph_observation": "to_tsvector('simple'::regconfig, COALESCE(search_text, body))",
    }
    indexes = dict(
        conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN "
            "('graph_entity_search_recent', 'graph_observation_search_recent')"
        ).fetchall()
    )
    # Indexed with each row's id bucket (graph/recent.py).
    assert len(indexes) == 2
    assert all("USING gin (search_vector, search_bucket)" in definition for definition in indexes.values())
    buckets = dict(
        conn.execute(
            "SELECT c.relname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attname = 'search_bucket' AND a.attgenerated = 's'"
        ).fetchall()
    )
    assert set(buckets) == {"graph_entity", "graph_observation"}
    assert all("(id >> 12)" in expression for expression in buckets.values())
    triggers = {
        (table, name)
        for table, name in conn.execute(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"
        ).fetchall()
    }
    assert triggers >= POSTGRES_TRIGGERS
