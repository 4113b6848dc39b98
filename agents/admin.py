"""The operator console for the marketplace: agents, wallets, token balances and the ledger.

- Agents are configuration, edited here with the ORM (there is no agent service; nothing about
  money changes when an agent does). The provider's API key is write-only: the page never renders
  the stored key, and a blank key field keeps it.
- Money moves only through `agents.services`: operators grant or refund credits with the
  "Grant credits" form (`admin/agents/wallet/grant/`), which calls the `grant_credits` operation with
  `actor="admin:<username>"`. Wallets, token balances and ledger entries are read-only here: the
  ledger is append-only (SQL triggers refuse UPDATE and DELETE) and each balance is the sum of it.
- An agent with ledger history cannot be deleted (the ledger PROTECTs it): the admin says to
  unpublish it instead rather than fail.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from access.operations import perform
from access.selectors import operator_access
from agents import services
from agents.exceptions import ProviderUnavailable
from agents.models import CREDIT_DIGITS, CREDIT_PLACES, Agent, LedgerEntry, TokenBalance, Wallet
from agents.providers import provider_for
from kernel.admin_tools import ReadOnlyAdmin
from kernel.errors import DomainError

User = get_user_model()

MAX_TAGS = 20
MAX_TAG_LENGTH = 50
MAX_TEMPERATURE = 2.0
# How many users one grant may name: a grant is one transaction, and its messages one page.
MAX_GRANT_USERS = 100


def actor(request: HttpRequest) -> str:
    return f"admin:{request.user.get_username()}"


# --- agents ------------------------------------------------------------------------------------------


class TagsField(forms.CharField):
    """A JSON list of tags edited as comma-separated text: "code, review" <-> ["code", "review"].
    Blank items are dropped, repeats kept once, order kept."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(str(tag) for tag in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        tags = [tag.strip() for tag in text.split(",")]
        return list(dict.fromkeys(tag for tag in tags if tag))

    def validate(self, value: Any) -> None:
        super().validate(value)
        if len(value) > MAX_TAGS:
            raise ValidationError(f"At most {MAX_TAGS} tags, not {len(value)}.")
        too_long = [tag for tag in value if len(tag) > MAX_TAG_LENGTH]
        if too_long:
            raise ValidationError(f"A tag has at most {MAX_TAG_LENGTH} characters: {too_long[0][:60]}…")

    def has_changed(self, initial: Any, data: Any) -> bool:
        return self.to_python(data) != (initial if isinstance(initial, list) else self.to_python(initial or ""))


class WriteOnlySecretField(forms.CharField):
    """A secret the page never shows (the input is always rendered empty); blank means "keep the
    stored value" (`AgentForm.clean` puts it back), so it only counts as changed when typed."""

    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})

    def has_changed(self, initial: Any, data: Any) -> bool:
        return bool(data)


