"""Every write to wallets, token balances and the ledger: grants, purchases and metered agent calls.

Each change is one transaction that locks the rows it decides on before it reads them, so two
purchases against one wallet, in one process or in several (on several nodes), run one after the
other and neither can spend what the other already spent. On SQLite the transaction is BEGIN
IMMEDIATE (the database's `transaction_mode`): it takes the database's write lock up front. On
PostgreSQL, where writers run side by side, the wallet or balance row is read with SELECT ... FOR
UPDATE (`_locked`): a second debit waits for the first to commit and then reads what it left. The
balance rows change only together with the ledger entry that explains the change, and CHECK
constraints refuse a negative balance even if this code were wrong.

An agent call cannot know its cost before the provider answers, so it reserves first: a
`TokenHold` of the most it may spend (its prompt plus the agent's answer limit, capped by what
is available), then asks the provider with a completion limit that fits the hold, then charges
what the provider reports (never more than the hold) and drops the hold. Concurrent calls each
reserve from what the others left, so together they cannot spend more than the balance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any, TypeVar

from django.db import transaction
from django.db.models import F, Model, QuerySet
from django.utils import timezone

from agents import signals
from agents.exceptions import (
    AgentNotFound,
    InsufficientCredits,
    InsufficientTokens,
    InvalidArgument,
    ProviderUnavailable,
)
from agents.models import CREDIT_PLACES, Agent, LedgerEntry, TokenBalance, TokenHold, Wallet
from agents.providers import ChatMessage, ChatRequest, Completion, provider_for
from agents.providers.base import estimate_prompt_tokens
from agents.selectors import held_tokens, hold_lifetime
from kernel.sql import POSTGRES

logger = logging.getLogger(__name__)
M = TypeVar("M", bound=Model)

# Bounds that keep amounts meaningful (and far from integer and decimal overflow).
MAX_TOKEN_PURCHASE = 1_000_000_000
MAX_CREDIT_GRANT = Decimal("1000000000")
MAX_PROMPT_CHARS = 100_000
# Fewest answer tokens a call must be able to afford to be worth making.
MIN_COMPLETION_TOKENS = 16
QUANTUM = Decimal(1).scaleb(-CREDIT_PLACES)


def published_agent(agent_id: Any) -> Agent:
    """The published agent with this id; AgentNotFound for anything else (unknown, unpublished,
    not an integer)."""
    if isinstance(agent_id, bool) or not isinstance(agent_id, int | float | str):
        raise AgentNotFound(agent_id)
    try:
        number = int(agent_id)
        if isinstance(agent_id, float) and agent_id != number:
            raise ValueError
    except (ValueError, OverflowError):
        raise AgentNotFound(agent_id) from None
    agent = Agent.objects.filter(pk=number, published=True).first()
    if agent is None:
        raise AgentNotFound(number)
    return agent


def purchase_cost(agent: Agent, tokens: int) -> Decimal:
    """What `tokens` of the agent cost: the price per 1,000 tokens, pro rata, rounded up to the
    smallest credit unit (a purchase never costs less than its tokens are worth)."""
    return (agent.price_per_1k * tokens / 1000).quantize(QUANTUM, rounding=ROUND_CEILING)


def credits_text(amount: Decimal) -> str:
    """1000.0000 → "1000", 2.5000 → "2.5": what people read."""
    return format(amount.normalize(), "f")


def _for_update(rows: QuerySet[M]) -> QuerySet[M]:
    """`rows` read with SELECT ... FOR UPDATE on PostgreSQL: each row read stays locked until the
    transaction ends (a concurrent debit waits), and its values are the latest committed ones. On
    SQLite the transaction already holds the database's write lock: `rows` unchanged."""
    return rows.select_for_update() if POSTGRES else rows


def _wallet(user_id: int, *, lock: bool = False) -> Wallet:
    wallet, _ = Wallet.objects.get_or_create(user_id=user_id)
    if lock and POSTGRES:
        wallet = _for_update(Wallet.objects.filter(pk=wallet.pk)).get()
    return wallet


def _balance(user_id: int, agent: Agent) -> TokenBalance:
    balance, _ = TokenBalance.objects.get_or_create(user_id=user_id, agent=agent)
    return balance


# --- credits ---------------------------------------------------------------------------------------


