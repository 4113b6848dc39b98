"""The API docs pages in a real browser, offline: every asset must come from this server.

A route handler lets requests to the live server through and aborts (and records) any other, as
a machine without internet would; the page must still render its operations.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route, expect

from tests.browser.test_self_service import chromium_page

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.mark.parametrize(
    ("path", "operation"),
    [("/product/docs", "/product/add"), ("/docs", "/v1/memory/write")],
)
def test_the_docs_render_their_operations_with_nothing_from_outside(live_server, path, operation):
    elsewhere: list[str] = []
    errors: list[str] = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with chromium_page(live_server.url) as page:
        page.route("**/*", only_local)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path)
        expect(page.locator(".opblock-summary-path", has_text=operation).first).to_be_visible()

    assert elsewhere == []
    assert errors == []