class AgentForm(forms.ModelForm):
    tags = TagsField(
        required=False,
        help_text="Comma-separated, e.g. “code, review”. Searching agents matches tags.",
        widget=forms.TextInput(attrs={"size": 60}),
    )
    provider_url = forms.URLField(
        label="Provider URL",
        required=False,
        assume_scheme="https",
        max_length=Agent._meta.get_field("provider_url").max_length,
        help_text=Agent._meta.get_field("provider_url").help_text,
    )
    provider_api_key = WriteOnlySecretField(
        label="Provider API key",
        required=False,
        max_length=Agent._meta.get_field("provider_api_key").max_length,
        help_text="Sent to the provider URL as a bearer token. Never shown again once saved.",
    )
    clear_provider_api_key = forms.BooleanField(
        label="Remove the stored key", required=False, help_text="Tick to delete the stored API key."
    )

    class Meta:
        model = Agent
        fields = [
            "name",
            "description",
            "tags",
            "price_per_1k",
            "published",
            "base_model",
            "system_prompt",
            "max_tokens",
            "temperature",
            "provider",
            "provider_url",
            "provider_api_key",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        key_field = self.fields["provider_api_key"]
        if self.instance.provider_api_key:
            key_field.help_text = (
                "A key is stored (not shown). Leave blank to keep it, type a new one to replace it. "
                "Sent to the provider URL as a bearer token."
            )
        else:
            # Nothing to remove.
            self.fields.pop("clear_provider_api_key", None)

    def clean_temperature(self) -> float | None:
        value: float | None = self.cleaned_data.get("temperature")
        if value is not None and not 0 <= value <= MAX_TEMPERATURE:
            raise ValidationError(f"The temperature is between 0 and {MAX_TEMPERATURE}.")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        stored_key = self.instance.provider_api_key
        if cleaned.get("clear_provider_api_key"):
            cleaned["provider_api_key"] = ""
        elif not cleaned.get("provider_api_key"):
            cleaned["provider_api_key"] = stored_key
            url = cleaned.get("provider_url", "")
            if stored_key and not self.instance._state.adding and url != self.instance.provider_url:
                # Otherwise whoever can edit an agent could point it at their own server and be sent the key.
                self.add_error(
                    "provider_api_key",
                    "The provider URL changed: enter the API key for the new URL (or tick “Remove the stored key”).",
                )
        self._check_provider(cleaned)
        return cleaned

    def _check_provider(self, cleaned: dict[str, Any]) -> None:
        """The provider must be buildable as `agents.providers.provider_for` builds it at call time,
        with this agent's settings and the server's fallbacks (MEMORYHUB_LLM_*)."""
        if any(name in self.errors for name in ("provider", "provider_url", "base_model", "max_tokens")):
            return
        provider, url = cleaned.get("provider", ""), cleaned.get("provider_url", "")
        model = cleaned.get("base_model", "")
        kind = provider or ("openai" if url else settings.MEMORYHUB_LLM_PROVIDER)
        if kind != Agent.Provider.OPENAI:
            return
        if not url and not settings.MEMORYHUB_LLM_URL:
            self.add_error(
                "provider_url",
                "An OpenAI-compatible provider needs a base URL: enter one here, or set MEMORYHUB_LLM_URL on the server.",
            )
        if not model and not settings.MEMORYHUB_LLM_MODEL:
            self.add_error(
                "base_model",
                "An OpenAI-compatible provider needs a model: enter the base model here, or set MEMORYHUB_LLM_MODEL "
                "on the server.",
            )
        if "provider_url" in self.errors or "base_model" in self.errors:
            return
        candidate = Agent(
            name=cleaned.get("name", ""),
            provider=provider,
            provider_url=url,
            base_model=model,
            provider_api_key=cleaned.get("provider_api_key", ""),
            max_tokens=cleaned.get("max_tokens") or 1,
        )
        try:
            provider_for(candidate)
        except ProviderUnavailable as error:
            self.add_error("provider_url", f"The provider cannot be used: {error.message}")


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentForm
    list_display = ["id", "name", "base_model", "price_per_1k", "published", "tag_list", "provider", "updated_at"]
    list_display_links = ["id", "name"]
    list_filter = ["published", "provider"]
    search_fields = ["name", "description", "base_model"]
    actions = ["publish", "unpublish", "delete_selected"]
    readonly_fields = ["created_at", "updated_at"]
    save_on_top = True

    def get_fieldsets(self, request: HttpRequest, obj: Agent | None = None) -> Any:
        provider_fields = ["provider", "provider_url", "provider_api_key"]
        if obj is not None and obj.provider_api_key:
            provider_fields.append("clear_provider_api_key")
        fieldsets: list[tuple[str | None, dict[str, Any]]] = [
            ("Listing", {"fields": ["name", "description", "tags", "price_per_1k", "published"]}),
            ("Behaviour", {"fields": ["base_model", "system_prompt", "max_tokens", "temperature"]}),
            (
                "Provider",
                {
                    "fields": provider_fields,
                    "description": "Empty fields fall back to the server's MEMORYHUB_LLM_* settings. "
                    "An agent with its own URL is OpenAI-compatible unless it says otherwise.",
                },
            ),
        ]
        if obj is not None:
            fieldsets.append(("Record", {"fields": ["created_at", "updated_at"]}))
        return fieldsets

    @admin.display(description="tags")
    def tag_list(self, obj: Agent) -> str:
        return ", ".join(str(tag) for tag in obj.tags) if isinstance(obj.tags, list) and obj.tags else "-"

    # Publishing flips one flag; the provider is checked first so a listed agent can be called.
    @admin.action(description="Publish selected agents", permissions=["change"])
    def publish(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        count, broken = perform(
            operator_access(request.user), "publish_agents", agent_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(request, f"Published {count} agent{'s' if count != 1 else ''}.", messages.SUCCESS)
        if broken:
            self.message_user(
                request, "Not published, their provider cannot be used: " + "; ".join(broken), messages.ERROR
            )

    @admin.action(description="Unpublish selected agents", permissions=["change"])
    def unpublish(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        # Unpublished agents disappear from search and tools; balances and ledger stay.
        count = perform(
            operator_access(request.user), "unpublish_agents", agent_ids=list(queryset.values_list("pk", flat=True))
        )
        self.message_user(request, f"Unpublished {count} agent{'s' if count != 1 else ''}.", messages.SUCCESS)

    # --- deletion: only agents without money history ---

    @staticmethod
    def _has_history(agent_ids: Any) -> QuerySet[Agent]:
        return Agent.objects.filter(pk__in=agent_ids, ledger_entries__isnull=False).distinct()

    def has_delete_permission(self, request: HttpRequest, obj: Agent | None = None) -> bool:
        if obj is not None and self._has_history([obj.pk]).exists():
            return False  # hides the Delete link; delete_view explains
        return super().has_delete_permission(request, obj)

    def _refuse_delete(self, request: HttpRequest, agents: list[Agent]) -> None:
        names = ", ".join(str(agent) for agent in agents)
        self.message_user(
            request,
            f"{names} {'has' if len(agents) == 1 else 'have'} ledger history and cannot be deleted "
            "(the ledger keeps every purchase and call): unpublish it instead.",
            messages.ERROR,
        )

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        agent = self.get_object(request, object_id)
        if agent is not None and self._has_history([agent.pk]).exists():
            self._refuse_delete(request, [agent])
            return HttpResponseRedirect(reverse("admin:agents_agent_change", args=[agent.pk]))
        return super().delete_view(request, object_id, extra_context)

    @admin.action(description="Delete selected agents", permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet[Agent]) -> HttpResponse | None:
        protected = list(self._has_history(queryset.values("pk")))
        if protected:
            self._refuse_delete(request, protected)
            return None
        return django_delete_selected(self, request, queryset)


# --- wallets and the grant form -------------------------------------------------------------------------


class GrantCreditsForm(forms.Form):
    usernames = forms.CharField(
        label="Users",
        help_text="Usernames, separated by commas or spaces. A user without a wallet gets one.",
        widget=forms.TextInput(attrs={"size": 60, "autocomplete": "off"}),
    )
    credits = forms.DecimalField(
        max_digits=CREDIT_DIGITS,
        decimal_places=CREDIT_PLACES,
        min_value=Decimal(1).scaleb(-CREDIT_PLACES),
        max_value=services.MAX_CREDIT_GRANT,
        help_text=f"Added to each user's wallet; up to {CREDIT_PLACES} decimal places.",
    )
    kind = forms.ChoiceField(
        choices=[(LedgerEntry.Kind.GRANT, "Grant"), (LedgerEntry.Kind.REFUND, "Refund")],
        initial=LedgerEntry.Kind.GRANT,
        widget=forms.RadioSelect,
    )
    note = forms.CharField(
        required=False,
        max_length=LedgerEntry._meta.get_field("note").max_length,
        help_text="Shown to the user in their ledger, e.g. “welcome credits” or “refund for a failed call”.",
        widget=forms.TextInput(attrs={"size": 60}),
    )

    def clean_usernames(self) -> list[Any]:
        names = list(dict.fromkeys(self.cleaned_data["usernames"].replace(",", " ").split()))
        if not names:
            raise ValidationError("Name at least one user.")
        if len(names) > MAX_GRANT_USERS:
            raise ValidationError(f"At most {MAX_GRANT_USERS} users at once.")
        users = {user.get_username(): user for user in User.objects.filter(**{f"{User.USERNAME_FIELD}__in": names})}
        unknown = [name for name in names if name not in users]
        if unknown:
            raise ValidationError(f"No such user: {', '.join(unknown)}.")
        return [users[name] for name in names]


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    """Wallets are read-only: credits change only with a ledger entry, through the grant form."""

    list_display = ["user", "credits", "updated_at", "ledger_link"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    ordering = ["user__username"]
    fields = ["user", "credits", "updated_at"]
    actions = ["grant_to_selected"]
    change_list_template = "agents/admin/wallet_change_list.html"
    change_form_template = "agents/admin/wallet_change_form.html"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Wallet | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Wallet | None = None) -> bool:
        return False

    def has_grant_permission(self, request: HttpRequest) -> bool:
        """Granting credits is changing wallets: the `agents.change_wallet` permission (superusers have it)."""
        return request.user.has_perm("agents.change_wallet")

    @admin.display(description="ledger")
    def ledger_link(self, obj: Wallet) -> str:
        url = reverse("admin:agents_ledgerentry_changelist") + f"?user__id__exact={obj.user_id}"
        return format_html('<a href="{}">entries</a>', url)

    def get_urls(self) -> list[URLPattern]:
        grant = path("grant/", self.admin_site.admin_view(self.grant_view), name="agents_wallet_grant")
        return [grant, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {"can_grant": self.has_grant_permission(request), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {"can_grant": self.has_grant_permission(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    @admin.action(description="Grant credits to the selected users", permissions=["grant"])
    def grant_to_selected(self, request: HttpRequest, queryset: QuerySet[Wallet]) -> HttpResponse:
        names = queryset.order_by("user__username").values_list("user__username", flat=True)
        return HttpResponseRedirect(reverse("admin:agents_wallet_grant") + "?" + _users_query(names))

    def grant_view(self, request: HttpRequest) -> HttpResponse:
        """GET: the grant form (`?users=alice,bob` fills it in). POST: grant or refund the credits
        to every named user through the `grant_credits` operation, in one transaction (all or none),
        then back to the wallet list with one message per user."""
        if not self.has_grant_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = GrantCreditsForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    with transaction.atomic():
                        entries = [
                            (
                                user,
                                perform(
                                    operator_access(request.user),
                                    "grant_credits",
                                    user_id=user.pk,
                                    credits=data["credits"],
                                    kind=data["kind"],
                                    note=data["note"],
                                    actor=actor(request),
                                ),
                            )
                            for user in data["usernames"]
                        ]
                except DomainError as error:
                    form.add_error(None, error.message)
                else:
                    verb = "Granted" if data["kind"] == LedgerEntry.Kind.GRANT else "Refunded"
                    for user, entry in entries:
                        self.message_user(
                            request,
                            f"{verb} {entry.credits.normalize():f} credits to {user.get_username()}: "
                            f"the wallet now holds {entry.credits_after.normalize():f}.",
                            messages.SUCCESS,
                        )
                    return HttpResponseRedirect(reverse("admin:agents_wallet_changelist"))
        else:
            form = GrantCreditsForm(initial={"usernames": request.GET.get("users", "").replace(",", ", ")})
        context = {
            **self.admin_site.each_context(request),
            "title": "Grant credits",
            "opts": self.opts,
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "agents/admin/grant_credits.html", context)


def _users_query(usernames: Any) -> str:
    return urlencode({"users": ",".join(usernames)})


# --- token balances and the ledger: read-only ------------------------------------------------------------


@admin.register(TokenBalance)
class TokenBalanceAdmin(ReadOnlyAdmin):
    list_display = ["user", "agent", "tokens", "updated_at"]
    list_select_related = ["user", "agent"]
    list_filter = [("agent", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__username"]
    show_full_result_count = False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    """Append-only: SQL triggers refuse UPDATE and DELETE, so the admin offers neither."""

    list_display = ["id", "created_at", "user", "kind", "agent", "credits", "tokens", "credits_after", "tokens_after"]
    list_display_links = ["id", "created_at"]
    list_select_related = ["user", "agent"]
    list_filter = ["kind", ("agent", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__username", "note", "actor"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = [
        "user",
        "kind",
        "agent",
        "credits",
        "tokens",
        "credits_after",
        "tokens_after",
        "note",
        "actor",
        "created_at",
    ]
