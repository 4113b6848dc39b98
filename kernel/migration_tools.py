"""Helpers for migrations that rebuild a SQLite table (an altered column, an added foreign key).

SQLite rebuilds such a table as a copy, and the planner statistics of the old one (`sqlite_stat1`
rows, from ANALYZE or `PRAGMA optimize`) go with it: queries on the new table are planned without
them until the next optimize. `keep_statistics(table)` brackets the rebuilding operations: the
first step notes whether the table had statistics, the second ANALYZEs the rebuilt table if it did
(a database that never gathered any is left to plan as before).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def keep_statistics(table: str) -> tuple[migrations.RunPython, migrations.RunPython]:
    """(before, after): put `before` ahead of the operations that rebuild `table`, `after` behind."""
    marker = f"statistics_of_{table}"

    def note(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "sqlite":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            had = (
                cursor.fetchone()[0]
                and cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = %s", [table]).fetchone()[0]
            )
            cursor.execute(f"CREATE TEMP TABLE {marker} AS SELECT %s AS had", [1 if had else 0])

    def gather(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor != "sqlite":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"SELECT had FROM temp.{marker}")
            (had,) = cursor.fetchone()
            cursor.execute(f"DROP TABLE temp.{marker}")
            if had:
                cursor.execute(f"ANALYZE {table}")

    return (
        migrations.RunPython(note, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(gather, migrations.RunPython.noop, elidable=False),
    )
