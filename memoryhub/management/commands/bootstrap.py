"""Start of an install (`make run`): on the first, create an administrator and an API key and print
both once; on every start, print where everything is and how to get back in."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from access import services
from access.models import ApiKey

# The namespace every README example names: requests from the first key that name none (MCP
# tools, `/v1/memory/clear`, the graph API) then land where the examples write and read.
FIRST_KEY_NAMESPACE = "org:team:project"


class Command(BaseCommand):
    help = (
        "Create a first superuser and a first API key (write on every namespace) if none exist, "
        "print them once, and print the server's URLs (used by `make run`)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--default-namespace",
            default=FIRST_KEY_NAMESPACE,
            help=f"the first key's default namespace (default {FIRST_KEY_NAMESPACE}, as in the README)",
        )

    def handle(self, *args: Any, username: str, base_url: str, default_namespace: str, **options: Any) -> None:
        user_model = get_user_model()
        admin = user_model.objects.filter(is_superuser=True).order_by("pk").first()
        if admin is not None:
            self.stdout.write("An administrator already exists; no new one was created.")
        else:
            password = secrets.token_urlsafe(18)
            admin = user_model.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(
                self.style.SUCCESS("Created the first administrator. This password is shown only once:\n")
                + f"  username: {username}\n  password: {password}"
            )
        if not ApiKey.objects.exists():
            created = services.api_key_create(
                owner=admin,
                name="first key (created by make run)",
                grants=[("*", "write")],
                default_namespace=default_namespace,
                actor=None,
                source="command",
            )
            self.stdout.write(
                self.style.SUCCESS("Created a first API key with write access to every namespace. Shown only once:\n")
                + f"  {created.secret}\n"
                + f"  default namespace: {default_namespace} (used when a request names none)\n"
                + f'  try:     curl -H "X-API-Key: {created.secret}" {base_url}/v1/memory/banks/list'
            )
        else:
            self.stdout.write("API keys already exist; no new one was created.")
        self.stdout.write(
            "\nMemoryHub:\n"
            f"  Console:  {base_url}/console/  (sign in: see, search and correct what agents remember)\n"
            f"  Admin:    {base_url}/admin/  (operators)\n"
            f"  Keys:     {base_url}/keys/  (sign in, create and revoke your API keys)\n"
            f"  MCP:      {base_url}/mcp  (send the key as X-API-Key; stdio: see README, Claude Desktop)\n"
            f"  REST:     {base_url}/v1/memory/  and  {base_url}/v1/graph/  (docs: {base_url}/docs)\n"
            f"  MemOS:    {base_url}/product/  (docs: {base_url}/product/docs)\n"
            f"  Agents:   {base_url}/api/mcp/messages  (the marketplace endpoint; credits: /admin/, /wallet/)\n"
            f"Forgot the password?  .venv/bin/python manage.py changepassword {admin.get_username()}\n"
            "Lost the API key?     .venv/bin/python manage.py create_api_key --user "
            f"{admin.get_username()} --grant '*=write' --default-namespace {FIRST_KEY_NAMESPACE}\n"
            "                      (keys are stored hashed and never shown again; revoke a lost one in /keys/)"
        )
