"""Response headers over plain HTTP (the real server on loopback): every MCP answer says
`nosniff` as Django's do, every page carries the Content-Security-Policy, and nothing sends HSTS or
Secure cookies without TLS (that is tests/mcp_endpoint/test_tls.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2

from tests.mcp_endpoint.test_streamable_http import ACCEPT, initialize_message, rpc

if TYPE_CHECKING:
    from tests.mcp_endpoint.conftest import McpServer


def test_every_mcp_answer_says_nosniff(mcp_server: McpServer) -> None:
    key = mcp_server.headers("alice")
    base = mcp_server.base_url
    with httpx2.Client(timeout=10) as http:
        answers = [
            http.post(f"{base}/mcp", json=initialize_message(), headers={**key, "Accept": ACCEPT}),
            http.post(f"{base}/mcp", json=initialize_message(), headers={"Accept": ACCEPT}),  # 401
            http.options(f"{base}/mcp", headers={"Origin": "http://localhost:3000"}),
            http.post(f"{base}/messages?sessionId=nope", json=rpc("ping"), headers=key),
            http.post(f"{base}/api/mcp/messages", json=rpc("tools/list"), headers=key),
            http.post(f"{base}/mcp", json=rpc("ping"), headers={**key, "Host": "evil.example.com"}),
        ]
        with http.stream("GET", f"{base}/sse", headers={**key, "Accept": "text/event-stream"}) as stream:
            answers.append(stream)
        for answer in answers:
            assert answer.headers["X-Content-Type-Options"] == "nosniff", (answer.request.url, answer.status_code)
            assert "Strict-Transport-Security" not in answer.headers


def test_pages_carry_the_content_security_policy(mcp_server: McpServer) -> None:
    with httpx2.Client(base_url=mcp_server.base_url, timeout=10) as http:
        for path in ("/accounts/login/", "/admin/login/", "/docs", "/"):
            page = http.get(path, follow_redirects=True)
            assert page.status_code == 200, path
            assert page.headers["Content-Type"].startswith("text/html")
            policy = page.headers["Content-Security-Policy"]
            assert "default-src 'self'" in policy, path
            assert "script-src 'self';" in policy, path
            assert "frame-ancestors 'none'" in policy
            assert "Strict-Transport-Security" not in page.headers
            for cookie in page.headers.get_list("Set-Cookie"):
                assert "secure" not in cookie.lower(), (path, cookie)
        # The docs page runs no inline script: its Swagger UI set-up is a script file of its own.
        docs = http.get("/docs")
        assert "<script>" not in docs.text
        # JSON answers need no policy.
        assert "Content-Security-Policy" not in http.get("/healthz").headers
