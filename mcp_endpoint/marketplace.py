"""The marketplace endpoint of the marketplace seed, as Channels consumers.

- `POST /api/mcp/messages`: plain JSON-RPC over POST, the answer in the response. No session
  and no handshake needed: every request stands alone (initialize is answered, and optional).
  Tools are the `agents` category under the seed's names; what else it answers as the seed does
  (initialize, ping, the language of tool messages) is its `PROFILE`. A request that changes the
  caller's tool list answers as an SSE stream (notification, then the response) when the client
  accepts text/event-stream, as MCP SDK clients do; plain JSON otherwise.
- `GET /api/mcp/sse`: a long-lived SSE stream. The first event is `connection/established`
  with a connection id and serverInfo, then `: heartbeat` every 30 s; tool-list changes of the
  caller arrive on it. Everything it holds is released when the client disconnects.

Keys: `x-momoai-key`, `Authorization: Bearer` (and every other accepted form); `?key=` on the
SSE GET. Auth failures are JSON-RPC -32600 "Missing API key" / "Invalid API key", HTTP 401.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from access import authentication
from mcp_endpoint import events, protocol, registry
from mcp_endpoint.consumers import VERSION_HEADER
from mcp_endpoint.http import McpHttpConsumer, answer, sse_event
from mcp_endpoint.jsonrpc import INVALID_REQUEST, ProtocolError, classify, dumps, notification, parse
from mcp_endpoint.notifications import marketplace_group

CATEGORIES = ("agents",)

INSTRUCTIONS = (
    "The agent marketplace: find agents with search_momo_agents, buy tokens for one with "
    "buy_agent_tokens (paid from your credits), then call it with its momo_agent_<id> tool, which "
    "appears in tools/list once you hold tokens for it. Each call spends the tokens the agent used."
)


def _seed_named(tool: registry.Tool) -> dict[str, Any]:
    """The tool under the seed's name (its alias), where it has one."""
    return {**tool.describe(), "name": tool.alias or tool.name}


# The seed's answers: initialize with empty params is answered 2024-11-05 and announces tools
# only, ping answers {"status": "pong"}, tools keep the seed's names, and tool messages are in
# Chinese unless the client or its prompt says otherwise.
PROFILE = protocol.Profile(
    instructions=INSTRUCTIONS,
    capabilities={"tools": {"listChanged": True}},
    ping={"status": "pong"},
    unnamed_version=protocol.HANDSHAKE_VERSIONS[0],
    describe=_seed_named,
    language="zh",
)


class MarketplaceConsumer(McpHttpConsumer):
    def unauthenticated_message(self, problem: Any) -> str:
        # The seed's two messages: whether a key was sent at all, never why it was refused.
        presented = authentication.key_from_request(self.headers, self.query, allow_query=True)
        return "Invalid API key" if presented else "Missing API key"

    def connection(self) -> protocol.Connection:
        version = self.headers.get(VERSION_HEADER)
        return protocol.Connection(
            access=self.access,
            namespace=None,
            categories=CATEGORIES,
            # Every request is served as part of an initialized connection: the seed's clients
            # call tools/list and tools/call without a handshake.
            protocol_version=version if version in protocol.HANDSHAKE_VERSIONS else protocol.HANDSHAKE_VERSIONS[0],
            initialized=True,
            profile=PROFILE,
            language=self.language,
        )


class MarketplaceMessagesConsumer(MarketplaceConsumer):
    """`POST /api/mcp/messages`."""

    methods = ("POST",)

    async def respond(self, body: bytes) -> None:
        try:
            value = parse(body)
            if isinstance(value, list):
                raise ProtocolError(INVALID_REQUEST, "Invalid Request: batches are not supported on this endpoint")
            message = classify(value)
        except ProtocolError as problem:
            await self.send_json(400, {"jsonrpc": "2.0", "id": None, "error": problem.error()})
            return
        connection = self.connection()
        if message.kind == "request" and message.method == "initialize":
            connection.protocol_version = None
        pending: list[dict[str, Any]] = []
        token = events.current_marketplace_post.set(pending)
        try:
            reply = await answer(connection, message)
        finally:
            events.current_marketplace_post.reset(token)
        if reply.message is None:
            await self.send_response(202, b"", [])
        elif pending and self.accepts_stream():
            await self.start_stream()
            for outgoing in [*pending, reply.message]:
                await self.send_chunk(sse_event(data=dumps(outgoing), event="message"))
            await self.end_stream()
        else:
            await self.send_json(200, reply.message)

    def accepts_stream(self) -> bool:
        # Explicitly, not through */*: plain HTTP clients (requests, curl) get JSON.
        return "text/event-stream" in self.headers.get("Accept", "").lower()


class MarketplaceSseConsumer(MarketplaceConsumer):
    """`GET /api/mcp/sse`."""

    methods = ("GET",)
    group: str | None = None

    async def respond(self, body: bytes) -> None:
        owner = self.access.user_id if self.access.user_id is not None else f"key{self.access.key_id}"
        connection_id = f"{owner}_{int(time.time() * 1000)}"
        if self.access.user_id is not None:
            self.group = marketplace_group(self.access.user_id)
            await self.channel_layer.group_add(self.group, self.channel_name)
        await self.start_stream()
        established = notification(
            "connection/established", {"connectionId": connection_id, "serverInfo": protocol.server_info()}
        )
        await self.send_chunk(sse_event(data=dumps(established)))
        self.keep_alive(float(settings.MEMORYHUB_MARKETPLACE_HEARTBEAT_SECONDS), b": heartbeat\n\n")

    async def mcp_message(self, message: dict[str, Any]) -> None:
        await self.send_chunk(sse_event(data=dumps(message["message"])))

    async def closed(self) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None
