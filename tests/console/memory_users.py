"""Users of the console's memory pages' tests (test_search, test_memories): alice writes
org:alice:*, bob org:bob:*, carol reads org:alice:*, each with an API key of the same reach (so
writes carry a key prefix)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.test import Client

from access import operations, services
from access.models import ApiKey, NamespaceAllowance
from access.permissions import Access
from memory.services import NewMemory

ALICE_NS = "org:alice:notes"
BOB_NS = "org:bob:notes"


@dataclass
class User:
    user: AbstractBaseUser
    key: ApiKey
    client: Client

    @property
    def access(self) -> Access:
        return self.key.to_access()

    def write(self, text: str, namespace: str, **fields: Any) -> str:
        """A free memory written with this user's key; its id."""
        written = operations.perform(
            self.access, "memory_write", namespace=namespace, memories=[NewMemory(text, **fields)]
        )
        return str(written[0]["id"])


def make_user(name: str, pattern: str, permission: str) -> User:
    user = get_user_model().objects.create_user(username=name, password="a console test password")
    NamespaceAllowance.objects.create(user=user, pattern=pattern, permission=permission)
    key = services.api_key_create(
        owner=user, name=f"{name}'s key", grants=[(pattern, permission)], default_namespace="", source="command"
    ).key
    client = Client()
    client.force_login(user)
    return User(user, key, client)
