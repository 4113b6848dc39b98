"""Print daphne's HTTPS endpoint string (used by `make run-tls`).

    daphne -e "$(manage.py tls_endpoint --port 8443)" memoryhub.asgi:application

Uses MEMORYHUB_TLS_CERT / MEMORYHUB_TLS_KEY when both are set; otherwise makes a self-signed
certificate for local use once, under the data directory, and says so on stderr.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from kernel import tls


class Command(BaseCommand):
    help = "Print daphne's -e endpoint for HTTPS (certificate from settings, or a local self-signed one)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8443)

    def handle(self, *args: Any, **options: Any) -> None:
        spec, cert, generated = tls.endpoint(host=options["host"], port=options["port"])
        if generated:
            self.stderr.write(
                f"Serving a self-signed certificate ({cert}); clients must trust it, e.g. "
                f"curl --cacert {cert}. Set MEMORYHUB_TLS_CERT and MEMORYHUB_TLS_KEY for a real one."
            )
        self.stdout.write(spec)
