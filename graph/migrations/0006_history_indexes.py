"""Indexes and a constraint of graph_version that creates, the bulk of the history, do not pay for.

Every write records its versions in its own transaction, so each index on graph_version is work
every write does (bench/RESULTS.md, "History"). A create is never looked up by entity, time or
call (it keeps no copy of the row: graph/history.py), so the entity, time and call indexes become
partial indexes of the other versions; the namespace foreign key loses its index and its database
constraint (checked once per version written; no read needs them); the names entities had before
a rename, delete or merge get an expression index of their own (the live name is in graph_entity).
Changing the constraint rebuilds graph_version (SQLite), which migration 0005 made.
"""

import django.db.models.deletion

import kernel.db_functions
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('graph', '0005_history_and_mentions'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='version',
            name='version_entity',
        ),
        migrations.RemoveIndex(
            model_name='version',
            name='version_other_entity',
        ),
        migrations.RemoveIndex(
            model_name='version',
            name='version_action_time',
        ),
        migrations.RemoveIndex(
            model_name='version',
            name='version_call',
        ),
        migrations.AlterField(
            model_name='version',
            name='namespace',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='versions', to='graph.namespace'),
        ),
        migrations.AddIndex(
            model_name='version',
            index=models.Index(condition=models.Q(('entity_id__isnull', False), models.Q(('action', 'create'), _negated=True)), fields=['entity_id'], name='version_entity_changes'),
        ),
        migrations.AddIndex(
            model_name='version',
            index=models.Index(condition=models.Q(('other_entity_id__isnull', False), models.Q(('action', 'create'), _negated=True)), fields=['other_entity_id'], name='version_other_entity_changes'),
        ),
        migrations.AddIndex(
            model_name='version',
            index=models.Index(models.F('namespace'), kernel.db_functions.JsonText("before", "name"), condition=models.Q(('kind', 'entity'), models.Q(('action', 'create'), _negated=True)), name='version_entity_old_name'),
        ),
        migrations.AddIndex(
            model_name='version',
            index=models.Index(condition=models.Q(('after__isnull', True), models.Q(('action', 'create'), _negated=True)), fields=['changed_at'], name='version_removed_time'),
        ),
        migrations.AddIndex(
            model_name='version',
            index=models.Index(condition=models.Q(('after__isnull', True), models.Q(('action', 'create'), _negated=True)), fields=['call'], name='version_removed_call'),
        ),
    ]
