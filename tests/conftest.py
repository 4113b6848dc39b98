"""Shared fixtures. Tests run against a real SQLite file (see settings DATABASES TEST NAME).

Personas (after healthchecks' alice/bob/charlie): each is a real user with a real API key made
by the access services, so tests exercise the same path as production callers.

- alice: write on `org:alice:*`, default namespace `org:alice:notes`
- bob: write on `org:bob:*`, default namespace `org:bob:notes`
- carol: read only on `org:alice:*` (a colleague who may look but not touch)
- root: a superuser whose key has write on `*` (an operator)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.cache import caches

from access import services
from access.models import ApiKey
from vectors.indexes import registry

# Personas are made for most tests; PBKDF2's deliberate slowness would dominate the suite.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Two tenants that must never see each other's data.
ALICE = "org:alice:notes"
BOB = "org:bob:notes"
PASSWORD = "correct horse battery staple"


@dataclass
class Persona:
    user: AbstractUser
    key: ApiKey
    secret: str
    namespace: str

    @property
    def headers(self) -> dict[str, str]:
        """Headers for django.test.Client (HTTP_ form)."""
        return {"HTTP_X_API_KEY": self.secret}


def make_persona(username: str, grants: list[tuple[str, str]], namespace: str, *, superuser: bool = False) -> Persona:
    user_model = get_user_model()
    if superuser:
        user = user_model.objects.create_superuser(username=username, email="", password=PASSWORD)
    else:
        user = user_model.objects.create_user(username=username, email="", password=PASSWORD)
    created = services.api_key_create(
        owner=user, name=f"{username}'s key", grants=grants, default_namespace=namespace, source="command"
    )
    return Persona(user=user, key=created.key, secret=created.secret, namespace=namespace)


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Rate-limit buckets and last-use markers are keyed by key id, and ids repeat between tests.
    caches["default"].clear()
    yield
    caches["default"].clear()


@pytest.fixture(autouse=True)
def _fresh_vector_indexes():
    # Each test's writes are rolled back, and ids and change-log positions are then reused: an
    # index a previous test loaded would describe rows that no longer exist.
    registry().clear()
    yield
    registry().clear()


@pytest.fixture
def alice(db) -> str:
    return ALICE


@pytest.fixture
def bob(db) -> str:
    return BOB


@pytest.fixture
def alice_key(db) -> Persona:
    return make_persona("alice", [("org:alice:*", "write")], ALICE)


@pytest.fixture
def bob_key(db) -> Persona:
    return make_persona("bob", [("org:bob:*", "write")], BOB)


@pytest.fixture
def carol_key(db) -> Persona:
    return make_persona("carol", [("org:alice:*", "read")], ALICE)


@pytest.fixture
def root_key(db) -> Persona:
    return make_persona("root", [("*", "write")], "default", superuser=True)


@pytest.fixture
def anyio_backend() -> str:
    # Async tests run on asyncio (what daphne and Channels use), via anyio's pytest plugin.
    return "asyncio"


@pytest.fixture
def fake_llm():
    """A real local OpenAI-compatible chat server (tests/fake_llm.py), fresh for each test."""
    from tests.fake_llm import FakeLLM

    server = FakeLLM()
    yield server
    server.close()


@pytest.fixture
def llm(fake_llm):
    """The server's LLM provider pointed at `fake_llm` (OpenAI-compatible), without retries."""
    from django.test import override_settings

    with override_settings(
        MEMORYHUB_LLM_PROVIDER="openai",
        MEMORYHUB_LLM_URL=fake_llm.url,
        MEMORYHUB_LLM_MODEL="fake-model",
        MEMORYHUB_LLM_TIMEOUT_SECONDS=5,
        MEMORYHUB_LLM_RETRIES=0,
    ):
        yield fake_llm


@pytest.fixture
def ledger_wiped_after(transactional_db) -> Iterator[None]:
    """For tests on a real transaction (live_server, transactional_db) that write ledger rows:
    those end with a flush of every table, which the ledger's append-only triggers refuse.
    Set up after the database fixture (so torn down before its flush): lift the triggers, empty
    the ledger, put the triggers back for the tests that follow."""
    import importlib

    from django.db import connection

    append_only = importlib.import_module("agents.migrations.0002_append_only_ledger")
    yield
    with connection.cursor() as cursor:
        for statement in append_only.DROP:
            cursor.execute(statement)
        cursor.execute("DELETE FROM agents_ledgerentry")
        for statement in append_only.TRIGGERS:
            cursor.execute(statement)
