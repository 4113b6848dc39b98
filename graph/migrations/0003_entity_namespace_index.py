"""Index graph_entity(namespace_id) so id-ordered paging (read_graph, export) needs no sort.

Only the index is created in the database. Django's SQLite backend applies AlterField by
rebuilding the table, which would drop the FTS/counter triggers of 0002 and break its views, so
schema changes to the graph tables must use SeparateDatabaseAndState with hand-written DDL.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("graph", "0002_fts_and_counters")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "CREATE INDEX graph_entity_namespace_id ON graph_entity(namespace_id)",
                    "DROP INDEX graph_entity_namespace_id",
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="entity",
                    name="namespace",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="entities", to="graph.namespace"
                    ),
                ),
            ],
        ),
    ]
