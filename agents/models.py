"""The marketplace: agents users can call, wallets of credits, per-agent token balances, and the
append-only ledger every balance is the sum of.

Money-like rules, enforced by the database and not only by the code:
- `Wallet.credits` and `TokenBalance.tokens` are never negative (CHECK constraints), whatever the
  concurrency: every change runs in one transaction that holds the wallet or balance it decides on
  (BEGIN IMMEDIATE on SQLite, SELECT ... FOR UPDATE row locks on PostgreSQL; `agents/services.py`).
- `LedgerEntry` rows are never updated or deleted (SQL triggers raise), and each balance equals
  the sum of its entries (`agents.selectors.audit` checks it).
- Tokens held by calls in flight are `TokenHold` rows, not ledger entries: a call reserves what
  it may spend before asking the provider and is charged what the provider reports afterwards.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, URLValidator
from django.db import models

CREDIT_DIGITS = 20
CREDIT_PLACES = 4
ZERO = Decimal("0")


def credits_field(**options: object) -> models.DecimalField:
    return models.DecimalField(max_digits=CREDIT_DIGITS, decimal_places=CREDIT_PLACES, **options)  # type: ignore[arg-type]


class Agent(models.Model):
    class Provider(models.TextChoices):
        DEFAULT = "", "Server default"
        OPENAI = "openai", "OpenAI-compatible HTTP"
        EXTRACTIVE = "extractive", "Extractive (offline, no generation)"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    base_model = models.CharField(
        max_length=200, blank=True, default="", help_text="The model the provider runs, e.g. deepseek-chat."
    )
    system_prompt = models.TextField(blank=True, default="")
    price_per_1k = credits_field(
        default=Decimal("1"),
        validators=[MinValueValidator(ZERO)],
        help_text="Credits per 1,000 tokens.",
    )
    tags = models.JSONField(default=list, blank=True)
    published = models.BooleanField(default=False, help_text="Only published agents can be found, bought and called.")
    # Provider settings; empty fields fall back to the server's MEMORYHUB_LLM_* settings.
    provider = models.CharField(max_length=16, choices=Provider.choices, blank=True, default="")
    # A CharField with a URL validator rather than URLField, whose form field guesses a scheme.
    provider_url = models.CharField(
        max_length=500,
        blank=True,
        default="",
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="OpenAI-compatible base URL, e.g. http://localhost:11434/v1",
    )
    provider_api_key = models.CharField(max_length=500, blank=True, default="")
    max_tokens = models.PositiveIntegerField(
        default=1024, validators=[MinValueValidator(1)], help_text="Most tokens one answer may have."
    )
    temperature = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(price_per_1k__gte=0), name="agent_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class Wallet(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallet")
    credits = credits_field(default=ZERO)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(credits__gte=0), name="wallet_credits_not_negative")]

    def __str__(self) -> str:
        return f"{self.user} wallet: {self.credits} credits"


class TokenBalance(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="token_balances")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="balances")
    tokens = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "agent"], name="one_balance_per_user_agent"),
            models.CheckConstraint(condition=models.Q(tokens__gte=0), name="balance_tokens_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.user} / {self.agent}: {self.tokens} tokens"


class TokenHold(models.Model):
    """Tokens reserved by one agent call in flight; deleted when the call is settled. A hold
    older than the provider could take (a process died mid-call) no longer counts."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+")
    tokens = models.BigIntegerField(validators=[MinValueValidator(1)])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "agent"], name="hold_by_balance")]
        constraints = [models.CheckConstraint(condition=models.Q(tokens__gt=0), name="hold_tokens_positive")]

    def __str__(self) -> str:
        return f"hold of {self.tokens} tokens for {self.agent_id}"


class LedgerEntry(models.Model):
    """One change of a user's credits and/or tokens. Append-only (triggers refuse UPDATE and
    DELETE); `credits_after` / `tokens_after` are the balances right after it."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        USAGE = "usage", "Usage"
        GRANT = "grant", "Grant"
        REFUND = "refund", "Refund"

    # PROTECT: a user or agent with money history is deactivated / unpublished, not deleted.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ledger_entries")
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_entries")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    credits = credits_field(default=ZERO, help_text="Change of the wallet (negative: spent).")
    tokens = models.BigIntegerField(default=0, help_text="Change of the agent token balance.")
    credits_after = credits_field()
    tokens_after = models.BigIntegerField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True, default="")
    # Who caused it: "key:<prefix>", "admin:<username>", "command".
    actor = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "-id"], name="ledger_by_user")]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"
