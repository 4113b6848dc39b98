"""Create an API key from the command line; prints only the key, so scripts can capture it:

KEY=$(manage.py create_api_key --user ci --grant 'org:ci:*=write' --default-namespace org:ci:main)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from access import services
from kernel.errors import DomainError


class Command(BaseCommand):
    help = "Create an API key for USER (created if missing) and print the key, once, on stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="owner's username; created (without a password) if new")
        parser.add_argument("--name", default="command-line key", help="a label for the key")
        parser.add_argument(
            "--grant",
            action="append",
            default=[],
            metavar="PATTERN=read|write",
            help="a namespace grant, e.g. 'org:team:*=write'; repeat for more",
        )
        parser.add_argument("--default-namespace", default=None, help="used when a request names no namespace")
        parser.add_argument("--expires-in-days", type=int, default=None, help="the key stops working after this")

    def handle(self, *args: Any, **options: Any) -> None:
        grants = []
        for spec in options["grant"]:
            pattern, sep, permission = spec.rpartition("=")
            if not sep or not pattern:
                raise CommandError(f"--grant {spec!r}: expected PATTERN=read or PATTERN=write")
            grants.append((pattern, permission))
        if not grants:
            raise CommandError("give at least one --grant PATTERN=read|write")
        days = options["expires_in_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-in-days must be at least 1")
        expires_at = timezone.now() + dt.timedelta(days=days) if days else None
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(**{user_model.USERNAME_FIELD: options["user"]})
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        try:
            key = services.api_key_create(
                owner=user,
                name=options["name"],
                grants=grants,
                expires_at=expires_at,
                default_namespace=options["default_namespace"],
                source="command",
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(key.secret)
