"""The pages under their Content-Security-Policy, in a real browser (Debian's chromium): every page
an operator or a user visits renders, runs its scripts, and the browser reports no violation and no
console error. The policy forbids anything from other origins and inline scripts (issue 16, item 9),
so this is what proves no page needed either: the sign-in form, the key and namespace pages, the
wallet, the admin (its index and a change list with its JavaScript), and the Swagger UI at /docs.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from playwright.sync_api import ConsoleMessage, expect

from tests.browser.test_self_service import chromium_page

USERNAME = "olga"
PASSWORD = "a long csp test password"
# Collects what the browser reports; set before any page script runs.
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def test_every_page_renders_under_the_policy_without_a_violation(live_server) -> None:
    get_user_model().objects.create_superuser(username=USERNAME, password=PASSWORD, email="")
    with chromium_page(live_server.url) as page:
        errors: list[str] = []

        def console(message: ConsoleMessage) -> None:
            # The admin's pages name no icon, so the browser asks for /favicon.ico (there is none).
            if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
                errors.append(f"{message.text} ({message.location.get('url')})")

        page.on("console", console)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.context.add_init_script(WATCH)

        def visited(path: str) -> None:
            response = page.goto(path)
            assert response is not None, path
            assert response.ok, path
            assert "default-src 'self'" in (response.headers.get("content-security-policy") or ""), path

        def clean(path: str) -> None:
            page.wait_for_load_state("networkidle")
            assert page.evaluate("window.__violations") == [], path
            assert errors == [], (path, errors)

        visited("/accounts/login/")
        clean("/accounts/login/")
        page.get_by_label("Username").fill(USERNAME)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="My keys")).to_be_visible()
        clean("/keys/")

        for path in ("/", "/keys/", "/namespaces/", "/wallet/", "/admin/", "/admin/access/apikey/"):
            visited(path)
            clean(path)
        # The admin's own JavaScript ran (its change list builds the action bar's counter).
        expect(page.locator("#changelist-form")).to_be_visible()

        # Swagger UI: its bundle and its set-up script (a file, not inline) load, fetch the schema
        # and draw the operations.
        visited("/docs")
        expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
        clean("/docs")
