"""Create the first administrator on a fresh install and print its credentials once."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a first superuser if none exists and print its password once (used by `make run`)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            self.stdout.write("An administrator already exists; nothing to create.")
            return
        password = secrets.token_urlsafe(18)
        user_model.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS("Created the first administrator. This password is shown only once:\n")
            + f"  username: {username}\n  password: {password}\n"
            + "  admin:    http://127.0.0.1:8000/admin/"
        )
