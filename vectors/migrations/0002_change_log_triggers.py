"""Triggers that write the vector change log and delete vectors with their owners.

Why triggers: an embedding must disappear with its observation or entity however that row is
deleted (graph services' raw SQL, the admin's cascade collector, `sqlite3` by hand), and every
process must learn of it from the change log. The graph tables are never rebuilt by migrations
(see graph/migrations/0002), so these triggers on them stay in place.

An observation whose text is edited loses its vector (it no longer describes the text);
`manage.py embed_missing` embeds it again.
"""

import re

from django.db import migrations

from kernel.migration_tools import on_postgresql, on_sqlite

_LOG = (
    "INSERT INTO vectors_change(namespace_id, owner_kind, model, owner_id, deleted) "
    "VALUES ({row}.namespace_id, {row}.owner_kind, {row}.model, {row}.owner_id, {deleted})"
)

FORWARD = f"""
CREATE TRIGGER vectors_embedding_ai AFTER INSERT ON vectors_embedding BEGIN
    {_LOG.format(row="new", deleted=0)};
    UPDATE vectors_embedding SET seq = last_insert_rowid() WHERE id = new.id;
END;
CREATE TRIGGER vectors_embedding_au AFTER UPDATE OF vector, dims ON vectors_embedding BEGIN
    {_LOG.format(row="new", deleted=0)};
    UPDATE vectors_embedding SET seq = last_insert_rowid() WHERE id = new.id;
END;
CREATE TRIGGER vectors_embedding_ad AFTER DELETE ON vectors_embedding BEGIN
    {_LOG.format(row="old", deleted=1)};
END;
CREATE TRIGGER vectors_observation_ad AFTER DELETE ON graph_observation BEGIN
    DELETE FROM vectors_embedding WHERE owner_kind = 'observation' AND owner_id = old.id;
END;
CREATE TRIGGER vectors_observation_au_body AFTER UPDATE OF body ON graph_observation
WHEN old.body IS NOT new.body BEGIN
    DELETE FROM vectors_embedding WHERE owner_kind = 'observation' AND owner_id = old.id;
END;
CREATE TRIGGER vectors_entity_ad AFTER DELETE ON graph_entity BEGIN
    DELETE FROM vectors_embedding WHERE owner_kind = 'entity' AND owner_id = old.id;
END;
"""

BACKWARD = """
DROP TRIGGER vectors_entity_ad;
DROP TRIGGER vectors_observation_au_body;
DROP TRIGGER vectors_observation_ad;
DROP TRIGGER vectors_embedding_ad;
DROP TRIGGER vectors_embedding_au;
DROP TRIGGER vectors_embedding_ai;
"""


