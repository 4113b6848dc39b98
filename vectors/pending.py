"""Queueing texts for the embedding backlog (the `vectors_pending` table; vectors/backlog.py drains
it). Its own module, below the embedding-on-write receiver and the drainer, so both can use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from django.db import transaction

from graph.sql import as_json, db, now
from kernel.sql import POSTGRES, json_values

_IDS = json_values()

# Called after a transaction that queued texts commits (registered by VectorsConfig.ready: wake
# this process's drainer, queue a Celery drain task when a broker is configured).
_after_queued: list[Callable[[], object]] = []


def after_queued(hook: Callable[[], object]) -> None:
    """Have `hook` run after every commit that queued texts (once per function)."""
    if hook not in _after_queued:
        _after_queued.append(hook)


def run_after_commit() -> None:
    for hook in _after_queued:
        hook()


# `WHERE true`: SQLite needs it to tell the upsert's ON CONFLICT from a join constraint. PostgreSQL
# types the select list from its parameters, so they are cast to the columns' types.
_ENQUEUE = (
    "INSERT INTO vectors_pending(owner_id, namespace_id, enqueued_at, attempts, next_attempt_at, "
    + (
        "claimed_until, last_error) SELECT CAST(value AS bigint), CAST(?1 AS bigint), CAST(?2 AS timestamptz), 0, "
        "NULL, NULL, '' FROM jsonb_array_elements_text(CAST(?3 AS jsonb)) AS value WHERE true "
        if POSTGRES
        else "claimed_until, last_error) SELECT value, ?1, ?2, 0, NULL, NULL, '' FROM json_each(?3) WHERE true "
    )
    + "ON CONFLICT(owner_id) DO UPDATE SET namespace_id = excluded.namespace_id, "
    "enqueued_at = excluded.enqueued_at, attempts = 0, next_attempt_at = NULL, claimed_until = NULL, "
    "last_error = ''"
)


def enqueue(namespace_id: int, owner_ids: Sequence[int]) -> None:
    """Queue these observations of one namespace for embedding, in the caller's transaction, with
    one statement. An observation already queued (its text was rewritten) starts over: attempts,
    backoff and claim are reset, so the new text is embedded promptly and not skipped as claimed."""
    if not owner_ids:
        return
    db().execute(_ENQUEUE, (namespace_id, now(), as_json(owner_ids)))
    transaction.on_commit(run_after_commit)


def forget(owner_ids: Iterable[int]) -> None:
    """Drop the pending rows of these observations (their vectors were just stored another way)."""
    db().execute(f"DELETE FROM vectors_pending WHERE owner_id IN {_IDS}", (as_json(owner_ids),))