def grant_credits(
    *, user_id: int, credits: Any, kind: str = LedgerEntry.Kind.GRANT, note: str = "", actor: str = ""
) -> LedgerEntry:
    """Add credits to a user's wallet (an operator's grant or refund)."""
    if kind not in (LedgerEntry.Kind.GRANT, LedgerEntry.Kind.REFUND):
        raise InvalidArgument(f"kind must be 'grant' or 'refund', not {kind!r}")
    try:
        amount = Decimal(str(credits))
    except InvalidOperation:
        raise InvalidArgument(f"credits must be a number, not {credits!r}") from None
    if not amount.is_finite() or amount <= 0 or amount > MAX_CREDIT_GRANT:
        raise InvalidArgument(f"credits must be more than 0 and at most {MAX_CREDIT_GRANT}, not {credits}")
    if amount != amount.quantize(QUANTUM):
        raise InvalidArgument(f"credits have at most {CREDIT_PLACES} decimal places, not {credits}")
    with transaction.atomic():
        wallet = _wallet(user_id)
        Wallet.objects.filter(pk=wallet.pk).update(credits=F("credits") + amount, updated_at=timezone.now())
        wallet.refresh_from_db(fields=["credits"])
        entry = LedgerEntry.objects.create(
            user_id=user_id, kind=kind, credits=amount, credits_after=wallet.credits, note=note[:500], actor=actor
        )
    return entry


# --- purchases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Purchase:
    agent: Agent
    tokens: int
    cost: Decimal
    credits_after: Decimal
    tokens_after: int
    entry: LedgerEntry


def parse_token_amount(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"token_amount must be a whole number of tokens, not {value!r}", field="token_amount")
    if isinstance(value, float) and not value.is_integer():
        raise InvalidArgument(f"token_amount must be a whole number of tokens, not {value}", field="token_amount")
    amount = int(value)
    if not 1 <= amount <= MAX_TOKEN_PURCHASE:
        raise InvalidArgument(
            f"token_amount must be between 1 and {MAX_TOKEN_PURCHASE:,}, not {amount}", field="token_amount"
        )
    return amount


def buy_tokens(*, user_id: int, actor: str, agent_id: Any, token_amount: Any) -> Purchase:
    """Spend the user's credits on tokens of a published agent. Raises InsufficientCredits
    (with `cost` and `credits` in details) when the wallet cannot pay; nothing changes then."""
    agent = published_agent(agent_id)
    amount = parse_token_amount(token_amount)
    cost = purchase_cost(agent, amount)
    with transaction.atomic():
        wallet = _wallet(user_id, lock=True)
        if wallet.credits < cost:
            raise InsufficientCredits(
                f"Insufficient credits: {amount} tokens of Agent {agent.pk} cost {credits_text(cost)} credits and "
                f"your wallet holds {credits_text(wallet.credits)}",
                agent_id=agent.pk,
                tokens=amount,
                cost=credits_text(cost),
                credits=credits_text(wallet.credits),
            )
        balance = _balance(user_id, agent)
        newly_listed = balance.tokens == 0
        now = timezone.now()
        Wallet.objects.filter(pk=wallet.pk).update(credits=F("credits") - cost, updated_at=now)
        TokenBalance.objects.filter(pk=balance.pk).update(tokens=F("tokens") + amount, updated_at=now)
        wallet.refresh_from_db(fields=["credits"])
        balance.refresh_from_db(fields=["tokens"])
        entry = LedgerEntry.objects.create(
            user_id=user_id,
            agent=agent,
            kind=LedgerEntry.Kind.PURCHASE,
            credits=-cost,
            tokens=amount,
            credits_after=wallet.credits,
            tokens_after=balance.tokens,
            note=f"{amount} tokens at {agent.price_per_1k} credits / 1,000",
            actor=actor,
        )
        if newly_listed:
            signals.agents_listed_changed_on_commit(user_id)
    return Purchase(agent, amount, cost, wallet.credits, balance.tokens, entry)


# --- metered calls ---------------------------------------------------------------------------------


def _reserve(user_id: int, agent: Agent, wanted: int, minimum: int) -> TokenHold:
    with transaction.atomic():
        TokenHold.objects.filter(user_id=user_id, agent=agent, created_at__lt=timezone.now() - hold_lifetime()).delete()
        # Concurrent calls reserve one after the other, each from what the others left.
        balance = _for_update(TokenBalance.objects.filter(user_id=user_id, agent=agent)).first()
        if balance is None or balance.tokens <= 0:
            raise InsufficientTokens(
                f"You have no tokens for Agent {agent.pk}: buy some with buy_agent_tokens first",
                agent_id=agent.pk,
                reason="none",
                available=0,
            )
        available = balance.tokens - held_tokens(user_id, agent.pk)
        if available < minimum:
            raise InsufficientTokens(
                f"Insufficient token balance for Agent {agent.pk}: this call needs about {minimum} tokens and "
                f"{max(available, 0)} are available; buy more with buy_agent_tokens",
                agent_id=agent.pk,
                reason="low",
                available=max(available, 0),
                needed=minimum,
            )
        return TokenHold.objects.create(user_id=user_id, agent=agent, tokens=min(wanted, available))


