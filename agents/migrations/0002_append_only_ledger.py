"""The ledger is append-only in the database itself: an UPDATE or DELETE of a row raises, whoever
runs it (the ORM, the admin, a shell, raw SQL)."""

from django.db import migrations

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
DROP = ["DROP TRIGGER IF EXISTS agents_ledger_no_update", "DROP TRIGGER IF EXISTS agents_ledger_no_delete"]


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial")]

    operations = [migrations.RunSQL(sql=TRIGGERS, reverse_sql=DROP)]
