"""`manage.py backup PATH`: an online, consistent copy of the database (see kernel/backups.py).

    manage.py backup /backups/memoryhub-$(date +%F).sqlite3
    manage.py backup /backups/memoryhub-$(date +%F).dump      # PostgreSQL: a pg_dump archive

Safe while servers run and write: the copy is one snapshot, taken through SQLite's backup API, or
on PostgreSQL by pg_dump (custom format).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from kernel import backups


class Command(BaseCommand):
    help = (
        "Copy the database to PATH while the server keeps running (a consistent snapshot through "
        "SQLite's backup API, or a pg_dump custom-format archive on PostgreSQL), check the copy (PRAGMA "
        "integrity_check; pg_restore reads the archive back whole), and print its size and time."
    )
    # Nothing here needs Django's checks or its database connection.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "path", type=Path, help="the backup file to write (a single SQLite file, or a pg_dump archive)"
        )
        parser.add_argument("--force", action="store_true", help="replace PATH if it exists")

    def handle(self, *args: Any, path: Path, force: bool, **options: Any) -> None:
        database = settings.DATABASES["default"]
        postgres = database["ENGINE"] == "django.db.backends.postgresql"
        try:
            if postgres:
                source = backups.PostgresTarget.from_settings(database)
                result = backups.backup_postgres(source=source, target=path, force=force)
            else:
                result = backups.backup(source=Path(str(database["NAME"])), target=path, force=force)
        except backups.BackupError as error:
            raise CommandError(str(error)) from None
        summary = result.summary
        self.stdout.write(
            self.style.SUCCESS(f"Backed up {result.source} to {path}")
            + f"\n  size:      {summary.bytes / 1e6:.1f} MB ({summary.bytes} bytes)"
            + f"\n  time:      {result.seconds:.2f} s"
            + ("\n  integrity: ok (pg_restore read the whole archive back)" if postgres else "\n  integrity: ok")
            + f"\n  contents:  {summary.describe()}"
        )
