"""Credits in a real browser (Debian's chromium driven by Playwright): an operator grants credits
in the admin's grant form, then the user signs in and finds them, with the ledger line, on their
wallet page.

As in test_self_service.py: Playwright's sync API runs an event loop on this thread, where Django
refuses ORM calls, so data is made before the browser starts and checked after it stops.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from agents import selectors
from agents.models import LedgerEntry
from tests.browser.test_self_service import chromium_page

OPERATOR, OPERATOR_PASSWORD = "olive", "an operator's long password"
USER, USER_PASSWORD = "alice", "alice's long browser password"
NOTE = "welcome credits from the browser"


def test_an_operator_grants_credits_and_the_user_sees_them_in_the_wallet(live_server, ledger_wiped_after):
    users = get_user_model().objects
    users.create_superuser(username=OPERATOR, email="", password=OPERATOR_PASSWORD)
    alice = users.create_user(username=USER, password=USER_PASSWORD)

    with chromium_page(live_server.url) as page:
        # The operator: admin sign-in, the wallet list, the grant form.
        page.goto("/admin/")
        page.get_by_label("Username").fill(OPERATOR)
        page.get_by_label("Password").fill(OPERATOR_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("link", name="Wallets").click()
        page.get_by_role("link", name="Grant credits").click()
        expect(page.get_by_role("heading", name="Grant credits")).to_be_visible()
        page.get_by_label("Users").fill(USER)
        page.get_by_label("Credits").fill("25")
        expect(page.get_by_label("Grant", exact=True)).to_be_checked()
        page.get_by_label("Note").fill(NOTE)
        page.get_by_role("button", name="Grant credits").click()
        expect(page.get_by_text(f"Granted 25 credits to {USER}: the wallet now holds 25.")).to_be_visible()
        expect(page.get_by_role("row", name=USER)).to_be_visible()
        page.get_by_role("button", name="Log out").click()

        # The user: the wallet page sends them to sign in and back.
        page.goto("/wallet/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Username").fill(USER)
        page.get_by_label("Password").fill(USER_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Wallet", exact=True)).to_be_visible()
        expect(page.get_by_test_id("credits")).to_have_text("25")
        line = page.get_by_role("row", name=NOTE)
        expect(line).to_be_visible()
        expect(line.get_by_text("Grant", exact=True)).to_be_visible()
        expect(line.get_by_text("+25", exact=True)).to_be_visible()
        expect(page.get_by_text("Buy tokens with the buy_agent_tokens MCP tool")).to_be_visible()

        # The nav leads back to it from the other pages.
        page.get_by_role("link", name="My keys").click()
        page.get_by_role("link", name="Wallet").click()
        expect(page.get_by_test_id("credits")).to_have_text("25")

    (entry,) = selectors.ledger(user_id=alice.pk)
    assert (entry.kind, entry.credits, entry.note, entry.actor) == (
        LedgerEntry.Kind.GRANT,
        Decimal("25"),
        NOTE,
        f"admin:{OPERATOR}",
    )
    assert selectors.wallet_summary(user_id=alice.pk).credits == Decimal("25")
    assert selectors.audit() == []
