"""Shared fixtures. Tests run against a real SQLite file (see settings DATABASES TEST NAME).

Personas (after healthchecks' alice/bob/charlie): each is a real user with a real API key made
by the access services, so tests exercise the same path as production callers.

- alice: write on `org:alice:*`, default namespace `org:alice:notes`
- bob: write on `org:bob:*`, default namespace `org:bob:notes`
- carol: read only on `org:alice:*` (a colleague who may look but not touch)
- root: a superuser whose key has write on `*` (an operator)
"""

from __future__ import annotations

import os
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

# --- Parallel runs: `make test` runs two pytest-xdist workers (see the Makefile) ----------------
# Each worker has its own test database (pytest-django adds _gw<N> to its name), its own server
# processes, ports, temporary directories and persona keys, and each test file runs whole on one
# worker (--dist loadfile), so module-scoped servers are started once. What the workers would share
# is Redis: the tests that use it run server processes whose channel layer and cache are keyed by
# key and row ids, which repeat between the workers' databases. So each worker gets Redis
# databases of its own (Redis has 16): gw0 the suite's defaults, the others these, unless the
# variable is set.
REDIS_TEST_DATABASES = {
    # variable (worker gw0's database): gw1's, gw2's
    "MEMORYHUB_MAINTENANCE_TEST_REDIS_URL": (8, 1),  # tests/maintenance (5)
    "MEMORYHUB_CLUSTER_REDIS_URL": (9, 2),  # tests/cluster (6)
    "MEMORYHUB_OBSERVABILITY_TEST_REDIS_URL": (10, 3),  # tests/observability/test_live.py (7)
    "MEMORYHUB_TEST_REDIS_URL": (11, 4),  # tests/access/test_ratelimit.py (15), tests/mcp_endpoint/test_stdio.py (14)
}
WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def _redis_databases_per_worker() -> None:
    index = int(WORKER.removeprefix("gw")) if WORKER else 0
    if index == 0:
        return
    if index > len(next(iter(REDIS_TEST_DATABASES.values()))):
        raise pytest.UsageError("at most 3 xdist workers (-n 3): each needs Redis databases of its own")
    for variable, databases in REDIS_TEST_DATABASES.items():
        os.environ.setdefault(variable, f"redis://127.0.0.1:6379/{databases[index - 1]}")


_redis_databases_per_worker()

# The files that take longest (up to a minute and a half each, mostly starting server processes; the
# durations `pytest --durations=0` reports).
# Under xdist they are handed out first (--no-loadscope-reorder keeps this order), so the workers
# finish together instead of one starting a long file while the other has nothing left.
LONGEST_FIRST = (
    "tests/durability/test_crash.py",
    "tests/mcp_endpoint/test_marketplace.py",
    "tests/mcp_endpoint/test_stdio.py",
    "tests/multinode/test_across_hosts.py",
    "tests/postgres/test_copy.py",
    "tests/durability/test_backup.py",
    "tests/cluster/test_run_cluster.py",
    "tests/vectors/test_pipeline_servers.py",
    "tests/api/test_hostile_fuzz.py",
    "tests/durability/test_backup_postgres.py",
    "tests/multinode/test_nodes.py",
    "tests/browser/test_console_graph.py",
    "tests/cluster/test_across_processes.py",
    "tests/browser/test_console_memories.py",
    "tests/mcp_endpoint/test_official_compat.py",
    "tests/browser/test_console_dashboard.py",
    "tests/mcp_endpoint/test_tcp.py",
    "tests/agents/test_concurrency.py",
)


# Which backend this run tests: `make test` runs the suite once on each.
POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test of the other backend's own machinery (the markers, pyproject.toml)."""
    other = "sqlite_only" if POSTGRES else "postgres_only"
    marker = item.get_closest_marker(other)
    if marker is not None:
        reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
        pytest.skip(f"{other}: {reason}")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if WORKER is None:
        return  # a serial run keeps the collection order
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    # A stable sort: each file's tests keep their order.
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The calls the tests counted per key are not written at exit (access/authentication.py
    flushes them then): the test databases are gone by now, and on PostgreSQL the connection
    pool would wait its full timeout for a database that no longer exists."""
    from access import authentication

    authentication.forget_usage()


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
    drop, triggers = (
        (append_only.PG_DROP, append_only.PG_TRIGGERS) if POSTGRES else (append_only.DROP, append_only.TRIGGERS)
    )
    yield
    with connection.cursor() as cursor:
        for statement in drop:
            cursor.execute(statement)
        cursor.execute("DELETE FROM agents_ledgerentry")
        for statement in triggers:
            cursor.execute(statement)
