"""Validity time on observations and relations, lineage of superseded and extracted facts, and
functional relation types (graph/validity.py).

Hand-written DDL (see 0002: Django's SQLite backend would rebuild graph_observation and drop its
FTS and counter triggers): columns are added with ALTER TABLE. graph_relation is rebuilt here, by
hand, because its unique constraint must become partial (one *current* edge per (from, to, type):
a closed edge may be created again), and SQLite cannot drop a table constraint; its indexes and
triggers are created again, and its AUTOINCREMENT sequence is kept (relation ids are named in the
history, graph_version, and must never be handed out twice).

The counters (obs_count, out_deg, in_deg) count open facts from here on: a closed observation or
relation is history, not part of what an entity has now. Type counts still count every row (a
type is in use while any relation, closed or not, has it).
"""

from django.db import migrations, models

from kernel.migration_tools import on_postgresql, on_sqlite

FORWARD = [
    "ALTER TABLE graph_observation ADD COLUMN valid_from datetime NULL",
    "ALTER TABLE graph_observation ADD COLUMN valid_to datetime NULL",
    "ALTER TABLE graph_observation ADD COLUMN supersedes_id bigint NULL",
    "ALTER TABLE graph_observation ADD COLUMN source_id bigint NULL",
    "ALTER TABLE graph_observation ADD COLUMN extracted_by varchar(128) NOT NULL DEFAULT ''",
    'CREATE INDEX "observation_closed" ON "graph_observation" ("namespace_id", "valid_to") WHERE "valid_to" IS NOT NULL',
    'CREATE INDEX "observation_later" ON "graph_observation" ("namespace_id", "valid_from") '
    'WHERE "valid_from" > "created_at"',
    'CREATE INDEX "observation_source" ON "graph_observation" ("source_id") WHERE "source_id" IS NOT NULL',
    'CREATE UNIQUE INDEX "observation_one_successor" ON "graph_observation" ("supersedes_id") '
    'WHERE "supersedes_id" IS NOT NULL',
    "ALTER TABLE graph_typedict ADD COLUMN functional bool NOT NULL DEFAULT 0",
    # Observation counters: open facts only.
    "DROP TRIGGER graph_observation_ai",
    "DROP TRIGGER graph_observation_ad",
    "DROP TRIGGER graph_observation_au_entity",
    """CREATE TRIGGER graph_observation_ai AFTER INSERT ON graph_observation BEGIN
    INSERT INTO obs_fts(rowid, body) VALUES (new.id, coalesce(new.search_text, new.body));
    UPDATE graph_entity SET obs_count = obs_count + 1 WHERE id = new.entity_id AND new.valid_to IS NULL;
END""",
    """CREATE TRIGGER graph_observation_ad AFTER DELETE ON graph_observation BEGIN
    INSERT INTO obs_fts(obs_fts, rowid, body) VALUES ('delete', old.id, coalesce(old.search_text, old.body));
    UPDATE graph_entity SET obs_count = obs_count - 1 WHERE id = old.entity_id AND old.valid_to IS NULL;
END""",
    """CREATE TRIGGER graph_observation_au_entity AFTER UPDATE OF entity_id, valid_to ON graph_observation
WHEN old.entity_id IS NOT new.entity_id OR (old.valid_to IS NULL) IS NOT (new.valid_to IS NULL) BEGIN
    UPDATE graph_entity SET obs_count = obs_count - 1 WHERE id = old.entity_id AND old.valid_to IS NULL;
    UPDATE graph_entity SET obs_count = obs_count + 1 WHERE id = new.entity_id AND new.valid_to IS NULL;
END""",
    # graph_relation, rebuilt with its sequence kept.
    "CREATE TEMP TABLE relation_sequence AS SELECT seq FROM sqlite_sequence WHERE name = 'graph_relation'",
    'CREATE TABLE "graph_relation_new" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, '
    '"created_at" datetime NOT NULL, '
    '"from_id" bigint NOT NULL REFERENCES "graph_entity" ("id") DEFERRABLE INITIALLY DEFERRED, '
    '"namespace_id" bigint NOT NULL REFERENCES "graph_namespace" ("id") DEFERRABLE INITIALLY DEFERRED, '
    '"to_id" bigint NOT NULL REFERENCES "graph_entity" ("id") DEFERRABLE INITIALLY DEFERRED, '
    '"type_id" bigint NOT NULL REFERENCES "graph_typedict" ("id") DEFERRABLE INITIALLY DEFERRED, '
    '"valid_from" datetime NULL, "valid_to" datetime NULL)',
    "INSERT INTO graph_relation_new(id, created_at, from_id, namespace_id, to_id, type_id) "
    "SELECT id, created_at, from_id, namespace_id, to_id, type_id FROM graph_relation",
    "DROP TABLE graph_relation",
    "ALTER TABLE graph_relation_new RENAME TO graph_relation",
    "DELETE FROM sqlite_sequence WHERE name IN ('graph_relation', 'graph_relation_new')",
    "INSERT INTO sqlite_sequence(name, seq) SELECT 'graph_relation', max(coalesce((SELECT max(seq) FROM "
    "temp.relation_sequence), 0), coalesce((SELECT max(id) FROM graph_relation), 0))",
    "DROP TABLE temp.relation_sequence",
    'CREATE INDEX "graph_relation_namespace_id_7000f77c" ON "graph_relation" ("namespace_id")',
    'CREATE INDEX "graph_relation_type_id_c8367663" ON "graph_relation" ("type_id")',
    'CREATE INDEX "relation_incoming" ON "graph_relation" ("to_id", "from_id", "type_id")',
    'CREATE INDEX "relation_outgoing" ON "graph_relation" ("from_id", "to_id", "type_id")',
    'CREATE INDEX "relation_closed" ON "graph_relation" ("namespace_id", "valid_to") WHERE "valid_to" IS NOT NULL',
    'CREATE UNIQUE INDEX "relation_current_edge" ON "graph_relation" ("from_id", "to_id", "type_id") '
    'WHERE "valid_to" IS NULL',
    """CREATE TRIGGER graph_relation_ai AFTER INSERT ON graph_relation BEGIN
    UPDATE graph_entity SET out_deg = out_deg + 1 WHERE id = new.from_id AND new.valid_to IS NULL;
    UPDATE graph_entity SET in_deg = in_deg + 1 WHERE id = new.to_id AND new.valid_to IS NULL;
    UPDATE graph_typedict SET count = count + 1 WHERE id = new.type_id;
END""",
    """CREATE TRIGGER graph_relation_ad AFTER DELETE ON graph_relation BEGIN
    UPDATE graph_entity SET out_deg = out_deg - 1 WHERE id = old.from_id AND old.valid_to IS NULL;
    UPDATE graph_entity SET in_deg = in_deg - 1 WHERE id = old.to_id AND old.valid_to IS NULL;
    UPDATE graph_typedict SET count = count - 1 WHERE id = old.type_id;
END""",
    """CREATE TRIGGER graph_relation_au AFTER UPDATE OF from_id, to_id, type_id, valid_to ON graph_relation
WHEN old.from_id IS NOT new.from_id OR old.to_id IS NOT new.to_id OR old.type_id IS NOT new.type_id
    OR (old.valid_to IS NULL) IS NOT (new.valid_to IS NULL) BEGIN
    UPDATE graph_entity SET out_deg = out_deg - 1 WHERE id = old.from_id AND old.valid_to IS NULL;
    UPDATE graph_entity SET in_deg = in_deg - 1 WHERE id = old.to_id AND old.valid_to IS NULL;
    UPDATE graph_typedict SET count = count - 1 WHERE id = old.type_id;
    UPDATE graph_entity SET out_deg = out_deg + 1 WHERE id = new.from_id AND new.valid_to IS NULL;
    UPDATE graph_entity SET in_deg = in_deg + 1 WHERE id = new.to_id AND new.valid_to IS NULL;
    UPDATE graph_typedict SET count = count + 1 WHERE id = new.type_id;
END""",
]