def _settle(hold: TokenHold, completion: Completion, actor: str) -> tuple[int, int]:
    """Charge the call and drop its hold; returns (tokens charged, tokens left)."""
    used = completion.usage.total_tokens
    charged = min(max(used, 0), hold.tokens)
    if used > hold.tokens:
        # The provider ignored max_tokens; the caller is charged what was reserved, no more.
        logger.warning("agent %s answered with %d tokens, %d were reserved", hold.agent_id, used, hold.tokens)
    with transaction.atomic():
        TokenHold.objects.filter(pk=hold.pk).delete()
        balance = _for_update(TokenBalance.objects.filter(user_id=hold.user_id, agent_id=hold.agent_id)).get()
        if charged:
            TokenBalance.objects.filter(pk=balance.pk).update(tokens=F("tokens") - charged, updated_at=timezone.now())
            balance.refresh_from_db(fields=["tokens"])
        wallet = _wallet(hold.user_id)
        LedgerEntry.objects.create(
            user_id=hold.user_id,
            agent_id=hold.agent_id,
            kind=LedgerEntry.Kind.USAGE,
            tokens=-charged,
            credits_after=wallet.credits,
            tokens_after=balance.tokens,
            note=f"{completion.usage.prompt_tokens} prompt + {completion.usage.completion_tokens} answer tokens"
            f" ({completion.model})",
            actor=actor,
        )
        if balance.tokens == 0:
            signals.agents_listed_changed_on_commit(hold.user_id)
    return charged, balance.tokens


@dataclass(frozen=True)
class AgentAnswer:
    agent: Agent
    text: str
    model: str
    tokens_used: int
    tokens_left: int


def call_agent(*, user_id: int, actor: str, agent_id: Any, prompt: Any) -> AgentAnswer:
    """Ask a published agent, paying with the user's tokens for it. Raises InsufficientTokens
    (details `reason`: "none" or "low") before the provider is asked when the balance cannot
    pay for the prompt and a short answer; provider failures cost nothing."""
    agent = published_agent(agent_id)
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidArgument("prompt must be a non-empty string", field="prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidArgument(f"prompt is longer than {MAX_PROMPT_CHARS:,} characters", field="prompt")
    messages = ([ChatMessage("system", agent.system_prompt)] if agent.system_prompt.strip() else []) + [
        ChatMessage("user", prompt)
    ]
    provider = provider_for(agent)
    prompt_tokens = estimate_prompt_tokens(messages)
    hold = _reserve(user_id, agent, prompt_tokens + agent.max_tokens, prompt_tokens + MIN_COMPLETION_TOKENS)
    try:
        completion = provider.complete(
            ChatRequest(
                messages=tuple(messages),
                max_tokens=hold.tokens - prompt_tokens,
                temperature=agent.temperature,
                model=agent.base_model or None,
            )
        )
    except BaseException:
        TokenHold.objects.filter(pk=hold.pk).delete()
        raise
    charged, left = _settle(hold, completion, actor)
    return AgentAnswer(agent=agent, text=completion.text, model=completion.model, tokens_used=charged, tokens_left=left)


# --- the catalogue -----------------------------------------------------------------------------------


def _tell_holders(agent_ids: list[int]) -> None:
    """The agents' holders list them as tools: their tool lists changed."""
    holders = TokenBalance.objects.filter(agent_id__in=agent_ids, tokens__gt=0).values_list("user_id", flat=True)
    for user_id in set(holders):
        signals.agents_listed_changed_on_commit(user_id)


def publish_agents(*, agent_ids: list[int]) -> tuple[int, list[str]]:
    """Publish the unpublished agents among `agent_ids` whose provider can be built; returns how
    many were published and, for the others, why not (each message names the agent)."""
    ready, problems = [], []
    for agent in Agent.objects.filter(pk__in=agent_ids, published=False):
        try:
            provider_for(agent)
        except ProviderUnavailable as error:
            problems.append(error.message)
        else:
            ready.append(agent.pk)
    with transaction.atomic():
        count = Agent.objects.filter(pk__in=ready).update(published=True, updated_at=timezone.now())
        _tell_holders(ready)
    return count, problems


def unpublish_agents(*, agent_ids: list[int]) -> int:
    """Take agents off the marketplace: they can no longer be found, bought or called, and leave
    their holders' tool lists. Balances and the ledger stay."""
    with transaction.atomic():
        chosen = list(Agent.objects.filter(pk__in=agent_ids, published=True).values_list("pk", flat=True))
        count = Agent.objects.filter(pk__in=chosen).update(published=False, updated_at=timezone.now())
        _tell_holders(chosen)
    return count
