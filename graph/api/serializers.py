"""Input and output shapes of the REST graph API, one pair per endpoint.

Wire names are the MCP tool argument names (`entityNames`, `relationType`, `from`, ...). Input
serializers check the shape of the top-level arguments and map wire names to the keyword names
of graph/operations. Lists of items (entities, relations, ...) are passed to the store as they
are: the store validates every item (types, emptiness, size limits) with messages that name the
exact field, the same checks for REST and MCP; `ItemList` only documents their schema.

Output serializers document each response in the OpenAPI schema. Views return the store's
result as is (it already has exactly these fields), so a 1,000-entity page is not re-serialized
field by field; the schemathesis test checks every response against these schemas.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from access import namespaces
from graph import limits

# --- building blocks ---------------------------------------------------------------------------


class StrictCharField(serializers.CharField):
    """A string that must be a JSON string: DRF would otherwise turn 5 or 1e-9 into "5"/"1e-09"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictRegexField(serializers.RegexField, StrictCharField):
    pass


def _text(**kwargs: Any) -> serializers.CharField:
    # Names and observations are stored exactly as sent: no trimming.
    return StrictCharField(trim_whitespace=False, **kwargs)


def _int(minimum: int, **kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=minimum, required=False, allow_null=True, **kwargs)


def _direction(help_text: str = "out, in or both") -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=["out", "in", "both"], required=False, allow_null=True, help_text=help_text)


class ShortListField(serializers.ListField):
    """A list whose length is checked before its items: over `max_length` (or, without one, over
    MAX_ITEMS_PER_REQUEST, refused as the store refuses it), a list of 200,000 wrong items is
    refused by its length rather than by 200,000 item errors."""

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, list):
            if self.max_length is None:
                limits.items(data, field=self.field_name or "list")
            elif len(data) > self.max_length:
                self.fail("max_length", max_length=self.max_length)
        return list(super().to_internal_value(data))


def _names(help_text: str) -> serializers.ListField:
    return ShortListField(child=_text(), help_text=help_text)


def item_list(item: type[serializers.Serializer], help_text: str) -> serializers.Field:
    """A list whose items the store validates; documented in the schema as a list of `item`."""

    @extend_schema_field(item(many=True))
    class ItemList(serializers.Field):
        def to_internal_value(self, data: Any) -> Any:
            if not isinstance(data, list):
                raise serializers.ValidationError("must be a list")
            return data

        def to_representation(self, value: Any) -> Any:
            return value

    return ItemList(help_text=help_text)


class Entity(serializers.Serializer):
    name = _text()
    entityType = _text()
    observations = serializers.ListField(child=_text())


class EntityIn(serializers.Serializer):
    name = _text()
    entityType = _text()
    observations = serializers.ListField(child=_text(), required=False)


def _with_field(cls: type[serializers.Serializer], name: str, field: serializers.Field) -> None:
    """Add a field whose name cannot be a class attribute: `from` is a Python keyword, and
    `source` would shadow the attribute of the same name every DRF field has."""
    cls._declared_fields = {name: field, **cls._declared_fields}


class Relation(serializers.Serializer):
    to = _text()
    relationType = _text()


_with_field(Relation, "from", _text())


class ObservationAdditionIn(serializers.Serializer):
    entityName = _text()
    contents = serializers.ListField(child=_text())


class ObservationDeletionIn(serializers.Serializer):
    entityName = _text()
    observations = serializers.ListField(child=_text())


class NamespacedIn(serializers.Serializer):
    """Every graph request may name its namespace; else X-Memory-Namespace, else the key's default."""

    namespace = StrictRegexField(
        namespaces.PATTERN,
        required=False,
        max_length=namespaces.MAX_NAMESPACE_LENGTH,
        help_text="e.g. org:team:project; default: the X-Memory-Namespace header, else the key's default namespace",
    )


