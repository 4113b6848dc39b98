"""The consent page and "Connected apps" in a real browser, on a phone's width (390 px).

A client registers itself (DCR) and sends the browser to /oauth/authorize/ with a PKCE pair; the
user signs in, sees the app's name and where it will send them, chooses "read and write" on their
own space by its label and presses Allow; the client exchanges the code. Then the user disconnects
the app on "Connected apps" and the client's refresh token stops working. The client's side is
plain HTTP (urllib), the browser's is Playwright; the callback is answered by the test (route).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from django.contrib.auth import get_user_model
from playwright.sync_api import Route, expect

from access.models import AuditEvent, OAuthConsent
from tests.browser.console_harness import assert_accessible, browser_page, no_horizontal_scroll, screenshot

USERNAME = "olga"
PASSWORD = "a long consent test password"
REDIRECT = "http://127.0.0.1:45123/callback"
PHONE = 390


def post(url: str, data: dict[str, Any], *, as_json: bool = False) -> tuple[int, Any]:
    body = json.dumps(data).encode() if as_json else urllib.parse.urlencode(data).encode()
    content_type = "application/json" if as_json else "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_a_user_connects_an_app_to_one_namespace_and_disconnects_it(live_server) -> None:
    get_user_model().objects.create_user(username=USERNAME, password=PASSWORD)
    base = live_server.url
    status, registration = post(
        f"{base}/oauth/register/",
        {"client_name": "Pocket Agent", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"},
        as_json=True,
    )
    assert status == 201
    client_id = registration["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    authorize = "/oauth/authorize/?" + urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "s1",
            "scope": "mcp",
            "resource": f"{base}/mcp",
        }
    )
    callbacks: list[str] = []

    def callback(route: Route) -> None:
        callbacks.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<title>done</title><p>connected</p>")

    with browser_page(base, width=PHONE) as page:
        page.route(f"{REDIRECT}*", callback)
        page.goto(authorize)
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Username").fill(USERNAME)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()

        expect(page.get_by_role("heading", name="Connect “Pocket Agent” to your memory?")).to_be_visible()
        expect(page.locator(".redirect-host")).to_have_text("127.0.0.1:45123")
        no_horizontal_scroll(page)
        assert_accessible(page)
        screenshot(page, "oauth-consent-390")
        access = page.get_by_label(f"Access to user:{USERNAME}:*")
        expect(access).to_have_value("")  # nothing is preselected
        page.get_by_label(f"Namespace pattern within user:{USERNAME}:*").fill(f"user:{USERNAME}:notes")
        access.select_option(label="read and write")
        page.get_by_role("button", name="Allow").click()
        page.wait_for_url(f"{REDIRECT}*")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(callbacks[-1]).query)
        assert query["state"] == ["s1"]
        status, tokens = post(
            f"{base}/oauth/token/",
            {
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": REDIRECT,
                "client_id": client_id,
                "code_verifier": verifier,
                "resource": f"{base}/mcp",
            },
        )
        assert status == 200, tokens

        page.goto("/apps/")
        expect(page.get_by_role("heading", name="Connected apps")).to_be_visible()
        expect(page.get_by_role("row", name="Pocket Agent")).to_contain_text(f"user:{USERNAME}:notes")
        no_horizontal_scroll(page)
        assert_accessible(page)
        screenshot(page, "connected-apps-390")
        page.get_by_role("link", name="Revoke Pocket Agent…").click()
        expect(page.get_by_role("heading", name="Disconnect “Pocket Agent”?")).to_be_visible()
        page.get_by_role("button", name="Revoke access").click()
        expect(page.get_by_text("“Pocket Agent” is disconnected")).to_be_visible()
        expect(page.get_by_text("No app is connected to your account.")).to_be_visible()

    status, refused = post(
        f"{base}/oauth/token/",
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": client_id},
    )
    assert (status, refused["error"]) == (400, "invalid_grant")
    assert not OAuthConsent.objects.exists()
    assert list(
        AuditEvent.objects.filter(action__startswith="oauth.").order_by("id").values_list("action", flat=True)
    ) == [
        "oauth.client_registered",
        "oauth.authorized",
        "oauth.revoked",
    ]
