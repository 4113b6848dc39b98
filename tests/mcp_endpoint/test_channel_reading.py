"""Only a consumer holding a stream open reads its channel (mcp_endpoint/http.py
`McpHttpConsumer.__call__` says why: with Redis, a consumer cancelled while its pop of the
process's messages is on the wire loses a message meant for another, and every request that ends
at once is cancelled so). In process, through the real routes and consumers: a legacy SSE
session's `POST /messages` gets its replies onto the stream without the POST ever reading a
channel, and a plain tool call reads none either."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import ApplicationCommunicator, HttpCommunicator

from mcp_endpoint.routing import urlpatterns
from tests.conftest import Persona
from tests.mcp_endpoint.conftest import asgi_headers, stateless_call

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio]

ROUTES = URLRouter(urlpatterns)


def headers(key: str, accept: bytes = b"application/json, text/event-stream") -> list[tuple[bytes, bytes]]:
    return [
        (b"host", b"127.0.0.1"),
        (b"accept", accept),
        (b"content-type", b"application/json"),
        (b"x-api-key", key.encode()),
    ]


@pytest.fixture
def reads() -> Iterator[list[str]]:
    """The channel of every `receive` a consumer makes on the channel layer."""
    layer = get_channel_layer()
    seen: list[str] = []
    original = layer.receive

    async def receive(channel: str) -> Any:
        seen.append(channel)
        return await original(channel)

    layer.receive = receive
    try:
        yield seen
    finally:
        del layer.receive


async def events(stream: ApplicationCommunicator, count: int) -> list[tuple[str, str]]:
    """The next `count` SSE events of the stream as (event, data), comments skipped."""
    found: list[tuple[str, str]] = []
    buffer = ""
    while len(found) < count:
        message = await stream.receive_output(timeout=10)
        if message["type"] != "http.response.body":
            continue
        buffer += message["body"].decode()
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
            if fields:
                found.append((fields.get("event", "message"), fields.get("data", "")))
    return found


async def test_legacy_messages_go_out_on_the_stream_and_only_the_stream_reads_its_channel(
    alice_key: Persona, reads: list[str]
) -> None:
    stream = ApplicationCommunicator(
        ROUTES,
        {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "path": "/sse",
            "raw_path": b"/sse",
            "root_path": "",
            "query_string": b"",
            "scheme": "http",
            "headers": headers(alice_key.secret, b"text/event-stream"),
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        },
    )
    await stream.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await stream.receive_output(timeout=10)
    assert start["status"] == 200
    ((kind, endpoint),) = await events(stream, 1)
    assert kind == "endpoint"
    path, query = endpoint.split("?", 1)
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2024-11-05",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    for request in requests:
        response = await HttpCommunicator(
            ROUTES, "POST", f"{path}?{query}", body=json.dumps(request).encode(), headers=headers(alice_key.secret)
        ).get_response(timeout=10)
        assert response["status"] == 202
    replies = [json.loads(data) for kind, data in await events(stream, 2) if kind == "message"]
    assert [reply["id"] for reply in replies] == [1, 2]
    assert replies[0]["result"]["protocolVersion"] == "2024-11-05"
    assert any(tool["name"] == "search_nodes" for tool in replies[1]["result"]["tools"])
    # One consumer read a channel: the stream's (its keep-alive and its messages).
    assert len(set(reads)) == 1
    await stream.send_input({"type": "http.disconnect"})
    await stream.wait(timeout=10)


async def test_a_plain_tool_call_reads_no_channel(alice_key: Persona, reads: list[str]) -> None:
    call, extra = stateless_call("search_nodes", {"query": "x"})
    modern = [*headers(alice_key.secret), *asgi_headers(extra)]
    response = await HttpCommunicator(
        ROUTES, "POST", "/mcp", body=json.dumps(call).encode(), headers=modern
    ).get_response(timeout=10)
    assert response["status"] == 200, response["body"]
    assert json.loads(response["body"])["result"]["isError"] is False
    assert reads == []
