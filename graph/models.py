"""The knowledge-graph schema.

The models define the tables (and give the admin something to show); the store's hot paths in
`services.py` / `selectors.py` use hand-written SQL against the same tables. SQL triggers
(migration 0002) keep the materialized counters (`obs_count`, `out_deg`, `in_deg`,
`TypeDict.count`) and the FTS5 tables consistent with the base tables whatever writes to them:
the services, the ORM, the admin, or a person with `sqlite3`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from access.models import Namespace
from kernel.db_functions import JsonText

__all__ = ["Entity", "ImportJob", "Namespace", "Observation", "Relation", "TypeDict", "Version"]


class TypeDict(models.Model):
    """Interned entity and relation types of one namespace, with live usage counts."""

    class Kind(models.TextChoices):
        ENTITY = "entity", "entity type"
        RELATION = "relation", "relation type"

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="types")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.TextField()
    count = models.PositiveIntegerField(default=0, editable=False)
    # A functional relation type holds one current relation per source entity: a new one closes
    # the one before (graph/validity.py). Declared with `declare_relation_type`.
    functional = models.BooleanField(default=False)

    class Meta:
        db_table = "graph_typedict"
        constraints = [
            models.UniqueConstraint(fields=["namespace", "kind", "name"], name="typedict_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


class Entity(models.Model):
    """A named node. Names are unique per namespace and case-sensitive."""

    # Indexed on its own too: (namespace_id, rowid) serves id-ordered paging without a sort.
    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="entities")
    name = models.TextField()
    # The CJK-bigram form of `name` that FTS indexes (see graph/fts.py); NULL for plain text.
    search_name = models.TextField(null=True, blank=True, editable=False)  # noqa: DJ001 (NULL = index `name` as is)
    type = models.ForeignKey(TypeDict, on_delete=models.RESTRICT, related_name="entities")
    obs_count = models.PositiveIntegerField(default=0, editable=False)
    out_deg = models.PositiveIntegerField(default=0, editable=False)
    in_deg = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "graph_entity"
        verbose_name_plural = "entities"
        constraints = [
            # Also the index behind every name lookup (namespace_id, name).
            models.UniqueConstraint(fields=["namespace", "name"], name="entity_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Observation(models.Model):
    """The unit of memory. With an entity it is a graph fact; without one, a free text memory."""

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="observations")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, null=True, blank=True, related_name="observations")
    body = models.TextField()
    # The CJK-bigram form of `body` that FTS indexes (see graph/fts.py); NULL for plain text.
    search_text = models.TextField(null=True, blank=True, editable=False)  # noqa: DJ001 (NULL = index `body` as is)
    actor_id = models.CharField(max_length=255, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    # How often the same thing was written (dedupe folds a repeat into this row) and when last.
    mention_count = models.PositiveIntegerField(default=1, editable=False)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    # A free memory's words as the dedupe judge reads them (memory/dedupe.py `key_of`): a repeat
    # has the same key, so its candidates are found by one indexed look-up. NULL until keyed (rows
    # from before keys, and texts rewritten by an update or a restore are keyed again on the
    # namespace's next write).
    dedupe_key = models.CharField(  # noqa: DJ001 (NULL = not keyed yet, not "no key")
        max_length=64, null=True, blank=True, editable=False
    )
    # Validity time (graph/validity.py), kept apart from `created_at`, when it was recorded: the
    # fact holds from `valid_from` (NULL: from `created_at`) until `valid_to` (NULL: still).
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_to = models.DateTimeField(null=True, blank=True)
    # The observation this one replaced (its successor is the row whose `supersedes_id` is its
    # id: at most one, a unique index says so). Not a foreign key: either may be deleted.
    supersedes_id = models.BigIntegerField(null=True, blank=True, editable=False)
    # An extracted fact's source: the message (a free memory) it was extracted from, and the model.
    source_id = models.BigIntegerField(null=True, blank=True, editable=False)
    extracted_by = models.CharField(max_length=128, blank=True, default="", editable=False)

    class Meta:
        db_table = "graph_observation"
        indexes = [
            models.Index(
                fields=["expires_at"], name="observation_expires", condition=models.Q(expires_at__isnull=False)
            ),
            models.Index(
                fields=["namespace", "dedupe_key"],
                name="observation_dedupe_key",
                condition=models.Q(entity__isnull=True, dedupe_key__isnull=False),
            ),
            models.Index(
                fields=["namespace"],
                name="observation_unkeyed",
                condition=models.Q(entity__isnull=True, dedupe_key__isnull=True),
            ),
            # What current reads leave out, found without a scan: facts closed (or given an end),
            # and facts that start later than they were recorded (graph/validity.py).
            models.Index(
                fields=["namespace", "valid_to"], name="observation_closed", condition=models.Q(valid_to__isnull=False)
            ),
            models.Index(
                fields=["namespace", "valid_from"],
                name="observation_later",
                condition=models.Q(valid_from__gt=models.F("created_at")),
            ),
            models.Index(fields=["source_id"], name="observation_source", condition=models.Q(source_id__isnull=False)),
        ]
        constraints = [
            # One successor per fact: of two supersessions at once, one wins (graph/validity.py).
            models.UniqueConstraint(
                fields=["supersedes_id"],
                name="observation_one_successor",
                condition=models.Q(supersedes_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.body[:80]


class Relation(models.Model):
    """A directed, typed edge. Unique on (from, to, type); traversal may ignore direction."""

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="relations")
    from_entity = models.ForeignKey(
        Entity, on_delete=models.CASCADE, related_name="out_relations", db_column="from_id", db_index=False
    )
    to_entity = models.ForeignKey(
        Entity, on_delete=models.CASCADE, related_name="in_relations", db_column="to_id", db_index=False
    )
    type = models.ForeignKey(TypeDict, on_delete=models.RESTRICT, related_name="relations")
    created_at = models.DateTimeField(default=timezone.now)
    # Validity time, as on observations: a closed relation (`valid_to` set) stays, for `asOf`
    # reads, and the same edge may then be created again.
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_to = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "graph_relation"
        constraints = [
            # One current edge per (from, to, type); closed ones may repeat it.
            models.UniqueConstraint(
                fields=["from_entity", "to_entity", "type"],
                name="relation_current_edge",
                condition=models.Q(valid_to__isnull=True),
            ),
        ]
        indexes = [
            # Traversal, current or as of any time: (from_id, to_id, type_id) out, (to_id, from_id,
            # type_id) in. valid_to ends both so a current walk (`valid_to IS NULL`,
            # graph/traversal.py) stays index-only, as it was before validity time.
            models.Index(fields=["from_entity", "to_entity", "type", "valid_to"], name="relation_outgoing_at"),
            models.Index(fields=["to_entity", "from_entity", "type", "valid_to"], name="relation_incoming_at"),
            models.Index(
                fields=["namespace", "valid_to"], name="relation_closed", condition=models.Q(valid_to__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_entity_id} -[{self.type_id}]-> {self.to_entity_id}"


# A version that removed its object (deleted, expired, merged away).
_REMOVED = models.Q(after__isnull=True) & ~models.Q(action="create")


class Version(models.Model):
    """One change to one memory, observation, entity or relation: what it was before and after,
    when, who (key, user, the memory's actor) and through which surface (graph/history.py).

    Append-only. Rows outlive what they describe: a deleted memory keeps its versions (and can be
    restored from them) until the retention window passes or it is purged."""

    class Kind(models.TextChoices):
        OBSERVATION = "observation", "memory or observation"
        ENTITY = "entity", "entity"
        RELATION = "relation", "relation"

    # No index and no database constraint: every write would pay for them (the constraint checks
    # the namespace row once per version), and nothing needs them: an object's versions are found
    # by kind and id, an entity's by the indexes below, and namespaces are deleted (if ever)
    # through Django, whose collector deletes their versions (bench/RESULTS.md, "History").
    namespace = models.ForeignKey(
        Namespace, on_delete=models.CASCADE, related_name="versions", db_index=False, db_constraint=False
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # Not foreign keys: the row may be deleted (and restored with the same id).
    object_id = models.BigIntegerField()
    # The entity the change belongs to (an observation's entity, a relation's source, an entity
    # itself) and a relation's target: how an entity's history finds everything about it.
    entity_id = models.BigIntegerField(null=True, blank=True)
    other_entity_id = models.BigIntegerField(null=True, blank=True)
    # 1, 2, ... per (kind, object_id).
    version = models.PositiveIntegerField()
    action = models.CharField(max_length=16)
    before = models.JSONField(null=True, blank=True)
    # Null for a removal; also null, not stored, for a create: the row as created is the next
    # version's `before`, or the row as it is now (the readers in graph/history.py fill it in).
    after = models.JSONField(null=True, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)
    operation = models.CharField(max_length=64, blank=True, default="")
    surface = models.CharField(max_length=16, blank=True, default="")
    key_id = models.BigIntegerField(null=True, blank=True)
    key_prefix = models.CharField(max_length=32, blank=True, default="")
    user_id = models.BigIntegerField(null=True, blank=True)
    actor_id = models.CharField(max_length=255, blank=True, default="")
    # The call that made the change: everything one call deleted is restored together.
    call = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        db_table = "graph_version"
        constraints = [
            models.UniqueConstraint(fields=["kind", "object_id", "version"], name="version_unique_number"),
        ]
        indexes = [
            # An entity's history: its objects are its live observations and relations (found in
            # their tables) and those that changed entity or went (found here); creates, which
            # change nothing to look up later, stay out of these indexes.
            models.Index(
                fields=["entity_id"],
                name="version_entity_changes",
                condition=models.Q(entity_id__isnull=False) & ~models.Q(action="create"),
            ),
            models.Index(
                fields=["other_entity_id"],
                name="version_other_entity_changes",
                condition=models.Q(other_entity_id__isnull=False) & ~models.Q(action="create"),
            ),
            # Only removals (a version whose `after` is null and that is not a create, which keeps
            # no copy of the row: graph/history.py) are looked up by time (the retention job) and
            # by call (a restore brings back what one call removed): creates, the bulk of the
            # history, skip both indexes (bench/RESULTS.md, "History").
            # The names entities had before a rename, delete or merge (their live name is in
            # graph_entity): graph/history.py `entities_named` reads it with this expression.
            models.Index(
                "namespace",
                JsonText("before", "name"),
                name="version_entity_old_name",
                condition=models.Q(kind="entity") & ~models.Q(action="create"),
            ),
            models.Index(fields=["changed_at"], name="version_removed_time", condition=_REMOVED),
            models.Index(fields=["call"], name="version_removed_call", condition=_REMOVED),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.object_id} v{self.version} {self.action}"


class ImportJob(models.Model):
    """An upload being imported into a namespace in the background (graph/import_jobs.py): who
    uploaded what, where it goes, how far it got and what it came to.

    While a job runs, its progress lives in the cache (the import holds SQLite's write lock, so its
    row cannot be updated until it ends); the row records the start and the outcome."""

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="import_jobs")
    # A name, not a key: the import creates the namespace when it does not exist yet.
    namespace = models.TextField()
    # As the uploader named it, for display only; the stored file has a name the server chose.
    filename = models.CharField(max_length=255)
    stored_name = models.CharField(max_length=64, blank=True)  # "" once the upload is deleted
    size = models.BigIntegerField(default=0)  # bytes
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    total = models.PositiveIntegerField(default=0)  # records in the file (entities, relations, memories)
    done = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict)  # graph.services.import_graph's counts
    skipped = models.JSONField(default=list)  # the first skipped relations with reasons
    skipped_count = models.PositiveIntegerField(default=0)  # all of them
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "graph_importjob"
        indexes = [models.Index(fields=["user", "-id"], name="graph_importjob_user_recent")]

    def __str__(self) -> str:
        return f"import {self.pk} of {self.filename} into {self.namespace} ({self.state})"
