"""The extraction queue in the admin: which messages wait for their facts, how often extraction
failed and why, and "retry now" for jobs waiting out a backoff or kept as failed."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from kernel.admin_tools import ReadOnlyAdmin
from memory import extraction
from memory.models import PendingExtraction


@admin.register(PendingExtraction)
class PendingExtractionAdmin(ReadOnlyAdmin):
    list_display = ("message", "namespace_id", "enqueued_at", "attempts", "next_attempt_at", "failed_at", "error")
    list_filter = ("attempts",)
    search_fields = ("=source_id", "=namespace_id", "last_error")
    ordering = ("id",)
    actions = ("retry_now",)

    @admin.display(description="message")
    def message(self, obj: PendingExtraction) -> str:
        return f"mem_{obj.source_id}"

    @admin.display(description="last error")
    def error(self, obj: PendingExtraction) -> str:
        return obj.last_error[:120]

    @admin.action(description="Retry now (end the backoff; failed jobs get their attempts back)")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[PendingExtraction]) -> None:
        count = extraction.retry(ids=list(queryset.values_list("id", flat=True)))
        self.message_user(request, f"{count} messages will be extracted at once.", messages.SUCCESS)
