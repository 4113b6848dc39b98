"""What the console's browser tests share: a real server, signed-in browsers, axe and screenshots.

- `console_server()` (the `console` fixture: one per test module, tests/browser/conftest.py): daphne on its own SQLite file (tests/mcp_endpoint/conftest.py), so the
  console's Channels routes (the live feed) run as they do in production. Its users have passwords
  and what the operator allowed them: alice writes `org:alice:*`, bob writes `org:bob:*`, carol
  only reads `org:alice:*`, root is a superuser (an operator: everything). Each has an API key
  (`server.keys[name]`) with the same grants, for writes through MCP or REST. Tests work in
  namespaces of their own (`server.namespace("alice")`).
- `signed_in(server, "alice", width=390)`: a chromium page signed in through the real form.
- `assert_accessible(page)`: axe-core (npm, pinned by package-lock.json) run in the page; fails on
  any serious or critical violation.
- `screenshot(page, name)`: saved under test-artifacts/screenshots/ (MEMORYHUB_TEST_ARTIFACTS
  moves it), kept after the run as the test's artifact.

Playwright's sync API keeps an event loop on the test's thread, where Django refuses ORM calls:
data is written through the server (its REST API, MCP, or `server.manage("shell", ...)`).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.mcp_endpoint.conftest import McpServer, running_servers

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("MEMORYHUB_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "screenshots"
PASSWORD = "a long console test password"
PHONE = 390
DESKTOP = 1280

# name → (superuser, allowances): the same reach as the personas' keys in tests/mcp_endpoint.
USERS: dict[str, tuple[bool, list[tuple[str, str]]]] = {
    "alice": (False, [("org:alice:*", "write")]),
    "bob": (False, [("org:bob:*", "write")]),
    "carol": (False, [("org:alice:*", "read")]),
    "root": (True, []),
}

_SET_UP_USERS = """
from django.contrib.auth import get_user_model
from access.models import NamespaceAllowance
users = {users!r}
for name, (superuser, allowances) in users.items():
    user, _ = get_user_model().objects.get_or_create(username=name)
    user.is_staff = user.is_superuser = superuser
    user.set_password({password!r})
    user.save()
    for pattern, permission in allowances:
        NamespaceAllowance.objects.update_or_create(user=user, pattern=pattern, defaults={{"permission": permission}})
"""


@contextmanager
def console_server(data_dir: Path, **extra_env: str) -> Iterator[McpServer]:
    """A running server whose users can sign in (see the module docstring)."""
    with running_servers(data_dir, **extra_env) as (server,):
        server.manage("shell", "-c", _SET_UP_USERS.format(users=USERS, password=PASSWORD))
        yield server


@contextmanager
def browser_page(
    base_url: str, *, width: int = DESKTOP, dark: bool = False, permissions: Sequence[str] = ()
) -> Iterator[Page]:
    """A page of Debian's chromium (headless) on `base_url`, `width` px wide, granted `permissions`
    (e.g. clipboard-read) for that origin."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's chromium. "
            "`make test` installs it, or run `apt-get install chromium`."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                base_url=base_url,
                viewport={"width": width, "height": 900},
                color_scheme="dark" if dark else "light",
            )
            if permissions:
                context.grant_permissions(list(permissions), origin=base_url)
            page = context.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


def sign_in(page: Page, username: str, password: str = PASSWORD, *, then: str = "/console/") -> None:
    page.goto(f"/accounts/login/?next={then}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()


@contextmanager
def signed_in(server: McpServer, username: str, *, width: int = DESKTOP, dark: bool = False) -> Iterator[Page]:
    """A chromium page signed in as `username` on `server`, on /console/."""
    with browser_page(server.base_url, width=width, dark=dark) as page:
        sign_in(page, username)
        yield page


SERIOUS = ("serious", "critical")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (every rule axe runs by default)."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make node_modules/.installed` (npm ci).")
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, so the page's CSP (no inline script) allows it.
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}))"""
    )
    return found


def assert_accessible(page: Page) -> None:
    """No serious or critical axe violation on the page."""
    serious = [v for v in axe_violations(page) if v["impact"] in SERIOUS]
    assert not serious, json.dumps(serious, indent=2)


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as test-artifacts/screenshots/<name>.png and return the path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def no_horizontal_scroll(page: Page) -> None:
    """At a phone's width nothing may stick out sideways (a wide table, a long name).

    Waits for the page's stylesheets first: Playwright sees an element as visible as soon as it
    is laid out, and a layout forced before a slow stylesheet arrives is the unstyled one (CI
    once measured a long word at 686 px that way)."""
    page.wait_for_load_state("load")
    page.wait_for_function(
        """() => [...document.querySelectorAll('link[rel=stylesheet]')].every(link => link.sheet !== null)"""
    )
    page.evaluate("async () => { await document.fonts.ready; }")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px"


# --- data through the server, as an agent writes it --------------------------------------------------


def api(server: McpServer, persona: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One REST call with `persona`'s key: (status, JSON body). POST when `body` is given."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {**server.headers(persona), "Content-Type": "application/json"}
    request = urllib.request.Request(f"{server.base_url}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def write_memory(server: McpServer, persona: str, namespace: str, text: str, **fields: Any) -> str:
    """A free memory written through /v1/memory/write; its id (mem_<n>)."""
    status, body = api(server, persona, "/v1/memory/write", {"namespace": namespace, "text": text, **fields})
    assert status == 200, body
    return str(body["id"] if "id" in body else body["memories"][0]["id"])


def create_entities(server: McpServer, persona: str, namespace: str, entities: list[dict[str, Any]]) -> None:
    status, body = api(server, persona, "/v1/graph/create_entities", {"namespace": namespace, "entities": entities})
    assert status == 200, body


def create_relations(server: McpServer, persona: str, namespace: str, relations: list[dict[str, Any]]) -> None:
    status, body = api(server, persona, "/v1/graph/create_relations", {"namespace": namespace, "relations": relations})
    assert status == 200, body


# Hostile text: what a page must show as text, never run or follow.
HOSTILE = (
    "<script>window.__pwned = 1</script>",
    '"><img src=x onerror="window.__pwned = 1">',
    "javascript:window.__pwned=1",
)


def assert_not_pwned(page: Page) -> None:
    assert page.evaluate("() => window.__pwned") is None, "user content ran as code"
    for link in page.locator("a[href]").all():
        href = (link.get_attribute("href") or "").strip().lower()
        assert not href.startswith("javascript:"), f"a link to {href!r}"
