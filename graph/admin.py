"""The operator console for the knowledge graph.

Graph rows are written only through the graph operations, run by `access.operations.perform` as
every other surface runs them (entity create / rename / delete, observation add / delete): the
services validate against the limits, keep one transaction per call and write the base rows the
SQL triggers build counters and FTS from, and subscribers hear of the change. The admin never
saves a graph row with the ORM; it uses the ORM to read lists.

Every list stays fast on a graph of 100,000+ entities (see `python -m bench.admin`):

- counts come from the trigger-maintained counters and type counts, or from index-only counts;
- filtering by namespace takes a name (`?namespace__name=`) instead of listing every namespace
  or scanning entities for the distinct ones;
- search is FTS5 (`graph.selectors.search_nodes`) within a namespace, and an index range on the
  name (a case-sensitive prefix) across namespaces;
- nothing counts a whole table just to print "N total" (`show_full_result_count = False`).

Namespaces (but for their dedupe setting), relations and types are read-only here: namespaces
come into being with their first write and the services have no namespace delete; relations are
created and deleted by agents through the MCP / REST tools (the entity page links to an entity's
relations); types are interned by the services. Relations and observations show their validity
(validFrom / validTo: a closed fact is kept for asOf reads); a relation type is made functional
or not with two list actions, which run `declare_relation_type` (refused, with its message,
while an entity has several current relations of the type).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from access import namespaces
from access.operations import perform
from access.permissions import Access
from access.selectors import operator_access
from graph import history, limits, selectors
from graph.exceptions import EntityAlreadyExists
from graph.models import Entity, Namespace, Observation, Relation, TypeDict, Version
from kernel.admin_tools import ReadOnlyAdmin, ServiceModelAdmin, SubqueryCount, adopt, domain_check
from kernel.errors import DomainError

ENTITY = TypeDict.Kind.ENTITY
RELATION = TypeDict.Kind.RELATION
# Full-text search in the entity list returns at most this many entities, best first.
SEARCH_LIMIT = 200
RECENT_OBSERVATIONS = 50
# How many namespaces the namespace filter offers; any other is one click away in the namespace list.
NAMESPACE_CHOICES = 30


def _operator(request: HttpRequest) -> Access:
    return operator_access(request.user)


def changelist_url(model: str, **params: Any) -> str:
    return reverse(f"admin:graph_{model}_changelist") + ("?" + urlencode(params) if params else "")


def _count_link(model: str, namespace: str, count: int) -> str:
    """`count` linked to the changelist of `model` rows in `namespace`."""
    return format_html('<a href="{}">{}</a>', changelist_url(model, namespace__name=namespace), f"{count:,}")


# --- filters ---------------------------------------------------------------------------------------


class NamespaceFilter(admin.SimpleListFilter):
    """`?namespace__name=org:team:project`: one indexed lookup of the name, then the (namespace_id,
    …) index of the listed table.

    A plain `list_filter = ["namespace"]` would print every namespace, and RelatedOnlyFieldListFilter
    would scan the whole entity table for the distinct namespace ids on every page view. This
    offers the first NAMESPACE_CHOICES namespaces by name (one short index read) plus the current
    one; the namespace list links each namespace to its filtered entity list."""

    title = "namespace"
    parameter_name = "namespace__name"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = list(Namespace.objects.order_by("name").values_list("name", flat=True)[:NAMESPACE_CHOICES])
        current = self.value()
        if current and current not in names:
            names.append(current)
        return [(name, name) for name in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(namespace__name=value) if value else queryset


def _is_id(value: str | None) -> bool:
    """A row id as a URL carries it: ASCII digits ("²" is a digit to isdigit(), not to int()),
    within SQLite's 64-bit integers."""
    return value is not None and value.isascii() and value.isdigit() and len(value) <= 18