# PostgreSQL alters graph_relation in place (no rebuild, its sequence untouched); the same
# columns, with their defaults kept in the database as on SQLite, and the same indexes.
PG_FORWARD = [
    "ALTER TABLE graph_observation ADD COLUMN valid_from timestamp with time zone NULL",
    "ALTER TABLE graph_observation ADD COLUMN valid_to timestamp with time zone NULL",
    "ALTER TABLE graph_observation ADD COLUMN supersedes_id bigint NULL",
    "ALTER TABLE graph_observation ADD COLUMN source_id bigint NULL",
    "ALTER TABLE graph_observation ADD COLUMN extracted_by varchar(128) NOT NULL DEFAULT ''",
    "ALTER TABLE graph_relation ADD COLUMN valid_from timestamp with time zone NULL",
    "ALTER TABLE graph_relation ADD COLUMN valid_to timestamp with time zone NULL",
    "ALTER TABLE graph_relation DROP CONSTRAINT relation_unique_edge",
    # The rebuild's indexes, but for those graph_relation kept (0001 made them).
    *[
        statement
        for statement in FORWARD
        if statement.startswith(("CREATE INDEX", "CREATE UNIQUE INDEX"))
        and not any(kept in statement for kept in ("graph_relation_namespace_id", "graph_relation_type_id", '"relation_incoming"'))
    ],
    "ALTER TABLE graph_typedict ADD COLUMN functional boolean NOT NULL DEFAULT false",
    # Open facts only, as the SQLite triggers above.
    """CREATE OR REPLACE FUNCTION graph_observation_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.valid_to IS NULL THEN
        UPDATE graph_entity SET obs_count = obs_count - 1 WHERE id = OLD.entity_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.valid_to IS NULL THEN
        UPDATE graph_entity SET obs_count = obs_count + 1 WHERE id = NEW.entity_id;
    END IF;
    RETURN NULL;
END $$""",
    "DROP TRIGGER graph_observation_au_entity ON graph_observation",
    """CREATE TRIGGER graph_observation_au_entity AFTER UPDATE OF entity_id, valid_to ON graph_observation
    FOR EACH ROW WHEN (OLD.entity_id IS DISTINCT FROM NEW.entity_id OR (OLD.valid_to IS NULL) <> (NEW.valid_to IS NULL))
    EXECUTE FUNCTION graph_observation_counts()""",
    """CREATE OR REPLACE FUNCTION graph_relation_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.valid_to IS NULL THEN
            UPDATE graph_entity SET out_deg = out_deg - 1 WHERE id = OLD.from_id;
            UPDATE graph_entity SET in_deg = in_deg - 1 WHERE id = OLD.to_id;
        END IF;
        UPDATE graph_typedict SET count = count - 1 WHERE id = OLD.type_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.valid_to IS NULL THEN
            UPDATE graph_entity SET out_deg = out_deg + 1 WHERE id = NEW.from_id;
            UPDATE graph_entity SET in_deg = in_deg + 1 WHERE id = NEW.to_id;
        END IF;
        UPDATE graph_typedict SET count = count + 1 WHERE id = NEW.type_id;
    END IF;
    RETURN NULL;
END $$""",
    "DROP TRIGGER graph_relation_au ON graph_relation",
    """CREATE TRIGGER graph_relation_au AFTER UPDATE OF from_id, to_id, type_id, valid_to ON graph_relation
    FOR EACH ROW WHEN (OLD.from_id IS DISTINCT FROM NEW.from_id OR OLD.to_id IS DISTINCT FROM NEW.to_id
        OR OLD.type_id IS DISTINCT FROM NEW.type_id OR (OLD.valid_to IS NULL) <> (NEW.valid_to IS NULL))
    EXECUTE FUNCTION graph_relation_counts()""",
]


