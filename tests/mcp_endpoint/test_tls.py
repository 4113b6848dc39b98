"""MCP over HTTPS: daphne serving TLS itself (`make run-tls`), reached by the official SDK."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.mcp_endpoint.conftest import ROOT, McpServer, free_port, prepare_database, server_env

pytestmark = pytest.mark.anyio

PASSWORD = "a long tls test password"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    data_dir = tmp_path_factory.mktemp("tls")
    server = McpServer(base_url="", data_dir=data_dir, env=server_env(data_dir))
    # A migrated database with the personas' keys (tests/mcp_endpoint/conftest.py); alice's key.
    prepare_database(server)
    env, key = server.env, server.keys["alice"]

    def manage(*args: str) -> str:
        return server.manage(*args).stdout.strip()

    # A password, to sign in to the pages (the cookie test).
    manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model as m; u = m().objects.get(username='alice'); "
        f"u.set_password({PASSWORD!r}); u.save()",
    )
    port = free_port()
    endpoint = manage("tls_endpoint", "--host", "127.0.0.1", "--port", str(port))
    cert = data_dir / "tls" / "cert.pem"
    assert cert.is_file()
    assert (data_dir / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-e", endpoint, "memoryhub.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    context = ssl.create_default_context(cafile=str(cert))
    url = f"https://localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx2.get(f"{url}/healthz", verify=context, timeout=2).raise_for_status()
                break
            except httpx2.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.2)
        yield url, cert, key
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_the_sdk_works_over_https_with_the_served_certificate(tls_server: tuple[str, Path, str]) -> None:
    url, cert, key = tls_server
    context = ssl.create_default_context(cafile=str(cert))
    async with (
        httpx2.AsyncClient(headers={"X-API-Key": key}, verify=context, timeout=30) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy") as client,
    ):
        created = await client.call_tool(
            "create_entities", {"entities": [{"name": "TLS", "entityType": "protocol", "observations": ["secure"]}]}
        )
        assert not created.is_error
        found = await client.call_tool("open_nodes", {"names": ["TLS"]})
        assert found.structured_content is not None
        assert found.structured_content["entities"][0]["observations"] == ["secure"]


def test_plain_http_and_untrusted_clients_are_refused(tls_server: tuple[str, Path, str]) -> None:
    url, _, _ = tls_server
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"{url}/healthz", timeout=5)  # the system trust store does not know the certificate
    with pytest.raises(httpx2.TransportError):
        httpx2.get(url.replace("https://", "http://") + "/healthz", timeout=5)


def test_over_https_cookies_are_secure_and_hsts_is_sent(tls_server: tuple[str, Path, str]) -> None:
    """Served over TLS (daphne's ssl endpoint, as `make run-tls` does), the sign-in page's CSRF
    cookie and the session cookie are `Secure`, and every answer (pages, REST, MCP) carries HSTS."""
    url, cert, key = tls_server
    context = ssl.create_default_context(cafile=str(cert))
    with httpx2.Client(base_url=url, verify=context, timeout=10) as http:
        login = http.get("/accounts/login/")
        assert login.status_code == 200
        csrf_cookie = next(value for value in login.headers.get_list("Set-Cookie") if value.startswith("csrftoken="))
        assert "; secure" in csrf_cookie.lower()
        signed_in = http.post(
            "/accounts/login/",
            data={"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": http.cookies["csrftoken"]},
            headers={"Referer": f"{url}/accounts/login/"},
        )
        assert signed_in.status_code == 302, signed_in.text
        session_cookie = next(
            value for value in signed_in.headers.get_list("Set-Cookie") if value.startswith("sessionid=")
        )
        assert "; secure" in session_cookie.lower()
        assert "; httponly" in session_cookie.lower()
        mcp = http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"X-API-Key": key, "Accept": "application/json, text/event-stream"},
        )
        for response in (login, signed_in, http.get("/healthz"), mcp):
            assert response.headers["Strict-Transport-Security"].startswith("max-age="), response.url
            assert int(response.headers["Strict-Transport-Security"].split("=")[1].split(";")[0]) > 0
            assert response.headers["X-Content-Type-Options"] == "nosniff", response.url
