"""Triggers that keep the embedding backlog (vectors_pending) in step with the observations.

- A deleted observation leaves the backlog with it: the backlog's size and age (/healthz, /metrics)
  then count only texts that still need a vector, and a bulk delete leaves no rows for the drainers.
- An observation whose text is rewritten (by a service, the admin or `sqlite3` by hand) loses its
  vector (migration 0002) and is queued again here, in the same transaction, whoever rewrote it: a
  rewrite never leaves text without a vector. A row already queued starts over (attempts, backoff
  and claim reset), as `vectors.backlog.enqueue` does.
"""

from django.db import migrations

FORWARD = [
    """CREATE TRIGGER vectors_pending_observation_ad AFTER DELETE ON graph_observation BEGIN
    DELETE FROM vectors_pending WHERE owner_id = old.id;
END""",
    """CREATE TRIGGER vectors_pending_observation_au_body AFTER UPDATE OF body ON graph_observation
WHEN old.body IS NOT new.body BEGIN
    INSERT INTO vectors_pending(owner_id, namespace_id, enqueued_at, attempts, next_attempt_at, claimed_until,
        last_error)
    VALUES (new.id, new.namespace_id, strftime('%Y-%m-%d %H:%M:%f', 'now'), 0, NULL, NULL, '')
    ON CONFLICT(owner_id) DO UPDATE SET namespace_id = excluded.namespace_id, enqueued_at = excluded.enqueued_at,
        attempts = 0, next_attempt_at = NULL, claimed_until = NULL, last_error = '';
END""",
]

BACKWARD = [
    "DROP TRIGGER vectors_pending_observation_au_body",
    "DROP TRIGGER vectors_pending_observation_ad",
]


class Migration(migrations.Migration):
    dependencies = [("vectors", "0004_pending_embeddings"), ("graph", "0005_history_and_mentions")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
