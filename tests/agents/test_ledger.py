"""The marketplace's money rules, against the real database: purchases, metered calls, holds,
the append-only ledger and the audit that every balance is the sum of its entries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from access import operations
from access.exceptions import AccountRequired
from access.permissions import Access
from agents import selectors, services
from agents.exceptions import (
    AgentNotFound,
    InsufficientCredits,
    InsufficientTokens,
    InvalidArgument,
    ProviderUnavailable,
)
from agents.models import Agent, LedgerEntry, TokenBalance, TokenHold, Wallet

pytestmark = pytest.mark.django_db


def make_agent(**fields) -> Agent:
    defaults = {"name": "Translator", "description": "Translates between languages", "published": True}
    return Agent.objects.create(**{**defaults, **fields})


def credits_of(persona) -> Decimal:
    wallet = Wallet.objects.filter(user=persona.user).first()
    return wallet.credits if wallet else Decimal(0)


def test_a_grant_fills_the_wallet_and_is_recorded(alice_key):
    entry = services.grant_credits(user_id=alice_key.user.pk, credits="12.5", note="welcome", actor="command")
    assert entry.kind == "grant"
    assert entry.credits == Decimal("12.5")
    assert entry.credits_after == Decimal("12.5")
    services.grant_credits(user_id=alice_key.user.pk, credits=1, kind="refund")
    assert credits_of(alice_key) == Decimal("13.5")
    assert [e.kind for e in selectors.ledger(user_id=alice_key.user.pk)] == ["refund", "grant"]


@pytest.mark.parametrize("amount", ["0", "-1", "abc", "NaN", "1.00001", "10000000000"])
def test_grants_must_be_positive_bounded_amounts(alice_key, amount):
    with pytest.raises(InvalidArgument):
        services.grant_credits(user_id=alice_key.user.pk, credits=amount)
    assert not LedgerEntry.objects.exists()


def test_a_purchase_spends_credits_and_credits_tokens(alice_key):
    agent = make_agent(price_per_1k=Decimal("1.5"))
    services.grant_credits(user_id=alice_key.user.pk, credits=100)
    purchase = operations.perform(alice_key.key.to_access(), "buy_agent_tokens", agent_id=agent.pk, token_amount=10_000)
    assert purchase.cost == Decimal("15")
    assert purchase.credits_after == Decimal("85")
    assert purchase.tokens_after == 10_000
    entry = purchase.entry
    assert (entry.kind, entry.credits, entry.tokens, entry.tokens_after) == ("purchase", Decimal("-15"), 10_000, 10_000)
    assert selectors.audit() == []


def test_a_purchase_rounds_its_cost_up_to_the_smallest_credit_unit(alice_key):
    agent = make_agent(price_per_1k=Decimal("0.3333"))
    services.grant_credits(user_id=alice_key.user.pk, credits=1)
    purchase = operations.perform(alice_key.key.to_access(), "buy_agent_tokens", agent_id=agent.pk, token_amount=1)
    assert purchase.cost == Decimal("0.0004")  # 0.0003333 rounded up, never down


def test_insufficient_credits_change_nothing(alice_key):
    agent = make_agent(price_per_1k=Decimal("2"))
    services.grant_credits(user_id=alice_key.user.pk, credits=5)
    with pytest.raises(InsufficientCredits) as raised:
        operations.perform(alice_key.key.to_access(), "buy_agent_tokens", agent_id=agent.pk, token_amount=10_000)
    assert raised.value.details == {"agent_id": agent.pk, "tokens": 10_000, "cost": "20", "credits": "5"}
    assert credits_of(alice_key) == Decimal("5")
    assert not TokenBalance.objects.filter(tokens__gt=0).exists()
    assert LedgerEntry.objects.count() == 1


@pytest.mark.parametrize("amount", [0, -5, 1.5, "100", True, 10**10])
def test_token_amounts_are_whole_positive_bounded_numbers(alice_key, amount):
    agent = make_agent()
    services.grant_credits(user_id=alice_key.user.pk, credits=100)
    with pytest.raises(InvalidArgument):
        operations.perform(alice_key.key.to_access(), "buy_agent_tokens", agent_id=agent.pk, token_amount=amount)


def test_a_whole_float_amount_is_accepted_as_the_seed_sends_numbers(alice_key):
    agent = make_agent()
    services.grant_credits(user_id=alice_key.user.pk, credits=100)
    purchase = operations.perform(
        alice_key.key.to_access(), "buy_agent_tokens", agent_id=float(agent.pk), token_amount=1000.0
    )
    assert purchase.tokens == 1000


@pytest.mark.parametrize("agent_id", [999_999, "x", None, 1.5, True])
def test_unknown_and_unpublished_agents_cannot_be_bought(alice_key, agent_id):
    make_agent(published=False)
    services.grant_credits(user_id=alice_key.user.pk, credits=100)
    with pytest.raises(AgentNotFound):
        operations.perform(alice_key.key.to_access(), "buy_agent_tokens", agent_id=agent_id, token_amount=10)


def test_an_unpublished_agent_is_not_found_even_by_its_id(alice_key):
    agent = make_agent(published=False)
    services.grant_credits(user_id=alice_key.user.pk, credits=100)
    with pytest.raises(AgentNotFound):
        operations.perform(alice_key.key.to_access(), "buy_agent_tokens", agent_id=agent.pk, token_amount=10)


def test_a_keyless_caller_has_no_wallet():
    with pytest.raises(AccountRequired):
        operations.perform(Access(grants=()), "buy_agent_tokens", agent_id=1, token_amount=10)


def test_the_ledger_is_append_only_in_the_database(alice_key):
    entry = services.grant_credits(user_id=alice_key.user.pk, credits=10)
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(credits=Decimal("1000"))
    with pytest.raises((IntegrityError, DatabaseError)), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    assert LedgerEntry.objects.get(pk=entry.pk).credits == Decimal("10")


def test_balances_cannot_go_negative_even_when_code_tries(alice_key):
    services.grant_credits(user_id=alice_key.user.pk, credits=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(user=alice_key.user).update(credits=Decimal("-1"))


def test_the_audit_finds_a_balance_that_disagrees_with_its_ledger(alice_key):
    services.grant_credits(user_id=alice_key.user.pk, credits=10)
    Wallet.objects.filter(user=alice_key.user).update(credits=Decimal("11"))  # a bug elsewhere would do this
    assert selectors.audit() == [{"user_id": alice_key.user.pk, "credits": "11.0000", "ledger": "10.0000"}]


# --- metered calls -----------------------------------------------------------------------------------


def funded(persona, agent: Agent, tokens: int) -> None:
    services.grant_credits(user_id=persona.user.pk, credits=1000)
    operations.perform(persona.key.to_access(), "buy_agent_tokens", agent_id=agent.pk, token_amount=tokens)


def test_a_call_charges_the_tokens_the_provider_reports(alice_key, fake_llm):
    agent = make_agent(provider_url=fake_llm.url, base_model="fake-chat", system_prompt="Translate to English.")
    funded(alice_key, agent, 5000)
    fake_llm.answer = "Hello, World!"
    fake_llm.usage = {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35}
    answer = operations.perform(alice_key.key.to_access(), "call_agent", agent_id=agent.pk, prompt="你好,世界!")
    assert (answer.text, answer.tokens_used, answer.tokens_left, answer.model) == (
        "Hello, World!",
        35,
        4965,
        "fake-chat",
    )
    sent = fake_llm.requests[-1]
    assert sent["model"] == "fake-chat"
    assert sent["messages"] == [
        {"role": "system", "content": "Translate to English."},
        {"role": "user", "content": "你好,世界!"},
    ]
    # The answer limit fits what was reserved: the balance could pay for the prompt and more.
    assert 16 <= sent["max_tokens"] <= agent.max_tokens
    usage = selectors.ledger(user_id=alice_key.user.pk).first()
    assert (usage.kind, usage.tokens, usage.tokens_after) == ("usage", -35, 4965)
    assert not TokenHold.objects.exists()
    assert selectors.audit() == []


def test_without_tokens_the_provider_is_never_asked(alice_key, fake_llm):
    agent = make_agent(provider_url=fake_llm.url, base_model="fake-chat")
    with pytest.raises(InsufficientTokens) as raised:
        operations.perform(alice_key.key.to_access(), "call_agent", agent_id=agent.pk, prompt="hi")
    assert raised.value.details["reason"] == "none"
    assert fake_llm.requests == []


def test_a_balance_too_low_for_the_prompt_is_refused_before_the_call(alice_key, fake_llm):
    agent = make_agent(provider_url=fake_llm.url, base_model="fake-chat")
    funded(alice_key, agent, 20)
    with pytest.raises(InsufficientTokens) as raised:
        operations.perform(alice_key.key.to_access(), "call_agent", agent_id=agent.pk, prompt="a long question " * 20)
    assert raised.value.details["reason"] == "low"
    assert fake_llm.requests == []
    assert selectors.balance_of(user_id=alice_key.user.pk, agent_id=agent.pk) == 20


def test_a_small_balance_caps_the_answer_and_is_never_overdrawn(alice_key, fake_llm):
    agent = make_agent(provider_url=fake_llm.url, base_model="fake-chat", max_tokens=4096)
    funded(alice_key, agent, 60)
    # A provider that ignores max_tokens and reports more than was reserved.
    fake_llm.usage = {"prompt_tokens": 50, "completion_tokens": 500}
    answer = operations.perform(alice_key.key.to_access(), "call_agent", agent_id=agent.pk, prompt="hi")
    assert fake_llm.requests[-1]["max_tokens"] <= 60
    assert answer.tokens_used == 60
    assert answer.tokens_left == 0
    assert selectors.audit() == []


def test_a_failed_provider_call_costs_nothing(alice_key, fake_llm):
    agent = make_agent(provider_url=fake_llm.url, base_model="fake-chat")
    funded(alice_key, agent, 1000)
    fake_llm.fail_status, fake_llm.fail_times = 500, 10
    with override_settings(MEMORYHUB_LLM_RETRIES=0), pytest.raises(ProviderUnavailable):
        operations.perform(alice_key.key.to_access(), "call_agent", agent_id=agent.pk, prompt="hi")
    assert selectors.balance_of(user_id=alice_key.user.pk, agent_id=agent.pk) == 1000
    assert not TokenHold.objects.exists()
    assert selectors.audit() == []


def test_tokens_held_by_calls_in_flight_are_not_available_to_others(alice_key, fake_llm):
    agent = make_agent(provider_url=fake_llm.url, base_model="fake-chat")
    funded(alice_key, agent, 100)
    TokenHold.objects.create(user=alice_key.user, agent=agent, tokens=95)
    with pytest.raises(InsufficientTokens):
        operations.perform(alice_key.key.to_access(), "call_agent", agent_id=agent.pk, prompt="hi")
    assert selectors.search_agents(user_id=alice_key.user.pk, query="")[0]["availableTokens"] == 5


def test_a_hold_left_by_a_dead_call_expires(alice_key, fake_llm):
    agent = make_agent(provider_url=fake_llm.url, base_model="fake-chat")
    funded(alice_key, agent, 100)
    hold = TokenHold.objects.create(user=alice_key.user, agent=agent, tokens=100)
    TokenHold.objects.filter(pk=hold.pk).update(created_at=timezone.now() - timedelta(hours=1))
    operations.perform(alice_key.key.to_access(), "call_agent", agent_id=agent.pk, prompt="hi")
    assert not TokenHold.objects.filter(pk=hold.pk).exists()


def test_the_offline_provider_answers_and_is_metered(alice_key):
    agent = make_agent(provider="extractive")
    funded(alice_key, agent, 1000)
    answer = operations.perform(alice_key.key.to_access(), "call_agent", agent_id=agent.pk, prompt="hello there")
    assert "No language model is configured" in answer.text
    assert answer.tokens_used > 0
    assert answer.tokens_left == 1000 - answer.tokens_used
    assert selectors.audit() == []


@pytest.mark.parametrize("prompt", ["", "   ", None, "x" * 100_001])
def test_prompts_must_be_non_empty_bounded_text(alice_key, prompt):
    agent = make_agent(provider="extractive")
    funded(alice_key, agent, 1000)
    with pytest.raises(InvalidArgument):
        operations.perform(alice_key.key.to_access(), "call_agent", agent_id=agent.pk, prompt=prompt)


# --- reads -----------------------------------------------------------------------------------------


def test_search_matches_names_descriptions_models_and_tags_in_any_script(alice_key):
    translator = make_agent(
        name="翻译助手", description="专业的翻译智能体", base_model="deepseek-chat", tags=["翻译", "语言"]
    )
    coder = make_agent(name="Code Helper", description="Writes Python", base_model="qwen-coder", tags=["编程"])
    make_agent(name="Hidden", description="Writes Python too", published=False)
    user = alice_key.user.pk
    assert [a["id"] for a in selectors.search_agents(user_id=user, query="翻译")] == [translator.pk]
    assert [a["id"] for a in selectors.search_agents(user_id=user, query="编程")] == [coder.pk]
    assert [a["id"] for a in selectors.search_agents(user_id=user, query="python")] == [coder.pk]
    assert [a["id"] for a in selectors.search_agents(user_id=user, query="deepseek")] == [translator.pk]
    assert [a["id"] for a in selectors.search_agents(user_id=user, query="")] == [translator.pk, coder.pk]
    card = selectors.search_agents(user_id=user, query="翻译")[0]
    assert card == {
        "id": translator.pk,
        "name": "翻译助手",
        "description": "专业的翻译智能体",
        "price": 1,
        "priceUnit": "1000",
        "baseModel": "deepseek-chat",
        "tags": ["翻译", "语言"],
        "hasPurchased": False,
        "availableTokens": 0,
    }


def test_search_returns_at_most_ten_agents_name_matches_first(alice_key):
    for number in range(12):
        make_agent(name=f"Agent {number}", description="writes poems")
    poet = make_agent(name="Poet", description="writes poems")
    found = selectors.search_agents(user_id=alice_key.user.pk, query="poe")
    assert len(found) == 10
    assert found[0]["id"] == poet.pk


def test_what_one_user_holds_is_invisible_to_another(alice_key, bob_key):
    agent = make_agent(provider="extractive")
    funded(alice_key, agent, 1000)
    alice_card = selectors.search_agents(user_id=alice_key.user.pk, query="")[0]
    bob_card = selectors.search_agents(user_id=bob_key.user.pk, query="")[0]
    assert (alice_card["hasPurchased"], alice_card["availableTokens"]) == (True, 1000)
    assert (bob_card["hasPurchased"], bob_card["availableTokens"]) == (False, 0)
    assert selectors.held_agents(user_id=bob_key.user.pk) == []
    assert selectors.wallet_summary(user_id=bob_key.user.pk).credits == 0
    with pytest.raises(InsufficientTokens):
        operations.perform(bob_key.key.to_access(), "call_agent", agent_id=agent.pk, prompt="hi")


def test_at_most_ten_agents_are_held_as_tools_most_recent_first(alice_key):
    agents = [make_agent(name=f"A{n}", provider="extractive") for n in range(12)]
    services.grant_credits(user_id=alice_key.user.pk, credits=1000)
    for agent in agents:
        operations.perform(alice_key.key.to_access(), "buy_agent_tokens", agent_id=agent.pk, token_amount=100)
    held = selectors.held_agents(user_id=alice_key.user.pk)
    assert len(held) == 10
    assert held[0].agent_id == agents[-1].pk


def test_unpublishing_takes_an_agent_off_the_market_but_keeps_the_books(alice_key):
    agent = make_agent(provider="extractive")
    funded(alice_key, agent, 1000)
    assert services.unpublish_agents(agent_ids=[agent.pk]) == 1
    assert selectors.search_agents(user_id=alice_key.user.pk, query="") == []
    assert selectors.held_agents(user_id=alice_key.user.pk) == []
    with pytest.raises(AgentNotFound):
        operations.perform(alice_key.key.to_access(), "call_agent", agent_id=agent.pk, prompt="hi")
    assert selectors.balance_of(user_id=alice_key.user.pk, agent_id=agent.pk) == 1000
    assert services.publish_agents(agent_ids=[agent.pk]) == (1, [])
    assert [balance.agent_id for balance in selectors.held_agents(user_id=alice_key.user.pk)] == [agent.pk]


def test_an_agent_whose_provider_cannot_be_built_is_not_published(alice_key):
    agent = make_agent(published=False, provider="openai", provider_url="")
    with override_settings(MEMORYHUB_LLM_URL=None):
        count, problems = services.publish_agents(agent_ids=[agent.pk])
    assert count == 0
    assert len(problems) == 1
    assert str(agent.pk) in problems[0] or agent.name in problems[0]
