"""The operator console for API keys, grants, allowances and the audit log.

Every write goes through `access.services` with `source="admin"` and the signed-in
operator as the actor, so the admin can neither skip a validation nor write past the audit log;
the ORM is used here to read only. Forms run the domain's own validators early, so common
mistakes come back as field errors; anything a service still rejects becomes an error message on
the same page (see `ServiceModelAdmin`), never a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from access import namespaces, patterns, services
from access.models import ApiKey, ApiKeyQuerySet, AuditEvent, NamespaceAllowance, NamespaceGrant, OAuthConsent
from kernel.admin_tools import LimitedInlineFormSet, ServiceModelAdmin, SubqueryCount, adopt, domain_check

SOURCE = "admin"
# The secret of a key created in this request, handed from save_model to response_add.
_NEW_SECRET_ATTR = "_memoryhub_new_key_secret"

User = get_user_model()


# --- (pattern, permission) inlines: key grants and user allowances ---------------------------------


class PatternForm(forms.ModelForm):
    def clean_pattern(self) -> str:
        return str(domain_check(patterns.validate, self.cleaned_data["pattern"].strip()))


def save_pattern_formset(formset: Any, *, put: Callable[[str, str], object], remove: Callable[[str], object]) -> None:
    """Apply an inline of (pattern, permission) rows through services instead of formset.save().

    Removals run first (deleted rows and the old pattern of an edited row), so swapping two
    patterns between rows ends with both. The formset's new/changed/deleted lists are filled in
    as formset.save() would, for the admin's change message."""
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    deleted = set(map(id, formset.deleted_forms))
    puts: list[tuple[str, str]] = []
    for form in formset.initial_forms:
        old = form.initial.get("pattern")
        if id(form) in deleted:
            remove(old)
            formset.deleted_objects.append(form.instance)
        elif form.has_changed():
            if form.cleaned_data["pattern"] != old:
                remove(old)
            puts.append((form.cleaned_data["pattern"], form.cleaned_data["permission"]))
            formset.changed_objects.append((form.instance, form.changed_data))
    for form in formset.extra_forms:
        if form.has_changed() and id(form) not in deleted:
            puts.append((form.cleaned_data["pattern"], form.cleaned_data["permission"]))
            formset.new_objects.append(form.instance)
    for pattern, permission in puts:
        put(pattern, permission)


class PatternInline(admin.TabularInline):
    """(pattern, permission) rows; the owning admin saves them through services (save_formset)."""

    form = PatternForm
    fields = ["pattern", "permission"]
    extra = 1


class NamespaceGrantInline(PatternInline):
    model = NamespaceGrant
    verbose_name = "namespace grant"


class NamespaceAllowanceInline(PatternInline):
    model = NamespaceAllowance
    verbose_name = "namespace allowance"
    verbose_name_plural = "namespace allowances (what this user may grant to keys they create themselves)"


# --- API keys ----------------------------------------------------------------------------------------


class KeyStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "active"), ("expired", "expired"), ("revoked", "revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "active":
            return cast(ApiKeyQuerySet, queryset).active()
        if value == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=timezone.now())
        if value == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


READ_ONLY_KEY_TIMES = ("created_at", "last_used_at", "revoked_at")


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["owner", "name", "expires_at", "default_namespace"]

    def clean_expires_at(self) -> Any:
        value = self.cleaned_data.get("expires_at")
        # Only a new key must expire in the future; an operator may expire an existing key now.
        if self.instance._state.adding and value is not None and value <= timezone.now():
            raise ValidationError("The expiry must be in the future.")
        return value

    def clean_default_namespace(self) -> str:
        value = self.cleaned_data.get("default_namespace", "").strip()
        return str(domain_check(namespaces.validate, value)) if value else ""


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceModelAdmin):
    form = ApiKeyForm
    list_display = [
        "name",
        "prefix",
        "owner",
        "state",
        "grant_list",
        "default_namespace",
        "created_at",
        "last_used_at",
        "expires_at",
    ]
    list_filter = [KeyStateFilter, ("owner", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "prefix", "owner__username"]
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    inlines = [NamespaceGrantInline]
    actions = ["revoke_keys"]
    save_as = False

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("owner", "name", "expires_at", "default_namespace")
        return ("owner", "name", "prefix", "state", "default_namespace", "expires_at", *READ_ONLY_KEY_TIMES)

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        if obj is None:
            return ()
        # A key never changes owner: revoke it and create one for the new owner instead.
        return ("owner", "prefix", "state", *READ_ONLY_KEY_TIMES)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        return super().get_queryset(request).prefetch_related("grants")

    @admin.display(description="grants")
    def grant_list(self, obj: ApiKey) -> str:
        return ", ".join(sorted(str(grant) for grant in obj.grants.all())) or "-"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            # `obj` already holds the new values (the form wrote them); the service compares
            # against the stored row to audit what changed.
            stored = ApiKey.objects.select_related("owner").get(pk=obj.pk)
            services.api_key_update(
                key=stored,
                name=data["name"],
                expires_at=data["expires_at"],
                default_namespace=data["default_namespace"] or None,
                actor=request.user,
                source=SOURCE,
            )
            adopt(obj, stored)
            return
        # Grants from the inline are applied afterwards by save_formset, each its own audited
        # grant.added; the admin's transaction makes key and grants one unit.
        created = services.api_key_create(
            owner=data["owner"],
            name=data["name"],
            expires_at=data["expires_at"],
            default_namespace=data["default_namespace"] or None,
            actor=request.user,
            source=SOURCE,
        )
        adopt(obj, created.key)
        setattr(request, _NEW_SECRET_ATTR, created.secret)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        key: ApiKey = form.instance
        save_pattern_formset(
            formset,
            put=lambda pattern, permission: services.grant_set(
                key=key, pattern=pattern, permission=permission, actor=request.user, source=SOURCE
            ),
            remove=lambda pattern: services.grant_remove(key=key, pattern=pattern, actor=request.user, source=SOURCE),
        )

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None) -> HttpResponse:
        response = super().response_add(request, obj, post_url_continue)
        secret = getattr(request, _NEW_SECRET_ATTR, None)
        if secret:
            # Added only now that the whole add (inline grants included) has succeeded. A message
            # is shown once and then dropped; it travels in the signed, HttpOnly messages cookie
            # for the one redirect. Only the key's SHA-256 is stored.
            messages.success(
                request,
                format_html(
                    "The new key is <code>{}</code> — copy it now: it is shown only this once and "
                    "cannot be recovered later (only its hash is stored).",
                    secret,
                ),
            )
        return response

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = already = 0
        for key in queryset.select_related("owner"):
            if services.api_key_revoke(key=key, actor=request.user, source=SOURCE):
                revoked += 1
            else:
                already += 1
        text = f"Revoked {revoked} key{'s' if revoked != 1 else ''}."
        if already:
            text += f" {already} {'was' if already == 1 else 'were'} already revoked."
        self.message_user(request, text, messages.SUCCESS)

    def has_delete_permission(self, request: HttpRequest, obj: ApiKey | None = None) -> bool:
        # Keys are revoked, never deleted: a revoked key keeps its row, so audit events keep
        # pointing at it and its prefix can never be reissued. (A side effect: the admin will not
        # delete a user who owns keys. Deactivate the user instead, which also stops every one
        # of their keys at once.)
        return False


