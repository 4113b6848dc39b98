"""A database that stays busy past a writer's wait is answered as `store_busy` on every surface
(503 with Retry-After over REST and the MemOS API, a tool error over MCP), never as a server
error, and the same call succeeds once the database is free.

The lock is real: another connection holds SQLite's write lock (BEGIN IMMEDIATE) past the busy
timeout, or holds a PostgreSQL table lock past `lock_timeout`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.test import Client

from kernel.sql import is_busy
from mcp_endpoint import protocol
from mcp_endpoint.jsonrpc import classify
from tests.conftest import Persona

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def sqlite_write_lock_held() -> Iterator[None]:
    """Another connection holds the write lock; this thread's connection waits 50 ms for it."""
    connection.ensure_connection()
    raw = connection.connection
    waited = raw.execute("PRAGMA busy_timeout").fetchone()[0]
    other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        raw.execute("PRAGMA busy_timeout = 50")
        yield
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(waited)}")
        other.execute("ROLLBACK")
        other.close()


@contextmanager
def postgres_held(statement: str, params: tuple[Any, ...] = ()) -> Iterator[None]:
    """Another connection runs `statement` (a lock) in a transaction left open; this thread's
    connection waits 50 ms for a lock."""
    connection.ensure_connection()
    settings = connection.get_connection_params()
    other = psycopg.connect(**{k: v for k, v in settings.items() if k not in ("cursor_factory", "context")})
    try:
        other.execute(statement, params)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '50ms'")
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
        other.rollback()
        other.close()


def postgres_table_locked() -> AbstractContextManager[None]:
    """The entities and observations (memories among them), held exclusively."""
    return postgres_held("LOCK TABLE graph_entity, graph_observation IN ACCESS EXCLUSIVE MODE")


@pytest.fixture
def database_busy() -> Any:
    return postgres_table_locked if connection.vendor == "postgresql" else sqlite_write_lock_held


def post(client: Client, path: str, body: dict[str, Any], persona: Persona) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json", **persona.headers)


def call_tool(persona: Persona, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    session = protocol.Connection(access=persona.key.to_access(), namespace=persona.namespace)
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    initialize = {"protocolVersion": "2025-06-18", "capabilities": {}}
    protocol.handle(session, classify({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": initialize}))
    protocol.handle(session, classify({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    reply = protocol.handle(session, classify(message)).message
    assert reply is not None
    return reply["result"]


ENTITY = {"name": "Ada", "entityType": "person", "observations": ["wrote the first program"]}


def test_a_busy_store_is_a_503_with_retry_after_over_rest_and_the_call_succeeds_later(
    client: Client, alice_key: Persona, database_busy: Any
) -> None:
    body = {"namespace": alice_key.namespace, "entities": [ENTITY]}
    with database_busy():
        busy = post(client, "/v1/graph/create_entities", body, alice_key)
        written = post(
            client, "/v1/memory/write", {"namespace": alice_key.namespace, "text": "lunch is at noon"}, alice_key
        )
    for response in (busy, written):
        assert response.status_code == 503, response.content
        assert response["Retry-After"] == "1"
        assert response.json()["error"]["code"] == "store_busy"
        assert response.json()["error"]["details"] == {"retry_after": 1}

    again = post(client, "/v1/graph/create_entities", body, alice_key)
    assert again.status_code == 200, again.content
    assert again.json() == {"entities": [ENTITY], "skipped": []}
    opened = post(client, "/v1/graph/open_nodes", {"namespace": alice_key.namespace, "names": ["Ada"]}, alice_key)
    assert opened.json()["entities"][0]["observations"] == ["wrote the first program"]


def test_a_busy_store_is_a_tool_error_over_mcp(alice_key: Persona, database_busy: Any) -> None:
    with database_busy():
        result = call_tool(alice_key, "create_entities", {"entities": [ENTITY]})
    assert result["isError"] is True
    assert result["content"][0]["text"] == "The store is busy with other writes; retry in a moment."

    result = call_tool(alice_key, "create_entities", {"entities": [ENTITY]})
    assert result["isError"] is False


def test_a_busy_store_is_a_503_over_the_memos_api(client: Client, alice_key: Persona, database_busy: Any) -> None:
    body = {"user_id": "u1", "messages": "Dana lives in Rome."}
    with database_busy():
        response = post(client, "/product/add", body, alice_key)
    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "1"
    assert response.json() == {
        "code": 503,
        "message": "The store is busy with other writes; retry in a moment.",
        "data": None,
    }
    assert post(client, "/product/add", body, alice_key).status_code == 200


def test_only_a_busy_database_counts_as_busy() -> None:
    """A wrong statement stays an error of its own (a bug, a 500), not a busy store."""
    from django.db import DatabaseError

    with pytest.raises(DatabaseError) as wrong, connection.cursor() as cursor:
        cursor.execute("SELECT no_such_column FROM graph_entity")
    assert not is_busy(wrong.value)


def key_row_locked(persona: Persona) -> AbstractContextManager[None]:
    """What writing the key's last use needs, held by another connection: SQLite's write lock,
    or the key's row in PostgreSQL (reads of the store stay free on both)."""
    if connection.vendor != "postgresql":
        return sqlite_write_lock_held()
    return postgres_held("SELECT id FROM access_apikey WHERE id = %s FOR UPDATE", (persona.key.pk,))


def test_noting_a_keys_use_never_fails_a_read_while_writers_hold_the_store(client: Client, alice_key: Persona) -> None:
    """The key's `last_used_at` is bookkeeping: when it cannot be written at once the read goes
    on, and a later request writes it."""
    from access.models import ApiKey

    with key_row_locked(alice_key):
        read = post(client, "/v1/graph/read_graph", {"namespace": alice_key.namespace}, alice_key)
    assert read.status_code == 200, read.content
    assert ApiKey.objects.get(pk=alice_key.key.pk).last_used_at is None
    assert post(client, "/v1/graph/read_graph", {"namespace": alice_key.namespace}, alice_key).status_code == 200
    assert ApiKey.objects.get(pk=alice_key.key.pk).last_used_at is not None
