"""The FTS tables, views and triggers exist after migrating (a table rebuild would drop them)."""

from __future__ import annotations

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


def test_fts_uses_the_diacritic_folding_tokenizer(db):
    (sql,) = connection().execute("SELECT sql FROM sqlite_master WHERE name = 'obs_fts'").fetchone()
    assert "unicode61 remove_diacritics 2" in sql
    assert "content='graph_observation_fts_src'" in sql