class GraphPage(serializers.Serializer):
    entities = Entity(many=True)
    relations = Relation(many=True)


class DeleteResult(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    deleted = serializers.IntegerField()


class TypeCount(serializers.Serializer):
    name = serializers.CharField()
    count = serializers.IntegerField()


class Degree(serializers.Serializer):
    name = serializers.CharField()
    direction = serializers.ChoiceField(choices=["out", "in", "both"])
    degree = serializers.IntegerField()
    inDegree = serializers.IntegerField()
    outDegree = serializers.IntegerField()


class SkippedEntity(serializers.Serializer):
    name = serializers.CharField()
    reason = serializers.CharField()


class SkippedRelation(serializers.Serializer):
    relation = Relation()
    reason = serializers.CharField()


# --- writes --------------------------------------------------------------------------------------


class CreateEntitiesIn(NamespacedIn):
    entities = item_list(EntityIn, "entities to create; names that exist already are skipped")


class CreateEntitiesOut(serializers.Serializer):
    entities = Entity(many=True, help_text="the entities created")
    skipped = SkippedEntity(many=True)


class CreateRelationsIn(NamespacedIn):
    relations = item_list(Relation, "relations to create, in active voice (from -relationType-> to)")


class CreateRelationsOut(serializers.Serializer):
    relations = Relation(many=True, help_text="the relations created")
    skipped = SkippedRelation(many=True)


class AddObservationsIn(NamespacedIn):
    observations = item_list(ObservationAdditionIn, "observations to add per entity; all or nothing")


class AddedObservations(serializers.Serializer):
    entityName = serializers.CharField()
    addedObservations = serializers.ListField(child=serializers.CharField())


class AddObservationsOut(serializers.Serializer):
    results = AddedObservations(many=True)


class DeleteEntitiesIn(NamespacedIn):
    entityNames = _names("entities to delete, with their relations")


class DeleteObservationsIn(NamespacedIn):
    deletions = item_list(ObservationDeletionIn, "observations to delete per entity")


class DeleteRelationsIn(NamespacedIn):
    relations = item_list(Relation, "relations to delete (exact from, to and relationType)")


class UpsertEntitiesIn(NamespacedIn):
    entities = item_list(EntityIn, "entities to create, or to add new observations to if they exist")


class UpdatedEntity(serializers.Serializer):
    name = serializers.CharField()
    addedObservations = serializers.ListField(child=serializers.CharField())


class UpsertEntitiesOut(serializers.Serializer):
    created = Entity(many=True)
    updated = UpdatedEntity(many=True)


class MergeEntitiesIn(NamespacedIn):
    target = _text(help_text="the entity that receives observations and relations")


_with_field(MergeEntitiesIn, "source", _text(help_text="the entity merged away (deleted)"))


class MergeEntitiesOut(serializers.Serializer):
    entity = Entity()
    movedObservations = serializers.IntegerField()
    droppedDuplicateObservations = serializers.IntegerField()
    movedRelations = serializers.IntegerField()
    droppedRelations = serializers.IntegerField()


class RenameEntityIn(NamespacedIn):
    name = _text()
    newName = _text()


class CompactIn(serializers.Serializer):
    pass


class CompactOut(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    walCheckpoint = serializers.DictField(child=serializers.IntegerField(), allow_null=True)
    freedPages = serializers.IntegerField()


# --- reads ---------------------------------------------------------------------------------------


class ReadGraphIn(NamespacedIn):
    entityType = _text(required=False, allow_null=True)
    cursor = StrictCharField(required=False, allow_null=True, help_text="nextCursor of the previous page")
    offset = _int(0)
    limit = _int(1)


class ReadGraphOut(GraphPage):
    hasMore = serializers.BooleanField()
    nextCursor = serializers.CharField(allow_null=True)


class SearchNodesIn(NamespacedIn):
    query = _text(allow_blank=True, help_text='words (prefix-matched) or "quoted phrases"; empty: all')
    entityType = _text(required=False, allow_null=True)
    limit = _int(1)
    offset = _int(0)


class SearchNodesOut(GraphPage):
    hasMore = serializers.BooleanField()
    nextOffset = serializers.IntegerField(allow_null=True)


class OpenNodesIn(NamespacedIn):
    names = _names("entity names; missing names are skipped")


class NameIn(NamespacedIn):
    name = _text()


class BatchGetEntitiesIn(NamespacedIn):
    names = _names("entity names")


# drf-spectacular drops `allow_null` of a list's child serializer; spell the items out.
@extend_schema_field({"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/Entity"}], "nullable": True}})
class EntityOrNullList(serializers.ListField):
    child = Entity(allow_null=True)


