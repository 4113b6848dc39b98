"""`manage.py grant_credits --user alice --credits 100 [--refund] [--note "..."]`: add credits to a
user's wallet (the admin's "Grant credits" form does the same). Prints the new balance."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents import services
from agents.models import LedgerEntry
from kernel.errors import DomainError


class Command(BaseCommand):
    help = "Grant (or refund) credits to a user's marketplace wallet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="username")
        parser.add_argument("--credits", required=True, help="how many credits (up to 4 decimal places)")
        parser.add_argument("--refund", action="store_true", help="record it as a refund rather than a grant")
        parser.add_argument("--note", default="", help="shown in the user's ledger")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"no user named {options['user']!r}")
        kind = LedgerEntry.Kind.REFUND if options["refund"] else LedgerEntry.Kind.GRANT
        try:
            entry = services.grant_credits(
                user_id=user.pk, credits=options["credits"], kind=kind, note=options["note"], actor="command"
            )
        except DomainError as failure:
            raise CommandError(failure.message) from None
        self.stdout.write(str(entry.credits_after))
