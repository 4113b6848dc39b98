"""`manage.py copy_to_postgres --to postgres://...`: move the SQLite database into PostgreSQL.

    manage.py copy_to_postgres --to postgres://memoryhub@db.internal:5432/memoryhub

Stop the servers first (writes after the copy's snapshot would not be copied). The target is
migrated, filled in one transaction, and checked table by table; see memoryhub/postgres_copy.py
and docs/operations/moving-to-postgresql.md.
"""

from __future__ import annotations

from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from memoryhub import postgres_copy


class Command(BaseCommand):
    help = (
        "Copy every row of every table of the SQLite database into the PostgreSQL database at --to: "
        "migrate it, copy in one transaction, reset its sequences, and compare the row counts of every table."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, metavar="URL", help="the target, postgres://user:pw@host:port/name")
        parser.add_argument(
            "--force",
            action="store_true",
            help="copy even if the target already holds data: every table of the target is emptied first",
        )
        parser.add_argument(
            "--batch",
            type=int,
            default=postgres_copy.DEFAULT_BATCH,
            help=f"rows read from SQLite at a time (default {postgres_copy.DEFAULT_BATCH})",
        )
        parser.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")

    def handle(self, *args: Any, to: str, force: bool, batch: int, no_progress: bool, **options: Any) -> None:
        if not to.startswith(("postgres://", "postgresql://")):
            raise CommandError("--to must be a postgres:// URL")
        bars: list[tqdm] = []

        def progress(total: int) -> Any:
            bar = tqdm(total=total, unit="row", disable=no_progress, file=cast(TextIO, self.stderr._out))
            bars.append(bar)

            def advance(table: str, rows: int) -> None:
                bar.set_description(table, refresh=False)
                bar.update(rows)

            return advance

        try:
            result = postgres_copy.copy_to_postgres(
                to,
                force=force,
                batch=max(batch, 1),
                progress=progress,
                describe=lambda text: self.stderr.write(text),
            )
        except postgres_copy.CountMismatch as mismatch:
            for bar in bars:
                bar.close()
            self._print_counts(mismatch.counts)
            raise CommandError(str(mismatch)) from None
        except postgres_copy.CopyError as error:
            for bar in bars:
                bar.close()
            raise CommandError(str(error)) from None
        for bar in bars:
            bar.close()
        self._print_counts(result.counts)
        self.stdout.write(
            self.style.SUCCESS(
                f"Copied {result.rows} rows in {len(result.counts)} tables in {result.seconds:.1f} s; every count matches."
            )
        )

    def _print_counts(self, counts: list[postgres_copy.TableCount]) -> None:
        width = max((len(count.table) for count in counts), default=5)
        self.stdout.write(f"{'table'.ljust(width)}  {'SQLite':>10}  {'PostgreSQL':>10}")
        for count in counts:
            mark = "" if count.matches else "  MISMATCH"
            self.stdout.write(f"{count.table.ljust(width)}  {count.source:>10}  {count.target:>10}{mark}")
