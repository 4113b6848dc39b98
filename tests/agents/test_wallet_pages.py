"""The wallet page (/wallet/): a signed-in user's credits, token balances and ledger, and no one
else's. Driven through Django's test Client against the real database; the money is put there
by the real services (grants, purchases)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from access import operations
from access.authentication import authenticate
from agents import services
from agents.models import Agent
from agents.views import LEDGER_PER_PAGE
from tests.conftest import Persona


@pytest.fixture
def alice_client(client: Client, alice_key: Persona) -> Client:
    client.force_login(alice_key.user)
    return client


def agent(name: str, **fields: object) -> Agent:
    values: dict[str, object] = {"name": name, "provider": "extractive", "published": True, **fields}
    return Agent.objects.create(**values)


def buy(persona: Persona, target: Agent, tokens: int) -> None:
    operations.perform(authenticate(persona.secret), "buy_agent_tokens", agent_id=target.pk, token_amount=tokens)


def test_the_wallet_page_needs_a_signed_in_user(client, db):
    response = client.get("/wallet/")

    assert response.status_code == 302
    assert response["Location"] == reverse("login") + "?next=/wallet/"


def test_it_shows_my_credits_balances_and_ledger_and_nothing_of_bob(alice_client, alice_key, bob_key):
    reviewer = agent("Reviewer", base_model="deepseek-chat", price_per_1k=Decimal("2"))
    poet = agent("Poet")
    services.grant_credits(user_id=alice_key.user.pk, credits=100, note="welcome credits", actor="admin:root")
    buy(alice_key, reviewer, 1500)
    services.grant_credits(user_id=bob_key.user.pk, credits=777, note="bob's secret bonus")
    buy(bob_key, poet, 4321)

    response = alice_client.get("/wallet/")

    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    html = response.content.decode()
    assert response.context["credits"] == Decimal("97")
    assert '<dd data-testid="credits">97</dd>' in html
    assert [(b.agent.name, b.tokens) for b in response.context["balances"]] == [("Reviewer", 1500)]
    assert "deepseek-chat" in html
    assert "1,500" in html
    assert [(e.kind, e.note) for e in response.context["entries"]] == [
        ("purchase", "1500 tokens at 2.0000 credits / 1,000"),
        ("grant", "welcome credits"),
    ]
    assert "-3" in html  # the purchase's cost
    assert "+100" in html
    # Bob's wallet, agent and ledger are nowhere on the page.
    for text in ("777", "bob's secret bonus", "Poet", "4,321"):
        assert text not in html


def test_an_empty_wallet_says_where_credits_and_tokens_come_from(alice_client, alice_key):
    html = alice_client.get("/wallet/").content.decode()

    assert "Ask an operator for credits" in html
    assert "Buy tokens with the <code>buy_agent_tokens</code> MCP tool" in html
    assert "No entries yet" in html


def test_an_unpublished_agent_still_shows_its_balance(alice_client, alice_key):
    retired = agent("Retired")
    services.grant_credits(user_id=alice_key.user.pk, credits=10)
    buy(alice_key, retired, 1000)
    Agent.objects.filter(pk=retired.pk).update(published=False)

    html = alice_client.get("/wallet/").content.decode()

    assert "Retired" in html
    assert "no longer offered" in html


def test_the_ledger_pages_fifty_at_a_time_newest_first(alice_client, alice_key, bob_key):
    for number in range(1, 2 * LEDGER_PER_PAGE + 21):  # 120 entries
        services.grant_credits(user_id=alice_key.user.pk, credits=1, note=f"grant {number}")
    services.grant_credits(user_id=bob_key.user.pk, credits=1, note="bob's")

    first = alice_client.get("/wallet/")
    notes = [entry.note for entry in first.context["entries"]]
    assert notes == [f"grant {n}" for n in range(120, 70, -1)]
    assert first.context["next_url"] == "/wallet/?page=2"
    assert first.context["previous_url"] is None
    assert "Page 1 of 3" in first.content.decode()
    assert "120 entries in all" in first.content.decode()

    last = alice_client.get("/wallet/", {"page": 3})
    assert [entry.note for entry in last.context["entries"]] == [f"grant {n}" for n in range(20, 0, -1)]
    assert last.context["previous_url"] == "/wallet/?page=2"
    assert last.context["next_url"] is None

    # Out of range or not a number: the nearest page, never an error.
    assert alice_client.get("/wallet/", {"page": 99}).context["page"].number == 3
    assert alice_client.get("/wallet/", {"page": "x"}).context["page"].number == 1


def test_the_page_takes_a_fixed_number_of_queries(alice_client, alice_key, django_assert_max_num_queries):
    services.grant_credits(user_id=alice_key.user.pk, credits=500)
    for index in range(5):
        buy(alice_key, agent(f"Agent {index}"), 1000)

    with django_assert_max_num_queries(7):  # session, user, wallet, balances, count, page
        assert alice_client.get("/wallet/").status_code == 200


def test_the_nav_links_to_the_wallet(alice_client, alice_key):
    html = alice_client.get("/wallet/").content.decode()

    assert '<a href="/wallet/" aria-current="page">Wallet</a>' in html
    assert '<a href="/wallet/">Wallet</a>' in alice_client.get("/keys/").content.decode()


def test_the_wallet_page_is_read_only(alice_client, alice_key):
    assert alice_client.post("/wallet/").status_code == 405
