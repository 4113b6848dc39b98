"""Delete memories and observations whose TTL has passed (a maintenance job)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from graph import services


class Command(BaseCommand):
    help = (
        "Delete observations and memories whose expiry time has passed, with their vectors. Searches "
        "already hide them; this reclaims the space."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(f"Purged {services.purge_expired()} expired observations.")
