"""The self-service pages in a real browser (Debian's chromium driven by Playwright).

A user signs in, creates a key, copies it with the Copy button, uses it against the REST API,
revokes it in the page and sees the API refuse it; then browses a namespace with data.

Playwright's sync API keeps an event loop running on this thread, where Django refuses ORM
calls; so test data is made before the browser starts and checked after it stops, and the
live server (its own thread) does all database work in between.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from access.models import ApiKey
from graph import services as graph
from tests.browser.console_harness import browser_page

USERNAME = "dora"
PASSWORD = "a long browser test password"
NAMESPACE = f"user:{USERNAME}:default"


@contextmanager
def chromium_page(base_url: str) -> Iterator[Page]:
    """A chromium page allowed to use the clipboard (the Copy button)."""
    with browser_page(base_url, permissions=("clipboard-read", "clipboard-write")) as page:
        yield page


def list_banks(base_url: str, key: str) -> tuple[int, Any]:
    """GET /v1/memory/banks/list with the key, as an agent would: (status, JSON body)."""
    request = urllib.request.Request(f"{base_url}/v1/memory/banks/list", headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_a_user_creates_copies_uses_and_revokes_a_key_and_browses_a_namespace(live_server):
    get_user_model().objects.create_user(username=USERNAME, password=PASSWORD)
    graph.create_entities(
        namespace=NAMESPACE,
        entities=[
            {"name": "Ada Lovelace", "entityType": "person", "observations": ["wrote the first program"]},
            {"name": "Grace Hopper", "entityType": "person", "observations": ["built the first compiler"]},
        ],
    )
    base = live_server.url

    with chromium_page(base) as page:
        # Signing in: the keys page sends an anonymous visitor to the sign-in form and back.
        page.goto("/keys/")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Username").fill(USERNAME)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="My keys")).to_be_visible()
        expect(page.get_by_text(f"Signed in as {USERNAME}")).to_be_visible()

        # Creating a key: the own space with write and the default namespace are preselected.
        page.get_by_label("Name", exact=True).fill("browser key")
        expect(page.get_by_label("Default namespace")).to_have_value(NAMESPACE)
        page.get_by_role("button", name="Create key").click()
        expect(page.get_by_text("it will not be shown again")).to_be_visible()
        secret = page.locator("#new-key-secret").inner_text().strip()
        assert secret.startswith("mh_")

        # Copy puts exactly the secret on the clipboard, and says so to screen readers.
        page.get_by_role("button", name="Copy").click()
        expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
        assert page.evaluate("navigator.clipboard.readText()") == secret

        status, banks = list_banks(base, secret)
        assert status == 200, banks
        assert NAMESPACE in banks

        # The list page never shows the secret again.
        page.get_by_role("link", name="My keys").click()
        expect(page.get_by_role("row", name="browser key")).to_be_visible()
        assert secret not in page.content()

        # Revoking in the page asks first, saying when the key was last used; after the
        # confirmation the API refuses the key.
        prefix = secret.split("_")[1]
        page.get_by_role("link", name=f"Revoke browser key ({prefix})…").click()
        expect(page.get_by_role("heading", name="Revoke the key “browser key”?")).to_be_visible()
        expect(page.get_by_text("Last used")).to_be_visible()
        assert list_banks(base, secret)[0] == 200  # asking revoked nothing
        page.get_by_role("button", name="Revoke key").click()
        expect(page.get_by_text("is revoked")).to_be_visible()
        expect(page.get_by_role("row", name="browser key").get_by_text("revoked", exact=True)).to_be_visible()
        status, body = list_banks(base, secret)
        assert status == 401, body

        # Browsing: the namespace with data is listed, its page shows its entities and searches them.
        page.get_by_role("link", name="Namespaces").click()
        page.get_by_role("link", name=NAMESPACE).click()
        expect(page.get_by_role("heading", name=NAMESPACE)).to_be_visible()
        expect(page.get_by_role("link", name="Ada Lovelace")).to_be_visible()
        expect(page.get_by_role("link", name="Grace Hopper")).to_be_visible()
        page.get_by_label("Search entities").fill("compiler")
        page.get_by_role("button", name="Search").click()
        expect(page.get_by_role("link", name="Grace Hopper")).to_be_visible()
        expect(page.get_by_role("link", name="Ada Lovelace")).to_have_count(0)
        page.get_by_role("link", name="Grace Hopper").click()
        expect(page.get_by_text("built the first compiler")).to_be_visible()

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    key = ApiKey.objects.get(owner__username=USERNAME)
    assert key.revoked_at is not None
    assert key.last_used_at is not None


def sign_in(page: Page, username: str = USERNAME, password: str = PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="My keys")).to_be_visible()


def test_reloading_the_page_that_shows_a_new_key_creates_no_second_key(live_server):
    get_user_model().objects.create_user(username=USERNAME, password=PASSWORD)

    with chromium_page(live_server.url) as page:
        sign_in(page)
        page.get_by_label("Name", exact=True).fill("reloaded key")
        page.get_by_role("button", name="Create key").click()
        expect(page.get_by_text("it will not be shown again")).to_be_visible()
        secret = page.locator("#new-key-secret").inner_text().strip()
        assert secret.startswith("mh_")

        page.reload()
        expect(page.get_by_role("heading", name="My keys")).to_be_visible()
        expect(page.get_by_role("row", name="reloaded key")).to_have_count(1)
        expect(page.locator("#new-key-secret")).to_have_count(0)
        assert secret not in page.content()
        page.go_back()
        page.go_forward()
        assert secret not in page.content()

    assert ApiKey.objects.filter(owner__username=USERNAME).count() == 1


def test_my_keys_fits_a_390_px_phone_and_revoke_is_reachable_by_keyboard(live_server):
    get_user_model().objects.create_user(username=USERNAME, password=PASSWORD)

    with chromium_page(live_server.url) as page:
        page.set_viewport_size({"width": 390, "height": 844})
        sign_in(page)
        page.get_by_label("Name", exact=True).fill("phone key with a rather long descriptive name")
        page.get_by_role("button", name="Create key").click()
        expect(page.get_by_text("it will not be shown again")).to_be_visible()
        for _ in range(2):  # with the new key's panel, then the plain list
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.goto("/keys/")

        revoke = page.get_by_role("link", name="Revoke phone key with a rather long descriptive name")
        revoke.scroll_into_view_if_needed()
        expect(revoke).to_be_visible()
        box = revoke.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390

        # By keyboard alone: Tab from the top of the page reaches Revoke, and Enter opens the question.
        page.locator("body").focus()
        for _ in range(60):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent.trim()") == "Revoke…":
                break
        else:
            pytest.fail("Tab never reached the Revoke link")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Revoke the key")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.get_by_role("button", name="Revoke key").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_text("is revoked")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

    assert ApiKey.objects.get(owner__username=USERNAME).revoked_at is not None
