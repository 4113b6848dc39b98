"""The ledger is append-only in the database itself: an UPDATE or DELETE of a row raises, whoever
runs it (the ORM, the admin, a shell, raw SQL)."""

from django.db import migrations

from kernel.migration_tools import on_postgresql, on_sqlite

TRIGGERS = [
    """
    CREATE TRIGGER agents_ledger_no_update BEFORE UPDATE ON agents_ledgerentry
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: record a new entry instead'); END
    """,
    """
    CREATE TRIGGER agents_ledger_no_delete BEFORE DELETE ON agents_ledgerentry
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: they cannot be deleted'); END
    """,
]
PG_TRIGGERS = [
    """CREATE FUNCTION agents_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'ledger entries are append-only: record a new entry instead';
    END IF;
    RAISE EXCEPTION 'ledger entries are append-only: they cannot be deleted';
END $$""",
    """CREATE TRIGGER agents_ledger_no_update BEFORE UPDATE ON agents_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION agents_ledger_append_only()""",
    """CREATE TRIGGER agents_ledger_no_delete BEFORE DELETE ON agents_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION agents_ledger_append_only()""",
    # TRUNCATE, like DROP TABLE, is left to the table's owner (as on SQLite): Django's flush, which
    # tests and `manage.py flush` run, empties tables with it.
]
PG_DROP = [
    "DROP TRIGGER IF EXISTS agents_ledger_no_delete ON agents_ledgerentry",
    "DROP TRIGGER IF EXISTS agents_ledger_no_update ON agents_ledgerentry",
    "DROP FUNCTION IF EXISTS agents_ledger_append_only()",
]
DROP = ["DROP TRIGGER IF EXISTS agents_ledger_no_update", "DROP TRIGGER IF EXISTS agents_ledger_no_delete"]


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial")]

    operations = [
        on_sqlite(migrations.RunSQL(sql=TRIGGERS, reverse_sql=DROP)),
        on_postgresql(migrations.RunSQL(sql=PG_TRIGGERS, reverse_sql=PG_DROP)),
    ]
