"""The traversal indexes end with valid_to, so a walk over current edges (`valid_to IS NULL`,
graph/traversal.py) reads the index alone, as before validity time (issue 19): with the old
(from, to, type) indexes every step read the edge's row too, and find_path / get_neighbors got
slower. They serve asOf walks and (from, to, type) look-ups as before.
"""

from django.db import migrations, models


def _statistics_again(apps, schema_editor):
    """New indexes have no planner statistics: gather them when the table had some (0008 says why)."""
    if schema_editor.connection.vendor != "sqlite":
        return  # PostgreSQL's autovacuum analyzes a table with new indexes on its own schedule.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if cursor.fetchone()[0]:
            cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'graph_relation'")
            if cursor.fetchone()[0]:
                cursor.execute("ANALYZE graph_relation")


class Migration(migrations.Migration):
    dependencies = [
        ("graph", "0008_validity"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="relation",
            name="relation_incoming",
        ),
        migrations.RemoveIndex(
            model_name="relation",
            name="relation_outgoing",
        ),
        migrations.AddIndex(
            model_name="relation",
            index=models.Index(fields=["from_entity", "to_entity", "type", "valid_to"], name="relation_outgoing_at"),
        ),
        migrations.AddIndex(
            model_name="relation",
            index=models.Index(fields=["to_entity", "from_entity", "type", "valid_to"], name="relation_incoming_at"),
        ),
        migrations.RunPython(_statistics_again, migrations.RunPython.noop),
    ]
