"""The console's server fixture (tests/browser/console_harness.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.console_harness import console_server
from tests.mcp_endpoint.conftest import McpServer


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpServer]:
    """One running console server per test module (users, passwords, keys: console_harness)."""
    with console_server(tmp_path_factory.mktemp("console")) as server:
        yield server
