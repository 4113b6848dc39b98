"""Pieces shared by the apps' admins: read-only models, saving through services, counting per row, short
inlines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import IntegerField, Model, QuerySet, Subquery
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from kernel.errors import DomainError


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only services write (counters, ledgers, derived tables): operators read them here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ServiceModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose saves call services: a DomainError they raise becomes an error message.

    Django runs the whole add/change view in one `transaction.atomic()`, so when a service
    raises halfway (say the third inline grant is refused) everything the view wrote before is
    rolled back, and the operator lands on the same page with the service's message.
    """

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            return self._refused(request, error)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:
            return self._refused(request, error)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        try:  # bulk actions (delete_queryset) run from here
            return super().changelist_view(request, extra_context)
        except DomainError as error:
            return self._refused(request, error)

    def _refused(self, request: HttpRequest, error: DomainError) -> HttpResponse:
        self.message_user(request, f"Nothing was saved: {error.message}", messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())


def adopt(target: Model, saved: Model) -> None:
    """Make `target` (the admin form's unsaved instance) the row a service created.

    The admin keeps using the form's instance after save_model: the inline formsets are bound
    to it and the log entry and redirect read its pk. So the service's row is copied onto it
    rather than replacing it."""
    for field in saved._meta.concrete_fields:
        setattr(target, field.attname, getattr(saved, field.attname))
    target._state.adding = False
    target._state.db = saved._state.db


class SubqueryCount(Subquery):
    """`(SELECT count(*) FROM (subquery))`, for a count per listed row. The usual
    `.values(fk).annotate(Count(...))` subquery adds a GROUP BY, which SQLite runs slower than a
    bare count(*) over the same index range (bench/RESULTS.md, "Design measurements"); a Count()
    annotation on the outer query joins and groups every row of the table before the page is cut."""

    template = "(SELECT count(*) FROM (%(subquery)s) AS counted)"
    output_field = IntegerField()


def domain_check(check: Callable[[Any], Any], value: Any) -> Any:
    """Run one of the domain's validators in a form, turning its error into a field error."""
    try:
        return check(value)
    except DomainError as error:
        raise ValidationError(error.message) from None


class LimitedInlineFormSet(BaseInlineFormSet):
    """Shows at most `max_rows` existing rows, newest first, so a parent with thousands of
    children still renders fast."""

    max_rows = 50

    def get_queryset(self) -> QuerySet[Any]:
        if not hasattr(self, "_queryset"):
            self._queryset = super().get_queryset().order_by("-pk")[: self.max_rows]
        return self._queryset
