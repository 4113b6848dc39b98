"""Triggers that keep the embedding backlog (vectors_pending) in step with the observations.

- A deleted observation leaves the backlog with it: the backlog's size and age (/healthz, /metrics)
  then count only texts that still need a vector, and a bulk delete leaves no rows for the drainers.
- An observation whose text is rewritten (by a service, the admin or `sqlite3` by hand) loses its
  vector (migration 0002) and is queued again here, in the same transaction, whoever rewrote it: a
  rewrite never leaves text without a vector. A row already queued starts over (attempts, backoff
  and claim reset), as `vectors.backlog.enqueue` does.
"""

from django.db import migrations

from kernel.migration_tools import on_postgresql, on_sqlite

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

PG_FORWARD = [
    """CREATE FUNCTION vectors_pending_follow_observation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM vectors_pending WHERE owner_id = OLD.id;
        RETURN NULL;
    END IF;
    INSERT INTO vectors_pending(owner_id, namespace_id, enqueued_at, attempts, next_attempt_at, claimed_until,
        last_error)
    VALUES (NEW.id, NEW.namespace_id, clock_timestamp(), 0, NULL, NULL, '')
    ON CONFLICT (owner_id) DO UPDATE SET namespace_id = excluded.namespace_id, enqueued_at = excluded.enqueued_at,
        attempts = 0, next_attempt_at = NULL, claimed_until = NULL, last_error = '';
    RETURN NULL;
END $$""",
    """CREATE TRIGGER vectors_pending_observation_ad AFTER DELETE ON graph_observation
    FOR EACH ROW EXECUTE FUNCTION vectors_pending_follow_observation()""",
    """CREATE TRIGGER vectors_pending_observation_au_body AFTER UPDATE OF body ON graph_observation
    FOR EACH ROW WHEN (OLD.body IS DISTINCT FROM NEW.body) EXECUTE FUNCTION vectors_pending_follow_observation()""",
]
PG_BACKWARD = [
    "DROP TRIGGER vectors_pending_observation_au_body ON graph_observation",
    "DROP TRIGGER vectors_pending_observation_ad ON graph_observation",
    "DROP FUNCTION vectors_pending_follow_observation()",
]

BACKWARD = [
    "DROP TRIGGER vectors_pending_observation_au_body",
    "DROP TRIGGER vectors_pending_observation_ad",
]


class Migration(migrations.Migration):
    dependencies = [("vectors", "0004_pending_embeddings"), ("graph", "0005_history_and_mentions")]

    operations = [
        on_sqlite(migrations.RunSQL(FORWARD, BACKWARD)),
        on_postgresql(migrations.RunSQL(PG_FORWARD, PG_BACKWARD)),
    ]
