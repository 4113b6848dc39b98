"""FTS5 tables and the triggers that keep counters and the full-text index in sync.

Why triggers and not service code: the invariants (obs_count, out_deg, in_deg, type counts, FTS
rows) must hold however a row is written or deleted — by the services, by Django's cascade
collector in the admin, or by hand in `sqlite3`. Triggers run inside the same statement, so they
can never drift and they cost one indexed UPDATE per row.

Never let Django rebuild graph_entity, graph_observation or graph_relation (its SQLite backend does
that for most AlterField changes): the rebuild drops these triggers. Use SeparateDatabaseAndState
with hand-written DDL, as 0003 does.

The FTS tables are external-content tables over two views that pick the CJK-bigram form of the
text when there is one (see graph/fts.py). Because the views are deterministic SQL, FTS5's own
'rebuild' and 'integrity-check' commands work on them.
"""

import re

from django.db import migrations

from kernel.migration_tools import on_postgresql, on_sqlite

TOKENIZE = "tokenize='unicode61 remove_diacritics 2', prefix='2 3'"

FORWARD = f"""
CREATE VIEW graph_entity_fts_src(id, name) AS
    SELECT id, coalesce(search_name, name) FROM graph_entity;
CREATE VIRTUAL TABLE name_fts USING fts5(
    name, content='graph_entity_fts_src', content_rowid='id', {TOKENIZE}
);
CREATE VIEW graph_observation_fts_src(id, body) AS
    SELECT id, coalesce(search_text, body) FROM graph_observation;
CREATE VIRTUAL TABLE obs_fts USING fts5(
    body, content='graph_observation_fts_src', content_rowid='id', {TOKENIZE}
);

CREATE TRIGGER graph_entity_ai AFTER INSERT ON graph_entity BEGIN
    INSERT INTO name_fts(rowid, name) VALUES (new.id, coalesce(new.search_name, new.name));
    UPDATE graph_typedict SET count = count + 1 WHERE id = new.type_id;
END;
CREATE TRIGGER graph_entity_ad AFTER DELETE ON graph_entity BEGIN
    INSERT INTO name_fts(name_fts, rowid, name) VALUES ('delete', old.id, coalesce(old.search_name, old.name));
    UPDATE graph_typedict SET count = count - 1 WHERE id = old.type_id;
END;
CREATE TRIGGER graph_entity_au_name AFTER UPDATE OF name, search_name ON graph_entity
WHEN old.name IS NOT new.name OR old.search_name IS NOT new.search_name BEGIN
    INSERT INTO name_fts(name_fts, rowid, name) VALUES ('delete', old.id, coalesce(old.search_name, old.name));
    INSERT INTO name_fts(rowid, name) VALUES (new.id, coalesce(new.search_name, new.name));
END;
CREATE TRIGGER graph_entity_au_type AFTER UPDATE OF type_id ON graph_entity
WHEN old.type_id IS NOT new.type_id BEGIN
    UPDATE graph_typedict SET count = count - 1 WHERE id = old.type_id;
    UPDATE graph_typedict SET count = count + 1 WHERE id = new.type_id;
END;

CREATE TRIGGER graph_observation_ai AFTER INSERT ON graph_observation BEGIN
    INSERT INTO obs_fts(rowid, body) VALUES (new.id, coalesce(new.search_text, new.body));
    UPDATE graph_entity SET obs_count = obs_count + 1 WHERE id = new.entity_id;
END;
CREATE TRIGGER graph_observation_ad AFTER DELETE ON graph_observation BEGIN
    INSERT INTO obs_fts(obs_fts, rowid, body) VALUES ('delete', old.id, coalesce(old.search_text, old.body));
    UPDATE graph_entity SET obs_count = obs_count - 1 WHERE id = old.entity_id;
END;
CREATE TRIGGER graph_observation_au_body AFTER UPDATE OF body, search_text ON graph_observation
WHEN old.body IS NOT new.body OR old.search_text IS NOT new.search_text BEGIN
    INSERT INTO obs_fts(obs_fts, rowid, body) VALUES ('delete', old.id, coalesce(old.search_text, old.body));
    INSERT INTO obs_fts(rowid, body) VALUES (new.id, coalesce(new.search_text, new.body));
END;
CREATE TRIGGER graph_observation_au_entity AFTER UPDATE OF entity_id ON graph_observation
WHEN old.entity_id IS NOT new.entity_id BEGIN
    UPDATE graph_entity SET obs_count = obs_count - 1 WHERE id = old.entity_id;
    UPDATE graph_entity SET obs_count = obs_count + 1 WHERE id = new.entity_id;
END;

CREATE TRIGGER graph_relation_ai AFTER INSERT ON graph_relation BEGIN
    UPDATE graph_entity SET out_deg = out_deg + 1 WHERE id = new.from_id;
    UPDATE graph_entity SET in_deg = in_deg + 1 WHERE id = new.to_id;
    UPDATE graph_typedict SET count = count + 1 WHERE id = new.type_id;
END;
CREATE TRIGGER graph_relation_ad AFTER DELETE ON graph_relation BEGIN
    UPDATE graph_entity SET out_deg = out_deg - 1 WHERE id = old.from_id;
    UPDATE graph_entity SET in_deg = in_deg - 1 WHERE id = old.to_id;
    UPDATE graph_typedict SET count = count - 1 WHERE id = old.type_id;
END;
CREATE TRIGGER graph_relation_au AFTER UPDATE OF from_id, to_id, type_id ON graph_relation
WHEN old.from_id IS NOT new.from_id OR old.to_id IS NOT new.to_id OR old.type_id IS NOT new.type_id BEGIN
    UPDATE graph_entity SET out_deg = out_deg - 1 WHERE id = old.from_id;
    UPDATE graph_entity SET in_deg = in_deg - 1 WHERE id = old.to_id;
    UPDATE graph_typedict SET count = count - 1 WHERE id = old.type_id;
    UPDATE graph_entity SET out_deg = out_deg + 1 WHERE id = new.from_id;
    UPDATE graph_entity SET in_deg = in_deg + 1 WHERE id = new.to_id;
    UPDATE graph_typedict SET count = count + 1 WHERE id = new.type_id;
END;

-- Free text memories (observations without an entity) are listed per namespace, newest first.
CREATE INDEX graph_observation_ns_recent ON graph_observation(namespace_id, id) WHERE entity_id IS NULL;
"""

