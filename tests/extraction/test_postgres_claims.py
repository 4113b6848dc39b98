"""Two extraction drainers claiming side by side on PostgreSQL, each on a connection of its own
(memory/extraction.py `_claim`): a job held by one claim is skipped by the other, which neither
waits for it nor takes it again, and a namespace's jobs still go oldest first. On SQLite claims
take turns (BEGIN IMMEDIATE), so this cannot happen there."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction

from memory import extraction

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.postgres_only(reason="concurrent claimers: SQLite has one writer at a time"),
]

NAMESPACES = (987_001, 987_002)


@pytest.fixture
def jobs() -> Iterator[list[int]]:
    """Committed jobs (outside the test's transaction): two of the first namespace, one of the
    second, oldest first; deleted after."""
    connection.ensure_connection()
    setup: psycopg.Connection[Any] = psycopg.connect(**connection.get_connection_params())
    setup.autocommit = True
    ids = [
        setup.execute(  # type: ignore[index]
            "INSERT INTO memory_pendingextraction(source_id, namespace_id, key_prefix, enqueued_at, attempts, "
            "last_error, facts) VALUES (%s, %s, '', now(), 0, '', '') RETURNING id",
            (source, namespace),
        ).fetchone()[0]
        for source, namespace in ((1, NAMESPACES[0]), (2, NAMESPACES[0]), (3, NAMESPACES[1]))
    ]
    try:
        yield ids
    finally:
        setup.execute("DELETE FROM memory_pendingextraction WHERE namespace_id = ANY(%s)", (list(NAMESPACES),))
        setup.close()


def test_two_drainers_never_claim_the_same_job(jobs):
    first_claimed, second_done = threading.Event(), threading.Event()

    def first() -> int | None:
        try:
            with transaction.atomic():  # the claim stays uncommitted (its row locked) until the other claimed
                job = extraction._claim()
                first_claimed.set()
                assert second_done.wait(20)
            return job.id if job else None
        finally:
            connection.close()

    def second() -> int | None:
        try:
            assert first_claimed.wait(20)
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '2s'")  # waiting for the first claim fails the test
            job = extraction._claim()
            second_done.set()
            return job.id if job else None
        finally:
            second_done.set()
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        mine, theirs = pool.submit(first), pool.submit(second)
        claimed = (mine.result(), theirs.result())
    # The oldest job is the first's; the second skips it and the first namespace's next job (an
    # older one of its namespace is still open), and takes the other namespace's.
    assert claimed == (jobs[0], jobs[2])