# PostgreSQL: the same log, written by row triggers. A BEFORE trigger sets the row's seq to its
# change id itself (no second UPDATE). Change ids come from a sequence and transactions commit in
# any order, so a reader must not take the highest id it has seen as "everything below is read":
# each change also records the id of the transaction that wrote it (`xact`, assigned before the
# change id is drawn, so a transaction in progress when a reader looks holds only ids drawn after
# it began), and a reader reads the changes of the transactions it saw in progress once they end
# (vectors/store.py, "The change log on PostgreSQL"). PostgreSQL only: SQLite's log is
# written by one writer at a time and needs no such column.
PG_FORWARD = [
    "ALTER TABLE vectors_change ADD COLUMN xact xid8 NOT NULL DEFAULT pg_current_xact_id()",
    # A reader looks up the changes of one index by the transactions that wrote them.
    "CREATE INDEX vectors_change_xact ON vectors_change (namespace_id, owner_kind, model, xact)",
    # A new row draws its change id in a BEFORE trigger (the row is stored with it) and logs it in
    # an AFTER trigger, which runs only if the row was inserted: an upsert that updates instead
    # logs once, by the update trigger, as on SQLite (its drawn id is left unused, a gap).
    """CREATE FUNCTION vectors_embedding_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The transaction id first (pg_current_xact_id assigns one if the transaction has none yet),
    -- then the change id: a reader's snapshot then lists as in progress every transaction that
    -- may still commit a change with an id below those it can see.
    PERFORM pg_current_xact_id();
    NEW.seq := nextval('vectors_change_seq_seq');
    RETURN NEW;
END $$""",
    """CREATE FUNCTION vectors_embedding_log() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change_id bigint;
    writer xid8;
BEGIN
    writer := pg_current_xact_id();  -- before the change id is drawn (see above)
    IF TG_OP = 'DELETE' THEN
        INSERT INTO vectors_change(namespace_id, owner_kind, model, owner_id, deleted, xact)
        VALUES (OLD.namespace_id, OLD.owner_kind, OLD.model, OLD.owner_id, true, writer);
        RETURN OLD;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO vectors_change(seq, namespace_id, owner_kind, model, owner_id, deleted, xact)
        VALUES (NEW.seq, NEW.namespace_id, NEW.owner_kind, NEW.model, NEW.owner_id, false, writer);
        RETURN NULL;
    END IF;
    INSERT INTO vectors_change(namespace_id, owner_kind, model, owner_id, deleted, xact)
    VALUES (NEW.namespace_id, NEW.owner_kind, NEW.model, NEW.owner_id, false, writer) RETURNING seq INTO change_id;
    NEW.seq := change_id;
    RETURN NEW;
END $$""",
    """CREATE TRIGGER vectors_embedding_bi BEFORE INSERT ON vectors_embedding
    FOR EACH ROW EXECUTE FUNCTION vectors_embedding_seq()""",
    """CREATE TRIGGER vectors_embedding_ai AFTER INSERT ON vectors_embedding
    FOR EACH ROW EXECUTE FUNCTION vectors_embedding_log()""",
    """CREATE TRIGGER vectors_embedding_au BEFORE UPDATE OF vector, dims ON vectors_embedding
    FOR EACH ROW EXECUTE FUNCTION vectors_embedding_log()""",
    """CREATE TRIGGER vectors_embedding_ad AFTER DELETE ON vectors_embedding
    FOR EACH ROW EXECUTE FUNCTION vectors_embedding_log()""",
    """CREATE FUNCTION vectors_drop_with_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM vectors_embedding WHERE owner_kind = TG_ARGV[0] AND owner_id = OLD.id;
    RETURN NULL;
END $$""",
    """CREATE TRIGGER vectors_observation_ad AFTER DELETE ON graph_observation
    FOR EACH ROW EXECUTE FUNCTION vectors_drop_with_owner('observation')""",
    """CREATE TRIGGER vectors_observation_au_body AFTER UPDATE OF body ON graph_observation
    FOR EACH ROW WHEN (OLD.body IS DISTINCT FROM NEW.body) EXECUTE FUNCTION vectors_drop_with_owner('observation')""",
    """CREATE TRIGGER vectors_entity_ad AFTER DELETE ON graph_entity
    FOR EACH ROW EXECUTE FUNCTION vectors_drop_with_owner('entity')""",
]
PG_BACKWARD = [
    "DROP TRIGGER vectors_entity_ad ON graph_entity",
    "DROP TRIGGER vectors_observation_au_body ON graph_observation",
    "DROP TRIGGER vectors_observation_ad ON graph_observation",
    "DROP FUNCTION vectors_drop_with_owner()",
    "DROP TRIGGER vectors_embedding_ad ON vectors_embedding",
    "DROP TRIGGER vectors_embedding_au ON vectors_embedding",
    "DROP TRIGGER vectors_embedding_ai ON vectors_embedding",
    "DROP TRIGGER vectors_embedding_bi ON vectors_embedding",
    "DROP FUNCTION vectors_embedding_log()",
    "DROP FUNCTION vectors_embedding_seq()",
    "DROP INDEX vectors_change_xact",
    "ALTER TABLE vectors_change DROP COLUMN xact",
]


def _statements(script: str) -> list[str]:
    """Split a script into statements (as graph/migrations/0002 does): trigger bodies contain
    semicolons, but only top-level statements end with `;` at the end of an unindented line."""
    return [part.strip() for part in re.split(r";\n+(?=\S)(?!END)", script.strip()) if part.strip()]


class Migration(migrations.Migration):
    dependencies = [("vectors", "0001_initial"), ("graph", "0003_entity_namespace_index")]

    operations = [
        on_sqlite(migrations.RunSQL(_statements(FORWARD), _statements(BACKWARD))),
        on_postgresql(migrations.RunSQL(PG_FORWARD, PG_BACKWARD)),
    ]
