"""A real server for the hostile-input tests: one per test module, and a plain HTTP client to it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from tests.mcp_endpoint.conftest import McpServer, running_servers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpServer]:
    with running_servers(tmp_path_factory.mktemp("api")) as (live,):
        yield live


@pytest.fixture(scope="module")
def http(server: McpServer) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=server.base_url, timeout=120) as client:
        yield client