def _note_statistics(apps, schema_editor):
    """Whether the old graph_relation has planner statistics: they go with the table."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        had = cursor.fetchone()[0] and cursor.execute(
            "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'graph_relation'"
        ).fetchone()[0]
        cursor.execute("CREATE TEMP TABLE relation_statistics AS SELECT ? AS had", [1 if had else 0])


def _statistics_again(apps, schema_editor):
    """ANALYZE the rebuilt table if the old one had statistics (a database that never ran
    ANALYZE, or PRAGMA optimize, is left to plan as before)."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT had FROM temp.relation_statistics")
        (had,) = cursor.fetchone()
        cursor.execute("DROP TABLE temp.relation_statistics")
        if had:
            cursor.execute("ANALYZE graph_relation")


class Migration(migrations.Migration):
    dependencies = [
        ("graph", "0007_observation_dedupe_key"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                on_sqlite(
                    migrations.RunPython(_note_statistics, migrations.RunPython.noop),
                    migrations.RunSQL(FORWARD),
                    migrations.RunPython(_statistics_again, migrations.RunPython.noop),
                ),
                on_postgresql(migrations.RunSQL(PG_FORWARD)),
            ],
            state_operations=[
            migrations.RemoveConstraint(
                model_name='relation',
                name='relation_unique_edge',
            ),
            migrations.AddField(
                model_name='observation',
                name='extracted_by',
                field=models.CharField(blank=True, default='', editable=False, max_length=128),
            ),
            migrations.AddField(
                model_name='observation',
                name='source_id',
                field=models.BigIntegerField(blank=True, editable=False, null=True),
            ),
            migrations.AddField(
                model_name='observation',
                name='supersedes_id',
                field=models.BigIntegerField(blank=True, editable=False, null=True),
            ),
            migrations.AddField(
                model_name='observation',
                name='valid_from',
                field=models.DateTimeField(blank=True, null=True),
            ),
            migrations.AddField(
                model_name='observation',
                name='valid_to',
                field=models.DateTimeField(blank=True, null=True),
            ),
            migrations.AddField(
                model_name='relation',
                name='valid_from',
                field=models.DateTimeField(blank=True, null=True),
            ),
            migrations.AddField(
                model_name='relation',
                name='valid_to',
                field=models.DateTimeField(blank=True, null=True),
            ),
            migrations.AddField(
                model_name='typedict',
                name='functional',
                field=models.BooleanField(default=False),
            ),
            migrations.AddIndex(
                model_name='observation',
                index=models.Index(condition=models.Q(('valid_to__isnull', False)), fields=['namespace', 'valid_to'], name='observation_closed'),
            ),
            migrations.AddIndex(
                model_name='observation',
                index=models.Index(condition=models.Q(('valid_from__gt', models.F('created_at'))), fields=['namespace', 'valid_from'], name='observation_later'),
            ),
            migrations.AddIndex(
                model_name='observation',
                index=models.Index(condition=models.Q(('source_id__isnull', False)), fields=['source_id'], name='observation_source'),
            ),
            migrations.AddIndex(
                model_name='relation',
                index=models.Index(fields=['from_entity', 'to_entity', 'type'], name='relation_outgoing'),
            ),
            migrations.AddIndex(
                model_name='relation',
                index=models.Index(condition=models.Q(('valid_to__isnull', False)), fields=['namespace', 'valid_to'], name='relation_closed'),
            ),
            migrations.AddConstraint(
                model_name='observation',
                constraint=models.UniqueConstraint(condition=models.Q(('supersedes_id__isnull', False)), fields=('supersedes_id',), name='observation_one_successor'),
            ),
            migrations.AddConstraint(
                model_name='relation',
                constraint=models.UniqueConstraint(condition=models.Q(('valid_to__isnull', True)), fields=('from_entity', 'to_entity', 'type'), name='relation_current_edge'),
            ),
            ],
        ),
    ]