class EntityRelationsFilter(admin.SimpleListFilter):
    """`?entity=<id>`: the relations at either end of one entity (linked from the entity page).
    Offers no choices of its own, so it only shows while in use."""

    title = "entity"
    parameter_name = "entity"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        if value is None or not _is_id(value):
            return []
        entity = Entity.objects.filter(pk=int(value)).values_list("name", flat=True).first()
        return [(value, entity or f"#{value} (deleted)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if not _is_id(value):
            return queryset.none()
        # Served by the two covering indexes (from_id, …) and (to_id, …).
        return queryset.filter(Q(from_entity_id=int(value)) | Q(to_entity_id=int(value)))


# --- namespaces ------------------------------------------------------------------------------------


def _type_total(kind: str) -> Coalesce:
    """Sum of the live type counts of one kind: the number of entities (or relations) in the
    namespace, read from a handful of graph_typedict rows instead of counting the big table."""
    rows = TypeDict.objects.filter(namespace=OuterRef("pk"), kind=kind).order_by().values("namespace")
    return Coalesce(Subquery(rows.annotate(total=Sum("count")).values("total")), 0, output_field=IntegerField())


def _observation_count(**conditions: Any) -> SubqueryCount:
    """Observations of the namespace, counted over the (namespace_id) index, or over the partial
    index of free memories when `entity__isnull=True`: index-only, the table is not read."""
    return SubqueryCount(Observation.objects.filter(namespace=OuterRef("pk"), **conditions).order_by().values("pk"))


@admin.register(Namespace)
class NamespaceAdmin(ReadOnlyAdmin):
    """Read-only but for its dedupe setting. A namespace is created by its first write; there is
    no namespace delete in the services (deleting one here would cascade through the ORM past
    them)."""

    list_display = ["name", "entities", "observations", "memories", "relations", "dedupe", "created_at"]
    list_filter = ["dedupe"]
    search_fields = ["name"]
    fields = ("name", "created_at", "dedupe", "entities", "observations", "memories", "relations", "entity_types")
    readonly_fields = tuple(field for field in fields if field != "dedupe")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Only `dedupe` is editable (the other fields are read-only), by staff allowed to change namespaces.
        return admin.ModelAdmin.has_change_permission(self, request, obj)

    def save_model(self, request: HttpRequest, obj: Namespace, form: Any, change: bool) -> None:
        namespaces.set_dedupe(obj.name, obj.dedupe)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Namespace]:
        # One query for the page. Entities and relations come from the type counts (a few rows
        # each); observations need an index-only count(*), which dominates. That is as fast as
        # graph_stats() per row (4 queries each) and faster than Django's usual GROUP BY count
        # subqueries (`python -m bench.admin`; bench/RESULTS.md, "Design measurements").
        return (
            super()
            .get_queryset(request)
            .annotate(
                entity_total=_type_total(ENTITY),
                relation_total=_type_total(RELATION),
                observation_rows=_observation_count(),
                memory_total=_observation_count(entity__isnull=True),
            )
        )

    @admin.display(description="entities", ordering="entity_total")
    def entities(self, obj: Any) -> str:
        return _count_link("entity", obj.name, obj.entity_total)

    @admin.display(description="observations")
    def observations(self, obj: Any) -> str:
        return f"{obj.observation_rows - obj.memory_total:,}"

    @admin.display(description="free memories", ordering="memory_total")
    def memories(self, obj: Any) -> str:
        return f"{obj.memory_total:,}"

    @admin.display(description="relations", ordering="relation_total")
    def relations(self, obj: Any) -> str:
        return _count_link("relation", obj.name, obj.relation_total)

    @admin.display(description="entity types in use")
    def entity_types(self, obj: Namespace) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            changelist_url("typedict", namespace__name=obj.name),
            selectors.graph_stats(namespace=obj.name)["entityTypes"],
        )


# --- entities --------------------------------------------------------------------------------------


class EntityAddForm(forms.ModelForm):
    namespace_name = forms.CharField(
        label="namespace", max_length=namespaces.MAX_NAMESPACE_LENGTH, help_text="org:team:project; created if new"
    )
    entity_type = forms.CharField(label="type", help_text="e.g. person, project, service")

    class Meta:
        model = Entity
        fields = ["name"]
        widgets = {"name": forms.TextInput(attrs={"size": 60})}

    def clean_namespace_name(self) -> str:
        return str(domain_check(namespaces.validate, self.cleaned_data["namespace_name"].strip()))

    def clean_name(self) -> str:
        return str(domain_check(limits.name, self.cleaned_data["name"]))

    def clean_entity_type(self) -> str:
        return str(domain_check(limits.name, self.cleaned_data["entity_type"]))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        namespace, name = data.get("namespace_name"), data.get("name")
        if namespace and name and Entity.objects.filter(namespace__name=namespace, name=name).exists():
            self.add_error("name", EntityAlreadyExists(name).message)
        return data


