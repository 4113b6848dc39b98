"""First start of a fresh install: create an administrator and an API key, print both once."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from memoryhub.access import services
from memoryhub.access.models import ApiKey


class Command(BaseCommand):
    help = (
        "Create a first superuser and a first API key (write on every namespace) if none exist, "
        "and print them once (used by `make run`)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, username: str, base_url: str, **options: Any) -> None:
        user_model = get_user_model()
        admin = user_model.objects.filter(is_superuser=True).order_by("pk").first()
        if admin is None:
            password = secrets.token_urlsafe(18)
            admin = user_model.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(
                self.style.SUCCESS("Created the first administrator. This password is shown only once:\n")
                + f"  username: {username}\n  password: {password}\n"
                + f"  sign in:  {base_url}/admin/  (operators)   {base_url}/keys/  (your API keys)"
            )
        else:
            self.stdout.write("An administrator already exists; no new one was created.")
        if ApiKey.objects.exists():
            self.stdout.write("API keys already exist; no new one was created.")
            return
        created = services.api_key_create(
            owner=admin,
            name="first key (created by make run)",
            grants=[("*", "write")],
            default_namespace="default",
            actor=None,
            source="command",
        )
        self.stdout.write(
            self.style.SUCCESS("Created a first API key with write access to every namespace. Shown only once:\n")
            + f"  {created.secret}\n"
            + f'  try:     curl -H "X-API-Key: {created.secret}" {base_url}/v1/memory/banks/list\n'
            + f"  MCP:      {base_url}/mcp  (send the key as X-API-Key; stdio: see README, Claude Desktop)\n"
            + f"  MemOS:    {base_url}/product/  (docs: {base_url}/product/docs)\n"
            + f"  Agents:   {base_url}/api/mcp/messages  (the marketplace endpoint; credits: /admin/, /wallet/)\n"
            + f"  API docs: {base_url}/docs"
        )
