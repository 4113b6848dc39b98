"""The knowledge-graph schema.

The models define the tables (and give the admin something to show); the store's hot paths in
`services.py` / `selectors.py` use hand-written SQL against the same tables. SQL triggers
(migration 0002) keep the materialized counters (`obs_count`, `out_deg`, `in_deg`,
`TypeDict.count`) and the FTS5 tables consistent with the base tables whatever writes to them:
the services, the ORM, the admin, or a person with `sqlite3`.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from access.models import Namespace

__all__ = ["Entity", "Namespace", "Observation", "Relation", "TypeDict"]


class TypeDict(models.Model):
    """Interned entity and relation types of one namespace, with live usage counts."""

    class Kind(models.TextChoices):
        ENTITY = "entity", "entity type"
        RELATION = "relation", "relation type"

    namespace = models.ForeignKey(Namespace, on_delete=models.CASCADE, related_name="types")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.TextField()
    count = models.PositiveIntegerField(default=0, editable=False)

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

    class Meta:
        db_table = "graph_observation"
        indexes = [
            models.Index(
                fields=["expires_at"], name="observation_expires", condition=models.Q(expires_at__isnull=False)
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

    class Meta:
        db_table = "graph_relation"
        constraints = [
            # Doubles as the covering index for outgoing traversal (from_id, to_id, type_id).
            models.UniqueConstraint(fields=["from_entity", "to_entity", "type"], name="relation_unique_edge"),
        ]
        indexes = [
            models.Index(fields=["to_entity", "from_entity", "type"], name="relation_incoming"),
        ]

    def __str__(self) -> str:
        return f"{self.from_entity_id} -[{self.type_id}]-> {self.to_entity_id}"
