"""Read-only views of the FTS indexes' vocabularies (fts5vocab, one row per term instance).

search_nodes and memory search look up which indexed terms start with a typed word
(graph/sql.py `terms_with_prefix`) and match those exact terms instead of FTS5's prefix query,
which merges the doclists of every term with the prefix into one buffer before returning a row.
The vocabulary tables store nothing; they read the FTS indexes.
"""

from django.db import migrations

from kernel.migration_tools import on_sqlite

VOCABULARIES = {"name_fts_terms": "name_fts", "obs_fts_terms": "obs_fts"}


class Migration(migrations.Migration):
    dependencies = [("graph", "0003_entity_namespace_index")]

    # PostgreSQL needs none: a tsquery prefix (`word:*`) is answered from the GIN index itself.
    operations = [
        on_sqlite(migrations.RunSQL(
            f"CREATE VIRTUAL TABLE {vocabulary} USING fts5vocab({fts}, instance)",
            f"DROP TABLE {vocabulary}",
        ))
        for vocabulary, fts in VOCABULARIES.items()
    ]
