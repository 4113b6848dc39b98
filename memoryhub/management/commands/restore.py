"""`manage.py restore PATH`: replace the database with a backup made by `manage.py backup` (a
SQLite file, or on PostgreSQL a pg_dump archive, restored by pg_restore in one transaction).

Stop the server first (the command refuses while it can see the database in use; see
kernel/backups.py for how, and for what it cannot see), restore, start the server again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from kernel import backups


class Command(BaseCommand):
    help = (
        "Replace the configured database with the backup at PATH, after checking that PATH is a sound "
        "MemoryHub database. Refuses while the database is open in another process (a running server) "
        "unless --force."
    )
    # Django's checks may open the database; this command must be the only one holding it.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="a backup file made by `manage.py backup`")
        parser.add_argument(
            "--force",
            action="store_true",
            help="restore even into a database in use (its users see the old or the new one, never a mix; "
            "restart them afterwards), or (SQLite) move an unreadable database file aside and restore into a new one",
        )

    def handle(self, *args: Any, path: Path, force: bool, **options: Any) -> None:
        database = settings.DATABASES["default"]
        # A connection of our own would make the database look in use.
        connections.close_all()
        try:
            if database["ENGINE"] == "django.db.backends.postgresql":
                target = backups.PostgresTarget.from_settings(database)
                result = backups.restore_postgres(backup=path, target=target, force=force)
            else:
                result = backups.restore(backup=path, target=Path(str(database["NAME"])), force=force)
        except backups.BackupError as error:
            raise CommandError(str(error)) from None
        lines = [self.style.SUCCESS(f"Restored {result.target} from {path}")]
        if result.moved_aside is not None:
            lines.append(f"  the unreadable database was moved to {result.moved_aside}")
        lines += [
            f"  size:      {result.summary.bytes / 1e6:.1f} MB ({result.summary.bytes} bytes)",
            f"  time:      {result.seconds:.2f} s",
            "  integrity: ok (the archive read back whole, restored in one transaction)"
            if isinstance(result.target, backups.PostgresTarget)
            else "  integrity: ok (backup and restored database)",
            f"  contents:  {result.summary.describe()}",
        ]
        if result.live:
            lines.append(
                self.style.WARNING(
                    "  The database was in use: restart every server process now; their in-memory vector "
                    "indexes and sessions describe the database as it was before the restore."
                )
            )
        else:
            lines.append("  Start the server now (restart any that was running: it still holds the old state).")
        self.stdout.write("\n".join(lines))
