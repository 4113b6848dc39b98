"""Two debits of one wallet or one token balance racing in two threads, each on its own database
connection (as on two nodes): the second must see what the first spent, never overdraw.

Each debit is held open between reading the balance and writing it (a sleep injected right after
the read), so without a lock both would read the same balance. On SQLite BEGIN IMMEDIATE
serialises them; on PostgreSQL the row lock (SELECT ... FOR UPDATE, agents/services.py) does, and
the control test shows that without it the race is real."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from agents import selectors, services
from agents.exceptions import InsufficientCredits, InsufficientTokens
from agents.models import Agent, LedgerEntry, TokenBalance, TokenHold, Wallet
from tests.threads import at_once

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ledger_wiped_after")]

# How long each debit holds its transaction open after reading the balance.
PAUSE = 0.3


@pytest.fixture
def user_id() -> int:
    return int(get_user_model().objects.create_user(username="racer", password="x").pk)


@pytest.fixture
def agent() -> Agent:
    return Agent.objects.create(name="Racer", description="races", published=True, price_per_1k=Decimal(1))


def race(work: Callable[[], Any], threads: int = 2) -> list[Any]:
    """Run `work` in `threads` threads started together; each result, or the exception raised."""
    return at_once(*[work] * threads, timeout=30)


def slow_after(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make `agents.services.<name>` pause before it runs (it runs right after a balance read)."""
    original = getattr(services, name)

    def paused(*args: Any, **kwargs: Any) -> Any:
        time.sleep(PAUSE)
        return original(*args, **kwargs)

    monkeypatch.setattr(services, name, paused)


def kinds(results: list[Any]) -> list[str]:
    return sorted(type(result).__name__ for result in results)


def test_two_purchases_racing_for_one_wallet_never_overdraw_it(monkeypatch, user_id, agent):
    services.grant_credits(user_id=user_id, credits=10)
    # buy_tokens reads (and on PostgreSQL locks) the wallet, then gets the token balance.
    slow_after(monkeypatch, "_balance")

    results = race(lambda: services.buy_tokens(user_id=user_id, actor="t", agent_id=agent.pk, token_amount=10_000))

    assert kinds(results) == ["InsufficientCredits", "Purchase"]
    refused = next(result for result in results if isinstance(result, InsufficientCredits))
    assert refused.details["credits"] == "0"  # it read the wallet after the other purchase
    assert Wallet.objects.get(user_id=user_id).credits == 0
    assert TokenBalance.objects.get(user_id=user_id, agent=agent).tokens == 10_000
    assert LedgerEntry.objects.filter(kind="purchase").count() == 1
    assert selectors.audit(user_id=user_id) == []


def test_many_purchases_racing_spend_exactly_the_wallet(monkeypatch, user_id, agent):
    services.grant_credits(user_id=user_id, credits=30)
    slow_after(monkeypatch, "_balance")

    results = race(
        lambda: services.buy_tokens(user_id=user_id, actor="t", agent_id=agent.pk, token_amount=10_000), threads=6
    )

    assert kinds(results) == ["InsufficientCredits"] * 3 + ["Purchase"] * 3
    assert Wallet.objects.get(user_id=user_id).credits == 0
    assert TokenBalance.objects.get(user_id=user_id, agent=agent).tokens == 30_000
    assert selectors.audit(user_id=user_id) == []


def test_two_calls_racing_for_one_token_balance_never_reserve_more_than_it_holds(monkeypatch, user_id, agent):
    services.grant_credits(user_id=user_id, credits=10)
    services.buy_tokens(user_id=user_id, actor="t", agent_id=agent.pk, token_amount=1_000)
    # _reserve reads (and on PostgreSQL locks) the balance, then sums the holds of calls in flight.
    slow_after(monkeypatch, "held_tokens")

    results = race(lambda: services._reserve(user_id, agent, 1_000, 500))

    assert kinds(results) == ["InsufficientTokens", "TokenHold"]
    refused = next(result for result in results if isinstance(result, InsufficientTokens))
    assert refused.details["available"] == 0
    assert list(TokenHold.objects.values_list("tokens", flat=True)) == [1_000]


@pytest.mark.postgres_only(reason="the control: PostgreSQL runs writers concurrently; SQLite's BEGIN IMMEDIATE")
def test_control_without_the_row_lock_the_race_overdraws(monkeypatch, user_id, agent):
    """The same races with `_for_update` made a no-op: both debits read the same balance. The
    wallet's CHECK constraint refuses the second purchase's negative balance (an error instead of
    a clean refusal), and nothing stops two calls from reserving the same tokens twice."""
    services.grant_credits(user_id=user_id, credits=10)
    monkeypatch.setattr(services, "_for_update", lambda rows: rows)
    slow_after(monkeypatch, "_balance")
    results = race(lambda: services.buy_tokens(user_id=user_id, actor="t", agent_id=agent.pk, token_amount=10_000))
    # Both read 10 credits: the second debit hits the CHECK constraint instead of a clean refusal.
    assert kinds(results) == ["IntegrityError", "Purchase"]
    assert "wallet_credits_not_negative" in str(next(r for r in results if isinstance(r, Exception)))

    monkeypatch.undo()
    monkeypatch.setattr(services, "_for_update", lambda rows: rows)
    services.grant_credits(user_id=user_id, credits=10)
    services.buy_tokens(user_id=user_id, actor="t", agent_id=agent.pk, token_amount=10_000)
    slow_after(monkeypatch, "held_tokens")
    results = race(lambda: services._reserve(user_id, agent, 10_000, 500))
    assert kinds(results) == ["TokenHold", "TokenHold"]
    assert sum(TokenHold.objects.values_list("tokens", flat=True)) == 20_000  # twice the 10,000 held


def test_the_row_lock_is_taken_on_postgresql_only(user_id, agent):
    from django.test.utils import CaptureQueriesContext

    services.grant_credits(user_id=user_id, credits=10)
    with CaptureQueriesContext(connection) as queries:
        services.buy_tokens(user_id=user_id, actor="t", agent_id=agent.pk, token_amount=1_000)
    locking = [query["sql"] for query in queries if "FOR UPDATE" in query["sql"]]
    assert len(locking) == (1 if connection.vendor == "postgresql" else 0)