BACKWARD = """
DROP INDEX IF EXISTS graph_observation_ns_recent;
DROP TRIGGER IF EXISTS graph_relation_au;
DROP TRIGGER IF EXISTS graph_relation_ad;
DROP TRIGGER IF EXISTS graph_relation_ai;
DROP TRIGGER IF EXISTS graph_observation_au_entity;
DROP TRIGGER IF EXISTS graph_observation_au_body;
DROP TRIGGER IF EXISTS graph_observation_ad;
DROP TRIGGER IF EXISTS graph_observation_ai;
DROP TRIGGER IF EXISTS graph_entity_au_type;
DROP TRIGGER IF EXISTS graph_entity_au_name;
DROP TRIGGER IF EXISTS graph_entity_ad;
DROP TRIGGER IF EXISTS graph_entity_ai;
DROP TABLE IF EXISTS obs_fts;
DROP VIEW IF EXISTS graph_observation_fts_src;
DROP TABLE IF EXISTS name_fts;
DROP VIEW IF EXISTS graph_entity_fts_src;
"""


# PostgreSQL: the text to index is a stored tsvector column, generated from the same text FTS5
# indexes (the CJK-bigram form when there is one), with a GIN index; the counters are kept by
# row triggers as above. On PostgreSQL graph/fts.py writes search_name / search_text for every
# row (the unicode61 tokens, lower-cased and without diacritics), so the server's own parser and
# locale never decide what a word is, and no extension is needed.
PG_FORWARD = [
    """ALTER TABLE graph_entity ADD COLUMN search_vector tsvector
        GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, coalesce(search_name, name))) STORED""",
    "CREATE INDEX graph_entity_search_vector ON graph_entity USING gin (search_vector)",
    """ALTER TABLE graph_observation ADD COLUMN search_vector tsvector
        GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, coalesce(search_text, body))) STORED""",
    "CREATE INDEX graph_observation_search_vector ON graph_observation USING gin (search_vector)",
    """CREATE FUNCTION graph_entity_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE graph_typedict SET count = count - 1 WHERE id = OLD.type_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE graph_typedict SET count = count + 1 WHERE id = NEW.type_id;
    END IF;
    RETURN NULL;
END $$""",
    """CREATE TRIGGER graph_entity_ai AFTER INSERT ON graph_entity
    FOR EACH ROW EXECUTE FUNCTION graph_entity_counts()""",
    """CREATE TRIGGER graph_entity_ad AFTER DELETE ON graph_entity
    FOR EACH ROW EXECUTE FUNCTION graph_entity_counts()""",
    """CREATE TRIGGER graph_entity_au_type AFTER UPDATE OF type_id ON graph_entity
    FOR EACH ROW WHEN (OLD.type_id IS DISTINCT FROM NEW.type_id) EXECUTE FUNCTION graph_entity_counts()""",
    """CREATE FUNCTION graph_observation_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE graph_entity SET obs_count = obs_count - 1 WHERE id = OLD.entity_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE graph_entity SET obs_count = obs_count + 1 WHERE id = NEW.entity_id;
    END IF;
    RETURN NULL;
END $$""",
    """CREATE TRIGGER graph_observation_ai AFTER INSERT ON graph_observation
    FOR EACH ROW EXECUTE FUNCTION graph_observation_counts()""",
    """CREATE TRIGGER graph_observation_ad AFTER DELETE ON graph_observation
    FOR EACH ROW EXECUTE FUNCTION graph_observation_counts()""",
    """CREATE TRIGGER graph_observation_au_entity AFTER UPDATE OF entity_id ON graph_observation
    FOR EACH ROW WHEN (OLD.entity_id IS DISTINCT FROM NEW.entity_id) EXECUTE FUNCTION graph_observation_counts()""",
    """CREATE FUNCTION graph_relation_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        UPDATE graph_entity SET out_deg = out_deg - 1 WHERE id = OLD.from_id;
        UPDATE graph_entity SET in_deg = in_deg - 1 WHERE id = OLD.to_id;
        UPDATE graph_typedict SET count = count - 1 WHERE id = OLD.type_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        UPDATE graph_entity SET out_deg = out_deg + 1 WHERE id = NEW.from_id;
        UPDATE graph_entity SET in_deg = in_deg + 1 WHERE id = NEW.to_id;
        UPDATE graph_typedict SET count = count + 1 WHERE id = NEW.type_id;
    END IF;
    RETURN NULL;
END $$""",
    """CREATE TRIGGER graph_relation_ai AFTER INSERT ON graph_relation
    FOR EACH ROW EXECUTE FUNCTION graph_relation_counts()""",
    """CREATE TRIGGER graph_relation_ad AFTER DELETE ON graph_relation
    FOR EACH ROW EXECUTE FUNCTION graph_relation_counts()""",
    """CREATE TRIGGER graph_relation_au AFTER UPDATE OF from_id, to_id, type_id ON graph_relation
    FOR EACH ROW WHEN (OLD.from_id IS DISTINCT FROM NEW.from_id OR OLD.to_id IS DISTINCT FROM NEW.to_id
        OR OLD.type_id IS DISTINCT FROM NEW.type_id) EXECUTE FUNCTION graph_relation_counts()""",
    "CREATE INDEX graph_observation_ns_recent ON graph_observation(namespace_id, id) WHERE entity_id IS NULL",
]
PG_BACKWARD = [
    "DROP INDEX IF EXISTS graph_observation_ns_recent",
    "DROP TRIGGER IF EXISTS graph_relation_au ON graph_relation",
    "DROP TRIGGER IF EXISTS graph_relation_ad ON graph_relation",
    "DROP TRIGGER IF EXISTS graph_relation_ai ON graph_relation",
    "DROP FUNCTION IF EXISTS graph_relation_counts()",
    "DROP TRIGGER IF EXISTS graph_observation_au_entity ON graph_observation",
    "DROP TRIGGER IF EXISTS graph_observation_ad ON graph_observation",
    "DROP TRIGGER IF EXISTS graph_observation_ai ON graph_observation",
    "DROP FUNCTION IF EXISTS graph_observation_counts()",
    "DROP TRIGGER IF EXISTS graph_entity_au_type ON graph_entity",
    "DROP TRIGGER IF EXISTS graph_entity_ad ON graph_entity",
    "DROP TRIGGER IF EXISTS graph_entity_ai ON graph_entity",
    "DROP FUNCTION IF EXISTS graph_entity_counts()",
    "ALTER TABLE graph_observation DROP COLUMN IF EXISTS search_vector",
    "ALTER TABLE graph_entity DROP COLUMN IF EXISTS search_vector",
]


def _statements(script: str) -> list[str]:
    """Split a script into statements. Trigger bodies contain semicolons, but only top-level
    statements end with `;` at the end of an unindented line."""
    return [part.strip() for part in re.split(r";\n+(?=\S)(?!END)", script.strip()) if part.strip()]


class Migration(migrations.Migration):
    dependencies = [("graph", "0001_initial")]

    operations = [
        on_sqlite(migrations.RunSQL(_statements(FORWARD), _statements(BACKWARD))),
        on_postgresql(migrations.RunSQL(PG_FORWARD, PG_BACKWARD)),
    ]
