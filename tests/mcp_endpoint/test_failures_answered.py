"""An exception no consumer answered is still answered in the MCP edge's format, a JSON-RPC
error (mcp_endpoint/http.py `FailuresAnswered`), never the ASGI server's HTML page: 503 with
Retry-After when the database stayed busy, 500 Internal error otherwise. In process, through the
real routes, with the key check of a stateless call made to fail."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from channels.routing import URLRouter
from channels.testing import HttpCommunicator

from mcp_endpoint import consumers
from mcp_endpoint.routing import urlpatterns
from tests.conftest import Persona
from tests.mcp_endpoint.conftest import asgi_headers, stateless_call

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio]

ROUTES = URLRouter(urlpatterns)

CALL, CALL_HEADERS = stateless_call("search_nodes", {"query": "x"})


def headers(key: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"x-api-key", key.encode()),
        *asgi_headers(CALL_HEADERS),
    ]


def real_busy_error(tmp_path: Path) -> sqlite3.OperationalError:
    """What sqlite3 raises when another connection holds the write lock past the wait."""
    holder = sqlite3.connect(tmp_path / "locked.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(tmp_path / "locked.sqlite3", isolation_level=None, timeout=0)
    try:
        waiter.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as busy:
        return busy
    finally:
        holder.close()
        waiter.close()
    raise AssertionError("the write lock was not held")


async def post_call(persona: Persona) -> dict:
    communicator = HttpCommunicator(
        ROUTES, "POST", "/mcp", body=json.dumps(CALL).encode(), headers=headers(persona.secret)
    )
    return await communicator.get_response(timeout=10)


async def test_a_bug_is_a_json_rpc_internal_error(
    alice_key: Persona, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug in the key check")

    monkeypatch.setattr(consumers, "check", broken)
    response = await post_call(alice_key)
    assert response["status"] == 500
    assert dict(response["headers"])[b"Content-Type"] == b"application/json"
    assert json.loads(response["body"]) == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32603, "message": "Internal error"},
    }
    assert "a bug in the key check" in caplog.text  # logged with its traceback, not sent


async def test_a_busy_database_is_a_503_with_retry_after(
    alice_key: Persona, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    busy = real_busy_error(tmp_path)

    def locked(*args: object) -> None:
        raise busy

    monkeypatch.setattr(consumers, "check", locked)
    response = await post_call(alice_key)
    assert response["status"] == 503
    assert dict(response["headers"])[b"Retry-After"] == b"1"
    assert json.loads(response["body"])["error"] == {
        "code": -32603,
        "message": "The store is busy with other writes; retry in a moment.",
    }