# --- users: allowances and their keys ------------------------------------------------------------


class UserApiKeyInline(admin.TabularInline):
    """The user's keys, read-only: keys are created and changed on their own admin page."""

    model = ApiKey
    fk_name = "owner"
    formset = LimitedInlineFormSet
    fields = ("name", "prefix", "state", "default_namespace", "created_at", "last_used_at", "expires_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    verbose_name_plural = (
        f"API keys (the {LimitedInlineFormSet.max_rows} newest; the user list's API keys column links to all)"
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


admin.site.unregister(User)


@admin.register(User)
class OperatorUserAdmin(ServiceModelAdmin, UserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "keys")
    inlines = [NamespaceAllowanceInline, UserApiKeyInline]

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        # Django's two-step user creation: allowances and keys come after the user exists.
        return super().get_inline_instances(request, obj) if obj is not None else []

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        keys = ApiKey.objects.filter(owner=OuterRef("pk")).order_by().values("pk")
        return super().get_queryset(request).annotate(key_count=SubqueryCount(keys))

    @admin.display(description="API keys", ordering="key_count")
    def keys(self, obj: Any) -> str:
        url = reverse("admin:access_apikey_changelist") + f"?owner__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, obj.key_count)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        user: AbstractBaseUser = form.instance
        if formset.model is not NamespaceAllowance:
            # The key inline is read-only: nothing to save.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            return
        save_pattern_formset(
            formset,
            put=lambda pattern, permission: services.allowance_set(
                user=user, pattern=pattern, permission=permission, actor=request.user, source=SOURCE
            ),
            remove=lambda pattern: services.allowance_remove(
                user=user, pattern=pattern, actor=request.user, source=SOURCE
            ),
        )


# --- the audit log -----------------------------------------------------------------------------------


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Append-only: operators read it here; only the access services write it."""

    list_display = ["created_at", "actor_name", "source", "action", "key_prefix", "subject", "details"]
    list_filter = ["action", "source"]
    search_fields = ["key_prefix", "actor_name", "subject"]
    # The drill-down runs SELECT DISTINCT over a date truncation (a Python function on SQLite)
    # of every event, so the page grows with the log (bench/RESULTS.md, "Design measurements").
    # Events are written only when keys, grants and allowances change, never per request, so the
    # log stays small; drop the hierarchy if a deployment's log does not.
    date_hierarchy = "created_at"
    show_full_result_count = False

    @admin.display(description="detail")
    def details(self, obj: AuditEvent) -> str:
        items: Iterable[tuple[str, Any]] = sorted(obj.detail.items()) if isinstance(obj.detail, dict) else []
        return format_html_join(", ", "{}={}", items) or "-"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


# --- connected OAuth apps ------------------------------------------------------------------------------


@admin.register(OAuthConsent)
class OAuthConsentAdmin(admin.ModelAdmin):
    """Users' connected apps (consents). Read-only; the one write is the "revoke" action, through
    `services.oauth_revoke` (consent and all the app's tokens for that user, audited "admin")."""

    list_display = ["user", "application", "grant_list", "created_at", "updated_at"]
    list_select_related = ["user", "application"]
    search_fields = ["user__username", "application__name", "application__client_id"]
    readonly_fields = ["user", "application", "grants", "created_at", "updated_at"]
    actions = ["revoke"]

    @admin.display(description="namespaces")
    def grant_list(self, obj: OAuthConsent) -> str:
        return ", ".join(str(grant) for grant in obj.to_grants()) or "-"

    @admin.action(description="Revoke the selected connected apps (consent and tokens)", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[OAuthConsent]) -> None:
        revoked = 0
        for consent in queryset.select_related("user", "application"):
            revoked += services.oauth_revoke(
                user=consent.user, application=consent.application, actor=request.user, source=SOURCE
            )
        self.message_user(
            request, f"Revoked {revoked} connected app(s): their tokens no longer work.", messages.SUCCESS
        )

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm("access.delete_oauthconsent"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OAuthConsent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: OAuthConsent | None = None) -> bool:
        return False  # deleting the row would leave the app's tokens alive: use the revoke action
