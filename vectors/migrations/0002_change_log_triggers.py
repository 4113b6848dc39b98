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


def _statements(script: str) -> list[str]:
    """Split a script into statements (as graph/migrations/0002 does): trigger bodies contain
    semicolons, but only top-level statements end with `;` at the end of an unindented line."""
    return [part.strip() for part in re.split(r";\n+(?=\S)(?!END)", script.strip()) if part.strip()]


class Migration(migrations.Migration):
    dependencies = [("vectors", "0001_initial"), ("graph", "0003_entity_namespace_index")]

    operations = [migrations.RunSQL(_statements(FORWARD), _statements(BACKWARD))]
