"""DNS rebinding: every MCP route (Channels, in front of Django) checks the Host header against
ALLOWED_HOSTS, as Django's views do, and a refusal never tells a browser it may read it.

A page on evil.example.com whose DNS name was rebound to 127.0.0.1 sends `Host:
evil.example.com` with `Origin: http://evil.example.com`: the Origin equals the Host, so the Origin
check alone let it through (issue 16, item 3; the MCP conformance scenario
`dns-rebinding-protection` sends exactly this).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2
import pytest

from tests.mcp_endpoint.test_streamable_http import error_of, initialize_message, rpc

if TYPE_CHECKING:
    from tests.mcp_endpoint.conftest import McpServer

EVIL = "evil.example.com"
REBOUND = {"Host": EVIL, "Origin": f"http://{EVIL}"}
STREAM = {"Accept": "text/event-stream"}
BOTH = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
def http() -> httpx2.Client:
    with httpx2.Client(timeout=10) as client:
        yield client


def refused(response: httpx2.Response) -> None:
    """403 with the MCP edge's error body, and nothing a browser could use."""
    error_of(response, 403, -32600)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "MCP-Session-Id" not in response.headers


@pytest.mark.parametrize("extra", [{}, {"Origin": f"http://{EVIL}"}], ids=["no-origin", "origin-equals-host"])
def test_a_foreign_host_is_refused_on_every_mcp_route(mcp_server: McpServer, http: httpx2.Client, extra) -> None:
    base = mcp_server.base_url
    key = mcp_server.headers("alice")
    host = {"Host": EVIL, **extra}
    refused(http.post(f"{base}/mcp", json=initialize_message(), headers={**key, **BOTH, **host}))
    refused(http.get(f"{base}/mcp", headers={**key, **STREAM, **host, "MCP-Session-Id": "x"}))
    refused(http.delete(f"{base}/mcp", headers={**key, **host, "MCP-Session-Id": "x"}))
    refused(http.get(f"{base}/sse", headers={**key, **STREAM, **host}))
    refused(http.get(f"{base}/sse?key={mcp_server.keys['alice']}", headers={**STREAM, **host}))
    refused(http.post(f"{base}/messages?sessionId=x", json=rpc("ping"), headers={**key, **host}))
    refused(http.post(f"{base}/api/mcp/messages", json=rpc("tools/list"), headers={**key, **BOTH, **host}))
    refused(http.get(f"{base}/api/mcp/sse", headers={**key, **STREAM, **host}))
    for path in ("/mcp", "/sse", "/messages", "/api/mcp/messages", "/api/mcp/sse"):
        preflight = http.options(
            f"{base}{path}", headers={**host, "Access-Control-Request-Method": "POST", "Origin": f"http://{EVIL}"}
        )
        refused(preflight)


def test_the_conformance_rebinding_request_is_refused_and_a_local_host_accepted(
    mcp_server: McpServer, http: httpx2.Client
) -> None:
    key = mcp_server.headers("alice")
    refused(http.post(mcp_server.url, json=initialize_message(), headers={**key, **BOTH, **REBOUND}))
    local = mcp_server.base_url.removeprefix("http://")
    for host in (local, local.replace("127.0.0.1", "localhost"), "127.0.0.1"):
        response = http.post(
            mcp_server.url, json=initialize_message(), headers={**key, **BOTH, "Host": host, "Origin": f"http://{host}"}
        )
        assert response.status_code == 200, (host, response.text)
        assert response.headers["MCP-Session-Id"]
        assert response.headers["Access-Control-Allow-Origin"] == f"http://{host}"


def test_a_refused_origin_is_never_reflected(mcp_server: McpServer, http: httpx2.Client) -> None:
    # A right Host with a foreign Origin: 403 from the Origin check, which must not tell the page
    # it may read the answer either.
    origin = {"Origin": f"http://{EVIL}"}
    key = mcp_server.headers("alice")
    refused(http.post(mcp_server.url, json=initialize_message(), headers={**key, **BOTH, **origin}))
    refused(http.options(mcp_server.url, headers={**origin, "Access-Control-Request-Method": "POST"}))
    refused(http.get(f"{mcp_server.base_url}/api/mcp/sse", headers={**key, **STREAM, **origin}))


def test_a_missing_or_malformed_host_is_refused(mcp_server: McpServer, http: httpx2.Client) -> None:
    key = mcp_server.headers("alice")
    for host in ("127.0.0.1:abc", "127.0.0.1@evil.example.com", "evil.example.com#127.0.0.1"):
        refused(http.post(mcp_server.url, json=initialize_message(), headers={**key, **BOTH, "Host": host}))
