"""The extraction queue: messages stored with `infer: true` whose facts a model has not extracted
yet (memory/extraction.py drains it).

A row is written in the same transaction as its message, so a crash, a restart or a SIGKILL loses
no job: whatever is here is extracted by the next process that drains. A row is claimed for a
while (`claimed_until`) by the process that works on it; a failure counts an attempt, pushes
`next_attempt_at` back and keeps the row, and after MEMORYHUB_EXTRACTION_MAX_ATTEMPTS it is kept as
failed (`failed_at`, `last_error`) for an operator to look at and retry. Never is a message lost:
the message is a memory of its own, written before the job.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class PendingExtraction(models.Model):
    """One message waiting for its facts to be extracted."""

    # The message: a free memory's observation id (not a foreign key: the graph owns the rows, and
    # a message deleted meanwhile only ends its job).
    source_id = models.BigIntegerField()
    namespace_id = models.BigIntegerField()
    # When the message was said (its validFrom as written; for a repeat folded into an older memory,
    # the repeat's time): the facts hold from then, and what they replace ends then.
    said_at = models.DateTimeField(null=True, blank=True)
    # Who wrote the message (access.changes): the extracted facts' versions name the same caller.
    key_id = models.BigIntegerField(null=True, blank=True)
    key_prefix = models.CharField(max_length=32, blank=True, default="")
    user_id = models.BigIntegerField(null=True, blank=True)
    enqueued_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # The facts of the first call, once it answered (JSON list): a retry only asks for decisions.
    facts = models.TextField(blank=True, default="")
    # Set when the attempts ran out: the job is kept, not retried, until an operator retries it.
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "memory_pendingextraction"
        indexes = [
            # The claim: the oldest due job whose namespace has no older job still open.
            models.Index(fields=["namespace_id", "id"], name="extraction_namespace_order"),
        ]

    def __str__(self) -> str:
        return f"message {self.source_id} (namespace {self.namespace_id}, {self.attempts} attempts)"
