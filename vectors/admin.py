"""The embedding backlog in the admin: what waits for a vector, how often it failed and why, and
"retry now" for texts waiting out a backoff after the embedder came back."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from kernel.admin_tools import ReadOnlyAdmin
from vectors import backlog
from vectors.models import PendingEmbedding


@admin.register(PendingEmbedding)
class PendingEmbeddingAdmin(ReadOnlyAdmin):
    list_display = ("owner_id", "namespace_id", "enqueued_at", "attempts", "next_attempt_at", "claimed_until", "error")
    list_filter = ("attempts",)
    search_fields = ("=owner_id", "=namespace_id", "last_error")
    ordering = ("id",)
    actions = ("retry_now",)

    @admin.display(description="last error")
    def error(self, obj: PendingEmbedding) -> str:
        return obj.last_error[:120]

    @admin.action(description="Retry now (end the backoff and the claim)")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[PendingEmbedding]) -> None:
        count = backlog.retry_now(list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} texts will be embedded at once.", messages.SUCCESS)
