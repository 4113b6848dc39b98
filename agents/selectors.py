"""Reads of the marketplace: finding agents, what a user holds, their ledger, and the audit that
proves every balance is the sum of its ledger entries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypedDict

from django.conf import settings
from django.db.models import Case, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from agents.models import CREDIT_PLACES, ZERO, Agent, LedgerEntry, TokenBalance, TokenHold, Wallet
from kernel.sql import POSTGRES

# The marketplace seed's limits: at most 10 search results and 10 agent tools.
MAX_SEARCH_RESULTS = 10
MAX_AGENT_TOOLS = 10
PRICE_UNIT = "1000"


def hold_lifetime() -> timedelta:
    """How long a hold can be in flight: every attempt the provider may take, plus a margin. An
    older hold belongs to a call whose process died; it no longer counts against the balance."""
    attempts = int(settings.MEMORYHUB_LLM_RETRIES) + 1
    return timedelta(seconds=int(settings.MEMORYHUB_LLM_TIMEOUT_SECONDS) * attempts + 60)


def held_tokens(user_id: int, agent_id: int) -> int:
    cutoff = timezone.now() - hold_lifetime()
    held = TokenHold.objects.filter(user_id=user_id, agent_id=agent_id, created_at__gte=cutoff).aggregate(
        total=Sum("tokens")
    )["total"]
    return int(held or 0)


class AgentCard(TypedDict):
    id: int
    name: str
    description: str
    price: float | int
    priceUnit: str
    baseModel: str
    tags: list[str]
    hasPurchased: bool
    availableTokens: int


def price_number(price: Decimal) -> float | int:
    """A price as JSON shows it: 1 rather than "1.0000", 0.5 rather than "0.5000"."""
    return int(price) if price == price.to_integral_value() else float(price)


def _matches(terms: list[str]) -> Q:
    condition = Q()
    for term in terms:
        condition &= (
            Q(name__icontains=term)
            | Q(description__icontains=term)
            | Q(base_model__icontains=term)
            # tags is a JSON list, searched in its text: on SQLite the stored JSON text, where
            # non-ASCII is \u-escaped; on PostgreSQL jsonb's text form, which keeps it as it is.
            # Look for the term as it is written there.
            | Q(tags__icontains=json.dumps(term, ensure_ascii=not POSTGRES)[1:-1])
        )
    return condition


def search_agents(*, user_id: int, query: str, limit: int = MAX_SEARCH_RESULTS) -> list[AgentCard]:
    """Published agents whose name, description, base model or tags contain every word of
    `query` (case-insensitive; an empty query lists them all), name matches first."""
    terms = query.split()
    matching = Agent.objects.filter(_matches(terms), published=True)
    if terms:
        matching = matching.annotate(
            name_match=Case(When(name__icontains=terms[0], then=Value(0)), default=Value(1))
        ).order_by("name_match", "id")
    else:
        matching = matching.order_by("id")
    chosen = list(matching[:limit])
    balances = {
        balance.agent_id: balance.tokens
        for balance in TokenBalance.objects.filter(user_id=user_id, agent__in=[agent.pk for agent in chosen])
    }
    return [card(agent, balances.get(agent.pk), user_id) for agent in chosen]


def card(agent: Agent, tokens: int | None, user_id: int) -> AgentCard:
    return {
        "id": agent.pk,
        "name": agent.name,
        "description": agent.description,
        "price": price_number(agent.price_per_1k),
        "priceUnit": PRICE_UNIT,
        "baseModel": agent.base_model,
        "tags": [str(tag) for tag in agent.tags] if isinstance(agent.tags, list) else [],
        "hasPurchased": tokens is not None,
        "availableTokens": max((tokens or 0) - held_tokens(user_id, agent.pk), 0) if tokens else 0,
    }


def held_agents(*, user_id: int, limit: int = MAX_AGENT_TOOLS) -> list[TokenBalance]:
    """The balances behind a user's agent tools: published agents they hold tokens for, the most
    recently topped up or used first, at most `limit`."""
    return list(
        TokenBalance.objects.filter(user_id=user_id, tokens__gt=0, agent__published=True)
        .select_related("agent")
        .order_by("-updated_at", "-id")[:limit]
    )


def balance_of(*, user_id: int, agent_id: int) -> int:
    balance = TokenBalance.objects.filter(user_id=user_id, agent_id=agent_id).values_list("tokens", flat=True).first()
    return int(balance or 0)


@dataclass(frozen=True)
class WalletSummary:
    credits: Decimal
    balances: list[TokenBalance]


def wallet_summary(*, user_id: int) -> WalletSummary:
    wallet = Wallet.objects.filter(user_id=user_id).first()
    balances = list(TokenBalance.objects.filter(user_id=user_id).select_related("agent").order_by("agent__name"))
    return WalletSummary(credits=wallet.credits if wallet else ZERO, balances=balances)


def ledger(*, user_id: int) -> QuerySet[LedgerEntry]:
    """A user's ledger, newest first (page it with Django's Paginator)."""
    return LedgerEntry.objects.filter(user_id=user_id).select_related("agent").order_by("-id")


def _credits(total: Any) -> Decimal:
    # SQLite sums decimal columns as floating point; every amount is a whole number of the
    # smallest unit, so rounding to it recovers the exact sum.
    return Decimal(str(total or 0)).quantize(Decimal(1).scaleb(-CREDIT_PLACES))


def audit(*, user_id: int | None = None) -> list[dict[str, Any]]:
    """Every wallet and token balance that disagrees with the sum of its ledger entries, or is
    negative (empty when the books are right). `user_id` limits it to one user."""
    wallets = Wallet.objects.all() if user_id is None else Wallet.objects.filter(user_id=user_id)
    entries = LedgerEntry.objects.all() if user_id is None else LedgerEntry.objects.filter(user_id=user_id)
    credit_sums = {row["user_id"]: row["total"] for row in entries.values("user_id").annotate(total=Sum("credits"))}
    token_sums = {
        (row["user_id"], row["agent_id"]): row["total"]
        for row in entries.exclude(agent=None).values("user_id", "agent_id").annotate(total=Sum("tokens"))
    }
    problems: list[dict[str, Any]] = []
    for wallet in wallets:
        expected = _credits(credit_sums.pop(wallet.user_id, None))
        if wallet.credits != expected or wallet.credits < 0:
            problems.append({"user_id": wallet.user_id, "credits": str(wallet.credits), "ledger": str(expected)})
    problems += [
        {"user_id": user, "credits": None, "ledger": str(total)} for user, total in credit_sums.items() if total
    ]
    balances = TokenBalance.objects.all() if user_id is None else TokenBalance.objects.filter(user_id=user_id)
    for balance in balances:
        expected_tokens = token_sums.pop((balance.user_id, balance.agent_id), None) or 0
        if balance.tokens != expected_tokens or balance.tokens < 0:
            problems.append(
                {
                    "user_id": balance.user_id,
                    "agent_id": balance.agent_id,
                    "tokens": balance.tokens,
                    "ledger": expected_tokens,
                }
            )
    problems += [
        {"user_id": user, "agent_id": agent, "tokens": None, "ledger": total}
        for (user, agent), total in token_sums.items()
        if total
    ]
    return problems
