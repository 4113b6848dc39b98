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


class OnVendor(migrations.operations.base.Operation):
    """Operations that touch the database of one backend only (`sqlite` or `postgresql`).

    The graph's tables carry hand-written SQLite (FTS5 tables, triggers, rebuilds that keep an
    AUTOINCREMENT sequence); PostgreSQL gets its own forms of the same schema, side by side in the
    same migration, so both backends reach the same models by the same migration names. Wrapped
    operations change the project state as they would unwrapped (inside SeparateDatabaseAndState's
    database_operations that is the database-side state only)."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, vendor: str, *operations: Any) -> None:
        self.vendor = vendor
        self.operations = list(operations)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [self.vendor, *self.operations], {})

    def state_forwards(self, app_label: str, state: Any) -> None:
        for operation in self.operations:
            operation.state_forwards(app_label, state)

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != self.vendor:
            return
        for operation in self.operations:
            to = from_state.clone()
            operation.state_forwards(app_label, to)
            operation.database_forwards(app_label, schema_editor, from_state, to)
            from_state = to

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if schema_editor.connection.vendor != self.vendor:
            return
        # As SeparateDatabaseAndState does: the state before each operation, then undo them last first.
        states = [to_state]
        for operation in self.operations[:-1]:
            state = states[-1].clone()
            operation.state_forwards(app_label, state)
            states.append(state)
        for operation, before in zip(reversed(self.operations), reversed(states), strict=True):
            after = before.clone()
            operation.state_forwards(app_label, after)
            operation.database_backwards(app_label, schema_editor, after, before)

    def describe(self) -> str:
        return f"On {self.vendor} only: " + "; ".join(operation.describe() for operation in self.operations)


def on_sqlite(*operations: Any) -> OnVendor:
    return OnVendor("sqlite", *operations)


def on_postgresql(*operations: Any) -> OnVendor:
    return OnVendor("postgresql", *operations)
