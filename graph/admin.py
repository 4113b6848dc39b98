"""Operator views of the graph. Read-mostly; the access issue adds service-backed editing."""

from __future__ import annotations

from django.contrib import admin

from graph.models import Entity, Namespace, Observation, Relation


@admin.register(Namespace)
class NamespaceAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


class ObservationInline(admin.TabularInline):
    model = Observation
    fields = ["body", "created_at"]
    readonly_fields = ["created_at"]
    extra = 0


@admin.register(Entity)
class EntityAdmin(admin.ModelAdmin):
    list_display = ["name", "type", "namespace", "obs_count", "out_deg", "in_deg", "updated_at"]
    list_select_related = ["type", "namespace"]
    search_fields = ["name"]
    raw_id_fields = ["namespace", "type"]
    readonly_fields = ["obs_count", "out_deg", "in_deg"]
    inlines = [ObservationInline]
    show_full_result_count = False


@admin.register(Relation)
class RelationAdmin(admin.ModelAdmin):
    list_display = ["from_entity", "type", "to_entity", "namespace"]
    list_select_related = ["from_entity", "to_entity", "type", "namespace"]
    raw_id_fields = ["namespace", "from_entity", "to_entity", "type"]
    show_full_result_count = False
