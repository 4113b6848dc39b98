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

from tests.mcp_endpoint.conftest import ROOT, free_port, server_env

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    data_dir = tmp_path_factory.mktemp("tls")
    env = server_env(data_dir)

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, text=True, capture_output=True
        )
        return done.stdout.strip()

    manage("migrate", "--noinput", "-v0")
    key = manage("create_api_key", "--user", "tls", "--grant", "org:tls:*=write", "--default-namespace", "org:tls:a")
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
