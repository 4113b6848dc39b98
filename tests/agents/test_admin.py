"""The operator console (Django admin) for the marketplace: agents, wallets, balances, the ledger.

Credits move only through `agents.services.grant_credits`: the tests check what only the service
produces (a ledger entry with `credits_after` and the operator as actor, a consistent audit).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from access import operations
from access.authentication import authenticate
from agents import selectors, services
from agents.models import Agent, LedgerEntry, TokenBalance, Wallet
from tests.conftest import Persona

User = get_user_model()
STORED_KEY = "sk-stored-secret-4f2a9c7e1b"


@pytest.fixture(autouse=True)
def _server_llm_settings(settings):
    # The server's own provider is the offline one, with no URL or model to fall back on.
    settings.MEMORYHUB_LLM_PROVIDER = "extractive"
    settings.MEMORYHUB_LLM_URL = ""
    settings.MEMORYHUB_LLM_MODEL = ""


@pytest.fixture
def operator(root_key: Persona, client: Client) -> Client:
    client.force_login(root_key.user)
    return client


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:{name}", args=args)


def message_texts(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def agent_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Reviewer",
        "description": "Reviews pull requests",
        "tags": "code, review, , code",
        "price_per_1k": "2.5",
        "base_model": "deepseek-chat",
        "system_prompt": "You review code.",
        "max_tokens": "512",
        "temperature": "",
        "provider": "openai",
        "provider_url": "http://llm.example/v1",
        "provider_api_key": STORED_KEY,
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def make_agent(**fields: Any) -> Agent:
    values: dict[str, Any] = {"name": "Summariser", "provider": "extractive", "published": True, **fields}
    return Agent.objects.create(**values)


def buy(persona: Persona, agent: Agent, tokens: int = 1000) -> None:
    """Give the persona a ledger history with `agent`: a grant, then a purchase."""
    services.grant_credits(user_id=persona.user.pk, credits=100, note="setup")
    operations.perform(authenticate(persona.secret), "buy_agent_tokens", agent_id=agent.pk, token_amount=tokens)


# --- agents ----------------------------------------------------------------------------------------------


def test_an_operator_creates_an_agent_with_tags_as_text_and_publishes_it(operator):
    response = operator.post(url("agents_agent_add"), agent_data())

    assert response.status_code == 302, response.context["adminform"].form.errors
    agent = Agent.objects.get(name="Reviewer")
    assert agent.tags == ["code", "review"]
    assert agent.price_per_1k == Decimal("2.5")
    assert agent.provider_api_key == STORED_KEY
    assert not agent.published

    published = operator.post(url("agents_agent_changelist"), {"action": "publish", "_selected_action": [agent.pk]})

    assert published.status_code == 302
    agent.refresh_from_db()
    assert agent.published
    assert [card["id"] for card in selectors.search_agents(user_id=0, query="review")] == [agent.pk]
    assert "Published 1 agent." in message_texts(published)

    operator.post(url("agents_agent_changelist"), {"action": "unpublish", "_selected_action": [agent.pk]})
    agent.refresh_from_db()
    assert not agent.published


def test_the_change_page_shows_tags_as_text_and_never_the_stored_key(operator):
    agent = make_agent(
        tags=["code", "review"], provider="openai", provider_url="http://llm.example/v1", provider_api_key=STORED_KEY
    )

    for page in (
        url("agents_agent_change", agent.pk),
        url("agents_agent_changelist"),
        url("agents_agent_history", agent.pk),
    ):
        response = operator.get(page)
        assert response.status_code == 200
        assert STORED_KEY not in response.content.decode()
    form = operator.get(url("agents_agent_change", agent.pk)).context["adminform"].form
    assert form["tags"].value() == "code, review"
    assert "A key is stored" in form.fields["provider_api_key"].help_text


def change(operator: Client, agent: Agent, **overrides: Any) -> Any:
    data = agent_data(**{"name": agent.name, "provider_api_key": "", **overrides})
    return operator.post(url("agents_agent_change", agent.pk), data)


def test_a_blank_key_keeps_the_stored_one_a_typed_key_replaces_it_and_clear_removes_it(operator):
    agent = make_agent(provider="openai", provider_url="http://llm.example/v1", provider_api_key=STORED_KEY)

    response = change(operator, agent, description="new words")
    assert response.status_code == 302, response.context["adminform"].form.errors
    agent.refresh_from_db()
    assert (agent.description, agent.provider_api_key) == ("new words", STORED_KEY)

    assert change(operator, agent, provider_api_key="sk-new").status_code == 302
    agent.refresh_from_db()
    assert agent.provider_api_key == "sk-new"

    assert change(operator, agent, clear_provider_api_key="on").status_code == 302
    agent.refresh_from_db()
    assert agent.provider_api_key == ""


def test_changing_the_url_asks_for_the_key_again(operator):
    agent = make_agent(provider="openai", provider_url="http://llm.example/v1", provider_api_key=STORED_KEY)

    response = change(operator, agent, provider_url="http://elsewhere.example/v1")

    assert response.status_code == 200
    assert "provider_api_key" in response.context["adminform"].form.errors
    agent.refresh_from_db()
    assert agent.provider_url == "http://llm.example/v1"
    assert (
        change(operator, agent, provider_url="http://elsewhere.example/v1", provider_api_key="sk-2").status_code == 302
    )


def test_an_openai_agent_needs_a_url_here_or_on_the_server(operator, settings):
    response = operator.post(url("agents_agent_add"), agent_data(provider_url=""))

    assert response.status_code == 200
    assert "MEMORYHUB_LLM_URL" in str(response.context["adminform"].form.errors["provider_url"])
    assert not Agent.objects.exists()

    settings.MEMORYHUB_LLM_URL = "http://server-llm.example/v1"
    assert operator.post(url("agents_agent_add"), agent_data(provider_url="")).status_code == 302


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tags": ", ".join(f"t{i}" for i in range(21))}, "tags"),
        ({"tags": "x" * 51}, "tags"),
        ({"provider": "", "provider_url": "http://llm.example/v1", "base_model": ""}, "base_model"),
        ({"temperature": "3"}, "temperature"),
        ({"price_per_1k": "-1"}, "price_per_1k"),
        ({"max_tokens": "0"}, "max_tokens"),
    ],
)
def test_it_refuses_an_invalid_agent_with_field_errors(operator, overrides, field):
    response = operator.post(url("agents_agent_add"), agent_data(**overrides))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Agent.objects.exists()


def test_publishing_skips_an_agent_whose_provider_cannot_be_used(operator):
    broken = make_agent(name="Broken", provider="openai", published=False)
    fine = make_agent(name="Fine", published=False)

    response = operator.post(
        url("agents_agent_changelist"), {"action": "publish", "_selected_action": [broken.pk, fine.pk]}, follow=True
    )

    texts = message_texts(response)
    assert "Published 1 agent." in texts
    assert any("Broken" in text and "cannot be used" in text for text in texts)
    assert list(Agent.objects.filter(published=True)) == [fine]


def test_an_agent_with_ledger_history_is_unpublished_not_deleted(operator, alice_key):
    agent = make_agent()
    buy(alice_key, agent)

    page = operator.get(url("agents_agent_change", agent.pk))
    assert url("agents_agent_delete", agent.pk) not in page.content.decode()

    response = operator.post(url("agents_agent_delete", agent.pk), {"post": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == url("agents_agent_change", agent.pk)
    assert any("unpublish it instead" in text for text in message_texts(response))

    bulk = operator.post(
        url("agents_agent_changelist"), {"action": "delete_selected", "_selected_action": [agent.pk], "post": "yes"}
    )
    assert bulk.status_code == 302
    assert any("unpublish it instead" in text for text in message_texts(bulk))
    assert Agent.objects.filter(pk=agent.pk).exists()
    assert selectors.audit() == []


def test_an_agent_without_history_can_be_deleted(operator):
    agent = make_agent()

    response = operator.post(url("agents_agent_delete", agent.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Agent.objects.filter(pk=agent.pk).exists()


def test_the_agent_list_searches_and_filters(operator):
    make_agent(name="Translator", base_model="qwen", published=True)
    make_agent(name="Poet", published=False)

    def listed(**params: str) -> list[str]:
        response = operator.get(url("agents_agent_changelist"), params)
        assert response.status_code == 200
        return [agent.name for agent in response.context["cl"].result_list]

    assert listed(q="qwen") == ["Translator"]
    assert listed(published__exact="0") == ["Poet"]
    assert listed(provider__exact="extractive") == ["Translator", "Poet"]


# --- granting credits --------------------------------------------------------------------------------------


def test_an_operator_grants_credits_to_users_without_a_wallet_through_the_form(operator, alice_key, bob_key):
    assert not Wallet.objects.exists()
    form = operator.get(url("agents_wallet_grant"))
    assert form.status_code == 200

    response = operator.post(
        url("agents_wallet_grant"),
        {"usernames": "alice, bob", "credits": "25.5", "kind": "grant", "note": "welcome credits"},
        follow=True,
    )

    assert response.redirect_chain == [(url("agents_wallet_changelist"), 302)]
    assert "Granted 25.5 credits to alice: the wallet now holds 25.5." in message_texts(response)
    for persona in (alice_key, bob_key):
        assert selectors.wallet_summary(user_id=persona.user.pk).credits == Decimal("25.5")
        (entry,) = selectors.ledger(user_id=persona.user.pk)
        assert (entry.kind, entry.credits, entry.credits_after) == ("grant", Decimal("25.5"), Decimal("25.5"))
        assert (entry.note, entry.actor) == ("welcome credits", "admin:root")
    assert selectors.audit() == []


def test_a_refund_adds_to_an_existing_wallet(operator, alice_key):
    services.grant_credits(user_id=alice_key.user.pk, credits=10)

    operator.post(url("agents_wallet_grant"), {"usernames": "alice", "credits": "2", "kind": "refund", "note": ""})

    entry = selectors.ledger(user_id=alice_key.user.pk).first()
    assert entry is not None
    assert (entry.kind, entry.credits, entry.credits_after) == ("refund", Decimal("2"), Decimal("12"))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"usernames": "alice, nobody"}, "usernames"),
        ({"usernames": " , "}, "usernames"),
        ({"credits": "0"}, "credits"),
        ({"credits": "-5"}, "credits"),
        ({"credits": "1.00001"}, "credits"),
        ({"credits": "2000000000"}, "credits"),
        ({"kind": "purchase"}, "kind"),
    ],
)
def test_an_invalid_grant_is_refused_on_the_form_and_grants_nothing(operator, alice_key, data, field):
    post = {"usernames": "alice", "credits": "5", "kind": "grant", "note": "", **data}

    response = operator.post(url("agents_wallet_grant"), post)

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not LedgerEntry.objects.exists()


def test_the_wallet_action_fills_the_grant_form_with_the_selected_users(operator, alice_key, bob_key):
    services.grant_credits(user_id=alice_key.user.pk, credits=1)
    services.grant_credits(user_id=bob_key.user.pk, credits=1)
    wallets = list(Wallet.objects.values_list("pk", flat=True))

    response = operator.post(
        url("agents_wallet_changelist"), {"action": "grant_to_selected", "_selected_action": wallets}
    )

    assert response.status_code == 302
    form = operator.get(response["Location"]).context["form"]
    assert form["usernames"].value() == "alice, bob"


def test_the_wallet_list_is_read_only_and_links_to_the_grant_form(operator, alice_key):
    services.grant_credits(user_id=alice_key.user.pk, credits=3)
    wallet = Wallet.objects.get()

    listing = operator.get(url("agents_wallet_changelist"), {"q": "alice"})
    assert [w.user.username for w in listing.context["cl"].result_list] == ["alice"]
    assert url("agents_wallet_grant") in listing.content.decode()
    assert operator.get(url("agents_wallet_add")).status_code == 403
    detail = operator.get(url("agents_wallet_change", wallet.pk))
    assert detail.status_code == 200
    assert f"{url('agents_wallet_grant')}?users=alice" in detail.content.decode()
    assert operator.post(url("agents_wallet_change", wallet.pk), {"credits": "999"}).status_code == 403
    assert operator.post(url("agents_wallet_delete", wallet.pk), {"post": "yes"}).status_code == 403
    wallet.refresh_from_db()
    assert wallet.credits == Decimal("3")


def test_non_staff_get_no_admin_and_cannot_grant(client, alice_key):
    client.force_login(alice_key.user)

    for page in (url("agents_wallet_grant"), url("agents_agent_changelist"), url("agents_ledgerentry_changelist")):
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith(url("login"))
    client.post(url("agents_wallet_grant"), {"usernames": "alice", "credits": "1000", "kind": "grant"})
    assert not LedgerEntry.objects.exists()


def test_staff_need_the_change_wallet_permission_to_grant(client, alice_key):
    staff = User.objects.create_user(username="helper", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_wallet"))
    client.force_login(staff)

    assert client.get(url("agents_wallet_changelist")).status_code == 200
    assert client.get(url("agents_wallet_grant")).status_code == 403
    assert (
        client.post(url("agents_wallet_grant"), {"usernames": "alice", "credits": "1", "kind": "grant"}).status_code
        == 403
    )
    assert not LedgerEntry.objects.exists()

    staff.user_permissions.add(Permission.objects.get(codename="change_wallet"))
    staff = User.objects.get(pk=staff.pk)  # permissions are cached per user object
    client.force_login(staff)
    response = client.post(url("agents_wallet_grant"), {"usernames": "alice", "credits": "1", "kind": "grant"})
    assert response.status_code == 302
    assert LedgerEntry.objects.get().actor == "admin:helper"


# --- balances and the ledger: read-only -----------------------------------------------------------------


@pytest.mark.parametrize("model", [LedgerEntry, TokenBalance, Wallet])
def test_money_rows_have_no_add_change_or_delete_permission(rf, root_key, model):
    request = rf.get("/admin/")
    request.user = root_key.user
    model_admin = site._registry[model]

    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.has_view_permission(request)


def test_the_ledger_and_balances_are_listed_filtered_and_searched_but_not_editable(operator, alice_key, bob_key):
    agent = make_agent()
    buy(alice_key, agent, tokens=2000)
    services.grant_credits(user_id=bob_key.user.pk, credits=7)
    entry = LedgerEntry.objects.filter(kind="purchase").get()
    balance = TokenBalance.objects.get()

    def listed(name: str, **params: str) -> list[Any]:
        response = operator.get(url(name), params)
        assert response.status_code == 200
        return list(response.context["cl"].result_list)

    assert [e.user.username for e in listed("agents_ledgerentry_changelist", q="bob")] == ["bob"]
    assert listed("agents_ledgerentry_changelist", kind__exact="purchase") == [entry]
    assert listed("agents_ledgerentry_changelist", agent__id__exact=str(agent.pk)) == [entry]
    assert len(listed("agents_ledgerentry_changelist", user__id__exact=str(alice_key.user.pk))) == 2
    assert listed("agents_tokenbalance_changelist", q="alice") == [balance]
    assert listed("agents_tokenbalance_changelist", agent__id__exact=str(agent.pk)) == [balance]
    year = str(entry.created_at.year)
    assert len(listed("agents_ledgerentry_changelist", created_at__year=year)) == 3

    for name, pk in (("ledgerentry", entry.pk), ("tokenbalance", balance.pk)):
        assert operator.get(url(f"agents_{name}_change", pk)).status_code == 200
        assert operator.get(url(f"agents_{name}_add")).status_code == 403
        assert operator.post(url(f"agents_{name}_change", pk), {"tokens": "1"}).status_code == 403
        assert operator.post(url(f"agents_{name}_delete", pk), {"post": "yes"}).status_code == 403
    balance.refresh_from_db()
    assert balance.tokens == 2000
    assert selectors.audit() == []
