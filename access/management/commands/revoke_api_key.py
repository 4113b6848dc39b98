"""Revoke an API key by its public prefix (the 8 hex digits after `mh_`, or the whole key)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from access import secrets, services
from access.models import ApiKey


class Command(BaseCommand):
    help = "Revoke the API key with this prefix; it stops working at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="the key's prefix as shown in lists (e.g. 1a2b3c4d), or mh_1a2b3c4d")

    def handle(self, *args: Any, prefix: str, **options: Any) -> None:
        value = prefix.strip()
        # Accept `mh_<prefix>`, or a whole key pasted by mistake, without echoing the secret back.
        value = secrets.prefix_of(value) or value.removeprefix(secrets.KEY_PREFIX).split("_")[0]
        key = ApiKey.objects.filter(prefix=value).select_related("owner").first()
        if key is None:
            raise CommandError(f"no API key with prefix {value!r}")
        if services.api_key_revoke(key=key, source="command"):
            self.stdout.write(f"Revoked {key.name!r} ({key.prefix}) of {key.owner.get_username()}.")
        else:
            self.stdout.write(f"{key.name!r} ({key.prefix}) was already revoked.")
