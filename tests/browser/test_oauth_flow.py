"""A remote MCP client connects with OAuth, end to end: the official MCP SDK's OAuthClientProvider
against a real server, Debian's chromium (Playwright) as the user's browser.

The SDK finds the authorization server from the 401's `resource_metadata` challenge and the
protected-resource metadata, registers itself (RFC 7591), and sends the user to the consent page
with a PKCE S256 challenge and `resource=<server>/mcp`. The browser signs in as alice, lets the
client write `org:alice:*` only, and is redirected to the client's loopback callback, which the
test catches (no server listens there: the browser's navigation is intercepted). The SDK exchanges
the code, then lists tools, writes and reads a memory in alice's namespace, and is refused in
bob's. A second client session reuses the stored tokens (no browser), and a refresh rotates them.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from playwright.sync_api import expect

from tests.browser.console_harness import PASSWORD, assert_accessible, browser_page, screenshot
from tests.mcp_endpoint.conftest import McpServer

CALLBACK = "http://127.0.0.1:47999/callback"


class MemoryStorage:
    """The SDK's TokenStorage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Browser:
    """The user's side: opens the authorization URL, signs in, consents, and returns where the
    server sent the browser back (the client's callback URL with code and state)."""

    def __init__(self, base_url: str, *, username: str, allow: str) -> None:
        self.base_url = base_url
        self.username = username
        self.allow = allow  # the namespace pattern to grant write on
        self.returned: str | None = None
        self.consent_seen: dict[str, str] = {}

    def visit(self, url: str) -> None:
        with browser_page(self.base_url) as page:
            caught: list[str] = []

            def catch(route: Any) -> None:
                caught.append(route.request.url)
                route.fulfill(status=200, content_type="text/html", body="<p>You can close this window.</p>")

            page.route(f"{CALLBACK}*", catch)
            page.goto(url)
            # Not signed in yet: the authorization endpoint sends the browser to sign in, then back.
            page.get_by_label("Username").fill(self.username)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name=re.compile(r"^Connect .* to your memory\?$"))).to_be_visible()
            self.consent_seen["text"] = page.locator("main").inner_text()
            assert_accessible(page)
            screenshot(page, "oauth-consent")
            page.get_by_label(f"Access to {self.allow}", exact=True).select_option(label="read and write")
            page.get_by_role("button", name="Allow").click()
            for _ in range(100):
                if caught:
                    break
                page.wait_for_timeout(100)
            if not caught:
                screenshot(page, "oauth-consent-stuck")
            assert caught, f"the browser was not sent back to the client's callback: {page.url}"
            self.returned = caught[0]


def _no_second_visit(url: str) -> None:
    raise AssertionError(f"the client sent the user to the browser again: {url}")


def _client(server: McpServer, storage: MemoryStorage, browser: Browser | None) -> OAuthClientProvider:
    returned: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        assert browser is not None, "this session should not need the browser"
        await asyncio.to_thread(browser.visit, url)
        assert browser.returned is not None
        returned["url"] = browser.returned

    async def callback_handler() -> AuthorizationCodeResult:
        query = parse_qs(urlsplit(returned["url"]).query)
        return AuthorizationCodeResult(
            code=query["code"][0], state=query.get("state", [None])[0], iss=query.get("iss", [None])[0]
        )

    metadata = OAuthClientMetadata(
        client_name="MemoryHub end-to-end test client",
        redirect_uris=[CALLBACK],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
    )
    return OAuthClientProvider(
        server_url=f"{server.base_url}/mcp",
        client_metadata=metadata,
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )


async def _session(server: McpServer, auth: OAuthClientProvider, alice_ns: str, bob_ns: str) -> dict[str, Any]:
    async with (
        httpx2.AsyncClient(auth=auth, timeout=60) as http,
        Client(streamable_http_client(f"{server.base_url}/mcp", http_client=http)) as client,
    ):
        tools = await client.list_tools()
        written = await client.call_tool(
            "add_memory", {"memory_content": "Written by an OAuth client", "cube_id": alice_ns}
        )
        found = await client.call_tool("search_memories", {"query": "OAuth client", "cube_ids": [alice_ns]})
        refused = await client.call_tool("add_memory", {"memory_content": "Should not be written", "cube_id": bob_ns})
        return {"tools": tools, "written": written, "found": found, "refused": refused}


def test_an_mcp_client_connects_with_oauth_and_reaches_only_what_the_user_allowed(console: McpServer) -> None:
    alice_ns, bob_ns = console.namespace("alice"), console.namespace("bob")
    storage = MemoryStorage()
    browser = Browser(console.base_url, username="alice", allow="org:alice:*")
    outcome: dict[str, Any] = {}

    auth = _client(console, storage, browser)

    def run() -> None:  # the SDK's event loop, away from Playwright's on this thread
        outcome.update(asyncio.run(_session(console, auth, alice_ns, bob_ns)))

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=180)
    assert not worker.is_alive(), "the OAuth flow did not finish"

    consent = browser.consent_seen["text"]
    assert "MemoryHub end-to-end test client" in consent
    assert "127.0.0.1" in consent  # where the browser will be sent

    assert outcome["tools"].tools, "no tools listed"
    assert not outcome["written"].is_error, outcome["written"]
    assert "Written by an OAuth client" in str(outcome["found"].structured_content)
    assert outcome["refused"].is_error
    assert storage.tokens is not None
    assert storage.tokens.refresh_token

    # A second session needs no browser: the client's access token has run out (its clock is moved
    # past the token's expiry), so the SDK refreshes it first, and the refresh token rotates.
    first_refresh = storage.tokens.refresh_token
    browser.visit = _no_second_visit
    auth.context.token_expiry_time = 1.0  # a second after the epoch: long past
    again: dict[str, Any] = {}

    def rerun() -> None:
        again.update(asyncio.run(_session(console, auth, alice_ns, bob_ns)))

    worker = threading.Thread(target=rerun)
    worker.start()
    worker.join(timeout=120)
    assert not again["written"].is_error
    assert again["refused"].is_error
    assert storage.tokens.refresh_token
    assert storage.tokens.refresh_token != first_refresh
