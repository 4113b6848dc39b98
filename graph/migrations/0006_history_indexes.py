"""Indexes of graph_version that creates, the bulk of the history, do not pay for.

Every write records its versions in its own transaction, so each index on graph_version is work
every write does (bench/RESULTS.md, "History"). A create is never looked up by entity, time or
call (it keeps no copy of the row: graph/history.py), so the entity, time and call indexes become
partial indexes of the other versions, the namespace foreign key loses its index (no read needs
it), and the names entities had before a rename, delete or merge get an expression index of their
own (the live name is in graph_entity).
"""

from django.db import migrations, models

_CHANGES = ~models.Q(action="create")
_REMOVED = models.Q(after__isnull=True) & ~models.Q(action="create")


class Migration(migrations.Migration):
    dependencies = [
        ("graph", "0005_history_and_mentions"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="version", name="version_entity"),
        migrations.RemoveIndex(model_name="version", name="version_other_entity"),
        migrations.RemoveIndex(model_name="version", name="version_action_time"),
        migrations.RemoveIndex(model_name="version", name="version_call"),
        # The foreign key's index only (SQLite's AlterField would copy the whole table).
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "graph_version_namespace_id_656c21d5"',
                    'CREATE INDEX "graph_version_namespace_id_656c21d5" ON "graph_version" ("namespace_id")',
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="version",
                    name="namespace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="versions",
                        to="graph.namespace",
                    ),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="version",
            index=models.Index(
                condition=models.Q(entity_id__isnull=False) & _CHANGES,
                fields=["entity_id"],
                name="version_entity_changes",
            ),
        ),
        migrations.AddIndex(
            model_name="version",
            index=models.Index(
                condition=models.Q(other_entity_id__isnull=False) & _CHANGES,
                fields=["other_entity_id"],
                name="version_other_entity_changes",
            ),
        ),
        migrations.AddIndex(
            model_name="version",
            index=models.Index(condition=_REMOVED, fields=["changed_at"], name="version_removed_time"),
        ),
        migrations.AddIndex(
            model_name="version",
            index=models.Index(condition=_REMOVED, fields=["call"], name="version_removed_call"),
        ),
        migrations.RunSQL(
            "CREATE INDEX version_entity_old_name ON graph_version(namespace_id, (before ->> 'name')) "
            "WHERE kind = 'entity' AND NOT (action = 'create')",
            "DROP INDEX version_entity_old_name",
        ),
    ]
