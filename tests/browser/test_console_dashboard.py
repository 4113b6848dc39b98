"""The console overview in a real browser: alice's namespaces and writes, bob's none of them; a
write by alice's agent over MCP (the official SDK) appears on her open dashboard without a reload,
and not on bob's; hostile text stays text; phone width, dark mode, axe."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from playwright.sync_api import expect

from tests.browser.console_harness import (
    HOSTILE,
    PHONE,
    assert_accessible,
    assert_not_pwned,
    no_horizontal_scroll,
    screenshot,
    sign_in,
    signed_in,
    write_memory,
)
from tests.mcp_endpoint.conftest import McpServer


def _mcp_add_memory(server: McpServer, namespace: str, text: str) -> Any:
    """add_memory through the official MCP SDK with alice's key, on a thread of its own: the test's
    thread belongs to Playwright's event loop."""
    found: dict[str, Any] = {}

    def run() -> None:
        async def call() -> Any:
            async with server.client("alice", namespace=namespace) as client:
                return await client.call_tool("add_memory", {"memory_content": text, "cube_id": namespace})

        try:
            found["result"] = asyncio.run(call())
        except BaseException as error:
            found["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if "error" in found:
        raise found["error"]
    return found["result"]


def test_the_overview_and_a_live_write(console: McpServer) -> None:
    alice_ns = console.namespace("alice")
    bob_ns = console.namespace("bob")
    write_memory(console, "alice", alice_ns, "alice's first note")
    write_memory(console, "bob", bob_ns, "bob's private note")

    with signed_in(console, "alice") as alice:
        # bob in a context of his own in the same browser (one Playwright per thread).
        assert alice.context.browser is not None
        bob = alice.context.browser.new_context(base_url=console.base_url).new_page()
        sign_in(bob, "bob")
        for page in (alice, bob):
            expect(page.locator("#recent-list")).to_have_attribute("data-live", "open")
        expect(alice.get_by_role("heading", name=alice_ns)).to_be_visible()
        expect(alice.locator("#recent-list")).to_contain_text("alice's first note")
        assert bob_ns not in alice.content()
        assert "bob's private note" not in alice.content()
        assert alice_ns not in bob.content()
        expect(
            alice.get_by_role("img", name=f"Objects created per day in {alice_ns}, last 30 days: 1 in all")
        ).to_be_visible()
        assert_accessible(alice)
        screenshot(alice, "console-dashboard-desktop")

        hostile = f"live from MCP {' '.join(HOSTILE)}"
        _mcp_add_memory(console, alice_ns, hostile)
        newest = alice.locator("#recent-list li").first
        expect(newest).to_contain_text("live from MCP <script>window.__pwned = 1</script>")
        expect(newest).to_contain_text("via mcp")
        expect(alice.locator("#live-announcer")).to_have_text("1 new write")
        assert_not_pwned(alice)
        assert_accessible(alice)
        # bob's dashboard, open all along, never got it (nor anything else of alice's).
        bob.wait_for_timeout(1500)
        assert "live from MCP" not in bob.content()
        assert alice_ns not in bob.content()
        # The server-rendered list has it too, after a reload.
        alice.reload()
        expect(alice.locator("#recent-list li").first).to_contain_text("live from MCP")
        assert_not_pwned(alice)


def test_the_overview_at_phone_width_and_in_dark_mode(console: McpServer) -> None:
    namespace = console.namespace("alice")
    write_memory(console, "alice", namespace, "a note with a long unbroken word " + "x" * 120)
    with signed_in(console, "alice", width=PHONE) as page:
        expect(page.get_by_role("heading", name="Recent writes")).to_be_visible()
        no_horizontal_scroll(page)
        assert_accessible(page)
        screenshot(page, "console-dashboard-phone")
    with signed_in(console, "alice", dark=True) as page:
        expect(page.get_by_role("heading", name="Usage per key")).to_be_visible()
        assert_accessible(page)
        screenshot(page, "console-dashboard-dark")