class BatchGetEntitiesOut(serializers.Serializer):
    entities = EntityOrNullList(help_text="one per name, in order; null where missing")


class EntityExistsIn(NamespacedIn):
    names = _names("entity names")


class EntityExistsOut(serializers.Serializer):
    names = serializers.ListField(child=serializers.CharField())
    exists = serializers.ListField(child=serializers.BooleanField())


class GraphStatsOut(serializers.Serializer):
    entities = serializers.IntegerField()
    relations = serializers.IntegerField()
    observations = serializers.IntegerField()
    memories = serializers.IntegerField()
    entityTypes = serializers.IntegerField()
    relationTypes = serializers.IntegerField()


class TypeListOut(serializers.Serializer):
    types = TypeCount(many=True)


class SearchRelationsIn(NamespacedIn):
    to = _text(required=False, allow_null=True)
    relationType = _text(required=False, allow_null=True)
    limit = _int(1)
    offset = _int(0)


_with_field(SearchRelationsIn, "from", _text(required=False, allow_null=True))


class SearchRelationsOut(serializers.Serializer):
    relations = Relation(many=True)
    hasMore = serializers.BooleanField()
    nextOffset = serializers.IntegerField(allow_null=True)


class DegreeIn(NamespacedIn):
    name = _text()
    direction = _direction("out, in or both (default)")


class DescribeEntityIn(NamespacedIn):
    name = _text()
    limit = _int(1, help_text="at most this many relations each way")


class DescribeEntityOut(serializers.Serializer):
    entity = Entity()
    degree = Degree()
    outgoing = Relation(many=True)
    incoming = Relation(many=True)
    neighbors = serializers.ListField(child=serializers.CharField())
    hasMoreRelations = serializers.BooleanField()


class GetNeighborsIn(NamespacedIn):
    name = _text()
    direction = _direction()
    relationType = _text(required=False, allow_null=True)
    depth = _int(0)


class GetNeighborsOut(GraphPage):
    distances = serializers.DictField(child=serializers.IntegerField())
    truncated = serializers.BooleanField()


class ExtractSubgraphIn(NamespacedIn):
    names = _names("seed entities")
    depth = _int(0)


class FindPathIn(NamespacedIn):
    to = _text()
    direction = _direction("both (default: relations are undirected), out or in")
    maxDepth = _int(1)


_with_field(FindPathIn, "from", _text())


class FindPathOut(serializers.Serializer):
    found = serializers.BooleanField()
    path = serializers.ListField(child=serializers.CharField())
    relations = Relation(many=True)
    length = serializers.IntegerField(allow_null=True)


class FindAllPathsIn(FindPathIn):
    maxPaths = _int(1)


class FindAllPathsOut(serializers.Serializer):
    paths = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    relations = serializers.ListField(child=Relation(many=True))
    count = serializers.IntegerField()
    truncated = serializers.BooleanField()


class ExportGraphIn(NamespacedIn):
    format = serializers.ChoiceField(choices=["json", "jsonl", "mermaid", "dot"], required=False, allow_null=True)


class ExportGraphOut(serializers.Serializer):
    format = serializers.CharField()
    content = serializers.CharField()