class EntityChangeForm(forms.ModelForm):
    class Meta:
        model = Entity
        fields = ["name"]
        widgets = {"name": forms.TextInput(attrs={"size": 60})}

    def clean_name(self) -> str:
        name = str(domain_check(limits.name, self.cleaned_data["name"]))
        entity = self.instance
        if (
            name != self.initial.get("name")
            and Entity.objects.filter(namespace_id=entity.namespace_id, name=name).exclude(pk=entity.pk).exists()
        ):
            raise ValidationError(EntityAlreadyExists(name).message)
        return name


class ObservationForm(forms.ModelForm):
    class Meta:
        model = Observation
        fields = ["body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 2, "cols": 80})}

    def clean_body(self) -> str:
        return str(domain_check(limits.observation, self.cleaned_data["body"]))


class RecentObservationsFormSet(BaseInlineFormSet):
    """The entity's RECENT_OBSERVATIONS newest observations: an entity may hold thousands."""

    def get_queryset(self) -> QuerySet[Observation]:
        if not hasattr(self, "_queryset"):
            self._queryset = super().get_queryset().order_by("-pk")[:RECENT_OBSERVATIONS]
        return self._queryset


class ObservationInline(admin.TabularInline):
    """Add, edit and delete through the operations (an edit is `memory_update`: the observation
    keeps its id, and its history records the old text with surface "admin")."""

    model = Observation
    form = ObservationForm
    formset = RecentObservationsFormSet
    fields = ["body", "added", "expires_at", "valid_from", "valid_to"]
    readonly_fields = ["added", "expires_at", "valid_from", "valid_to"]
    extra = 1
    verbose_name_plural = f"observations (the {RECENT_OBSERVATIONS} newest)"

    @admin.display(description="added")
    def added(self, obj: Observation) -> Any:
        # A new row's created_at is only the model default (now); show nothing until it is saved.
        return obj.created_at if obj.pk else None


@admin.register(Entity)
class EntityAdmin(ServiceModelAdmin):
    list_display = ["name", "entity_type", "namespace", "obs_count", "out_deg", "in_deg", "updated_at"]
    list_select_related = ("namespace", "type")
    list_filter = [NamespaceFilter]
    raw_id_fields = ("namespace", "type")
    search_fields = ["name"]  # shows the search box; get_search_results does the searching
    search_help_text = (
        f"Within a namespace (filter first): full-text search of names and observations, best "
        f"{SEARCH_LIMIT} matches. Across all namespaces: names starting with the text (case-sensitive)."
    )
    show_full_result_count = False
    inlines = [ObservationInline]
    save_as = False

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = EntityChangeForm if obj is not None else EntityAddForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Entity | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("namespace_name", "name", "entity_type")
        return ("name", "namespace_link", "entity_type", "obs_count", "relation_links", "created_at", "updated_at")

    def get_readonly_fields(self, request: HttpRequest, obj: Entity | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("namespace_link", "entity_type", "obs_count", "relation_links", "created_at", "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Entity]:
        return super().get_queryset(request).select_related("namespace", "type")

    def get_ordering(self, request: HttpRequest) -> tuple[str, ...]:
        if request.GET.get("q", "").strip() and not request.GET.get(NamespaceFilter.parameter_name):
            # The name-prefix search reads (namespace_id, name) index ranges: keep the index order
            # so the first page stops early, instead of sorting every match by id.
            return ("namespace_id", "name")
        return ()

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        namespace = request.GET.get(NamespaceFilter.parameter_name)
        if not namespace:
            # `name__startswith` is a case-insensitive LIKE on SQLite and scans every entity; an
            # explicit range on the name, with namespace_id constrained to the (few) namespaces,
            # lets SQLite seek the (namespace_id, name) index once per namespace.
            return queryset.filter(name_prefix(term), namespace_id__in=Namespace.objects.values("id")), False
        try:
            page = perform(_operator(request), "search_nodes", namespace=namespace, query=term, limit=SEARCH_LIMIT)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return queryset.none(), False
        if page["hasMore"]:
            self.message_user(
                request, f"Showing the best {SEARCH_LIMIT} matches; add words to narrow the search.", messages.INFO
            )
        return queryset.filter(name__in=[entity["name"] for entity in page["entities"]]), False

    @admin.display(description="type", ordering="type__name")
    def entity_type(self, obj: Entity) -> str:
        return obj.type.name

    @admin.display(description="namespace")
    def namespace_link(self, obj: Entity) -> str:
        return format_html(
            '<a href="{}">{}</a>', changelist_url("entity", namespace__name=obj.namespace.name), obj.namespace.name
        )

    @admin.display(description="relations")
    def relation_links(self, obj: Entity) -> str:
        return format_html(
            '<a href="{}">{} outgoing, {} incoming</a>',
            changelist_url("relation", entity=obj.pk),
            obj.out_deg,
            obj.in_deg,
        )

    # --- writes, all through graph.services ---

    def save_model(self, request: HttpRequest, obj: Entity, form: Any, change: bool) -> None:
        if not change:
            namespace = form.cleaned_data["namespace_name"]
            result = perform(
                _operator(request),
                "create_entities",
                namespace=namespace,
                entities=[{"name": obj.name, "entityType": form.cleaned_data["entity_type"], "observations": []}],
            )
            if result["skipped"]:  # created by someone else since the form was checked
                raise EntityAlreadyExists(obj.name)
            adopt(obj, Entity.objects.select_related("namespace", "type").get(namespace__name=namespace, name=obj.name))
            return
        old_name = form.initial["name"]
        if obj.name != old_name:
            perform(_operator(request), "rename_entity", namespace=obj.namespace.name, name=old_name, new_name=obj.name)
        obj.refresh_from_db()

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        entity: Entity = form.instance
        deleted = set(map(id, formset.deleted_forms))
        removed = [f.initial["body"] for f in formset.initial_forms if id(f) in deleted]
        added = [f.cleaned_data["body"] for f in formset.extra_forms if f.has_changed() and id(f) not in deleted]
        edited = [f for f in formset.initial_forms if id(f) not in deleted and f.has_changed()]
        namespace = entity.namespace.name
        for edit in edited:
            perform(
                _operator(request),
                "memory_update",
                namespace=namespace,
                id=f"mem_{edit.instance.pk}",
                text=edit.cleaned_data["body"],
            )
        if removed:
            perform(
                _operator(request),
                "delete_observations",
                namespace=namespace,
                deletions=[{"entityName": entity.name, "observations": removed}],
            )
        if added:
            perform(
                _operator(request),
                "add_observations",
                namespace=namespace,
                observations=[{"entityName": entity.name, "contents": added}],
            )
        # What formset.save() would have recorded, for the admin's change message.
        formset.new_objects = [f.instance for f in formset.extra_forms if f.has_changed() and id(f) not in deleted]
        formset.changed_objects = [(f.instance, ["body"]) for f in edited]
        formset.deleted_objects = [f.instance for f in formset.initial_forms if id(f) in deleted]

    def delete_model(self, request: HttpRequest, obj: Entity) -> None:
        perform(_operator(request), "delete_entities", namespace=obj.namespace.name, entity_names=[obj.name])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        by_namespace: dict[str, list[str]] = defaultdict(list)
        for namespace, name in queryset.values_list("namespace__name", "name"):
            by_namespace[namespace].append(name)
        batch = limits.limit("MAX_ITEMS_PER_REQUEST")
        caller = _operator(request)
        with transaction.atomic():  # the whole selection or nothing
            for namespace, names in by_namespace.items():
                for start in range(0, len(names), batch):
                    perform(caller, "delete_entities", namespace=namespace, entity_names=names[start : start + batch])

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        """Summarise what the deletion takes with it instead of letting Django's collector load
        every observation and relation (an entity may have thousands). The services delete them,
        so no per-model delete permission applies to them."""
        entities = list(objs)
        ids = [entity.pk for entity in entities]
        relation_total = Relation.objects.filter(Q(from_entity_id__in=ids) | Q(to_entity_id__in=ids)).count()
        summary = [
            f"{entity.namespace.name} / {entity.name}: {entity.obs_count} observations, "
            f"{entity.out_deg + entity.in_deg} relations"
            for entity in entities
        ]
        counts = {
            "entities": len(entities),
            "observations": sum(entity.obs_count for entity in entities),
            "relations": relation_total,
        }
        return summary, counts, set(), []


def name_prefix(term: str) -> Q:
    """`name` starts with `term`, as an index range. SQLite compares text as UTF-8 bytes, whose
    order is code point order, so [term, term with its last character + 1) is exactly the set."""
    last = ord(term[-1])
    if last >= 0x10FFFF:
        return Q(name__startswith=term)
    following = last + 1 if not 0xD800 <= last + 1 <= 0xDFFF else 0xE000  # skip the surrogates
    return Q(name__gte=term, name__lt=term[:-1] + chr(following))


# --- relations and types (read-only) -----------------------------------------------------------------


@admin.register(Relation)
class RelationAdmin(ReadOnlyAdmin):
    list_display = [
        "from_entity",
        "relation_type",
        "to_entity",
        "namespace",
        "created_at",
        "valid_from",
        "valid_to",
        "current",
    ]
    list_select_related = ("from_entity", "to_entity", "type", "namespace")
    list_filter = [NamespaceFilter, EntityRelationsFilter]
    raw_id_fields = ("namespace", "from_entity", "to_entity", "type")
    show_full_result_count = False

    @admin.display(description="type", ordering="type__name")
    def relation_type(self, obj: Relation) -> str:
        return obj.type.name

    @admin.display(description="current", boolean=True)
    def current(self, obj: Relation) -> bool:
        return obj.valid_to is None


@admin.register(TypeDict)
class TypeDictAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "namespace", "count", "functional"]
    list_select_related = ("namespace",)
    list_filter = ["kind", "functional", NamespaceFilter]
    raw_id_fields = ("namespace",)
    search_fields = ["name"]
    show_full_result_count = False
    actions = ["make_functional", "make_not_functional"]

    def _declare(self, request: HttpRequest, queryset: QuerySet[TypeDict], functional: bool) -> None:
        for kind in queryset.select_related("namespace").filter(kind=RELATION):
            try:
                perform(
                    _operator(request),
                    "declare_relation_type",
                    namespace=kind.namespace.name,
                    relation_type=kind.name,
                    functional=functional,
                )
            except DomainError as error:
                self.message_user(request, f"{kind.name}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{kind.name} ({kind.namespace.name}): functional = {functional}")

    @admin.action(description="Make the selected relation types functional (one current relation per entity)")
    def make_functional(self, request: HttpRequest, queryset: QuerySet[TypeDict]) -> None:
        self._declare(request, queryset, True)

    @admin.action(description="Make the selected relation types not functional")
    def make_not_functional(self, request: HttpRequest, queryset: QuerySet[TypeDict]) -> None:
        self._declare(request, queryset, False)


# --- history (read-only) -----------------------------------------------------------------------------


@admin.register(Version)
class VersionAdmin(ReadOnlyAdmin):
    """Every recorded change, newest first. Search by an object's id (mem_12, ent_3, rel_5, or the
    bare number); restoring is done by agents and users through restore_memory."""

    list_display = [
        "object_label",
        "version",
        "action",
        "surface",
        "operation",
        "key_prefix",
        "user_id",
        "actor_id",
        "namespace",
        "changed_at",
    ]
    list_select_related = ("namespace",)
    list_filter = ["action", "surface", "kind", NamespaceFilter]
    search_fields = ["object_id"]  # shows the search box; get_search_results does the searching
    search_help_text = "An object's id: mem_12 (memory or observation), ent_3 (entity), rel_5 (relation), or 12."
    show_full_result_count = False
    ordering = ("-id",)
    fields = [
        "kind",
        "object_id",
        "version",
        "action",
        "before",
        "after",
        "changed_at",
        "namespace",
        "entity_id",
        "other_entity_id",
        "operation",
        "surface",
        "key_id",
        "key_prefix",
        "user_id",
        "actor_id",
        "call",
    ]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.isdigit():
            return queryset.filter(object_id=int(term)), False
        try:
            kind, object_id = history.parse_id(term)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return queryset.none(), False
        return queryset.filter(kind=kind, object_id=object_id), False

    @admin.display(description="object", ordering="object_id")
    def object_label(self, obj: Version) -> str:
        return history.wire_id(obj.kind, obj.object_id)
