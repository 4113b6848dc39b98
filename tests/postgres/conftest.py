"""PostgreSQL databases for the tests of `copy_to_postgres`, on the server of the suite's
MEMORYHUB_DATABASE_URL when it runs on PostgreSQL, else of MEMORYHUB_TEST_POSTGRES_URL (default
postgres://postgres@127.0.0.1:5432/): required, without it these tests fail (they never skip),
as the Redis tests do."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from memoryhub.postgres_copy import migrate_target
from tests.postgres import databases

SERVER = databases.BASE_URL or os.environ.get(
    "MEMORYHUB_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/memoryhub_copy"
)


def require_server() -> None:
    import psycopg

    try:
        databases.admin_connection(SERVER).close()
    except psycopg.OperationalError as problem:
        pytest.fail(
            f"PostgreSQL at {SERVER} does not answer ({problem}); set MEMORYHUB_TEST_POSTGRES_URL", pytrace=False
        )


@pytest.fixture(scope="module")
def migrated() -> Iterator[str]:
    """A PostgreSQL database `migrate` made (what an operator's new, migrated, empty target is):
    the name of the template each test's target is copied from, so the copy's own `migrate`
    has nothing left to do (a full migrate on PostgreSQL takes half a minute)."""
    require_server()
    name = databases.new_name("copytemplate", SERVER)
    migrate_target(databases.create(name, base=SERVER))
    yield name
    databases.drop(name, SERVER)


@pytest.fixture
def target(migrated: str) -> Iterator[str]:
    """A migrated, empty PostgreSQL database of this test's own: its URL."""
    name = databases.new_name("copy", SERVER)
    url = databases.create(name, template=migrated, base=SERVER)
    yield url
    databases.drop(name, SERVER)


@pytest.fixture
def fresh_target() -> Iterator[str]:
    """A PostgreSQL database with no tables at all: its URL."""
    require_server()
    name = databases.new_name("copyfresh", SERVER)
    url = databases.create(name, base=SERVER)
    yield url
    databases.drop(name, SERVER)
