"""What differs between the MCP endpoint (`/mcp`) and the marketplace endpoint
(`/api/mcp/messages`), pinned side by side through the real routes and consumers, in process:
initialize, ping, how tools/list names the tools, and the language of tool messages. The
protocol core answers both; each endpoint brings its own presentation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from channels.routing import URLRouter
from channels.testing import HttpCommunicator

from agents.models import Agent, TokenBalance
from mcp_endpoint import protocol
from mcp_endpoint.routing import urlpatterns
from tests.conftest import Persona

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.anyio]

ROUTES = URLRouter(urlpatterns)
MARKET = "/api/mcp/messages"

MARKETPLACE_INSTRUCTIONS = (
    "The agent marketplace: find agents with search_momo_agents, buy tokens for one with "
    "buy_agent_tokens (paid from your credits), then call it with its momo_agent_<id> tool, which "
    "appears in tools/list once you hold tokens for it. Each call spends the tokens the agent used."
)


def message(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}


async def post(
    path: str, body: dict[str, Any], persona: Persona, *extra: tuple[bytes, bytes]
) -> tuple[dict[bytes, bytes], dict[str, Any]]:
    headers = [
        # Every HTTP/1.1 request names its host; the MCP routes refuse one not in ALLOWED_HOSTS.
        (b"host", b"127.0.0.1"),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
        (b"x-api-key", persona.secret.encode()),
        *extra,
    ]
    raw = json.dumps(body).encode()
    response = await HttpCommunicator(ROUTES, "POST", path, body=raw, headers=headers).get_response(timeout=10)
    assert response["status"] == 200, response["body"]
    return dict(response["headers"]), json.loads(response["body"])


async def market(body: dict[str, Any], persona: Persona, *extra: tuple[bytes, bytes]) -> dict[str, Any]:
    _, reply = await post(MARKET, body, persona, *extra)
    return reply


class McpSession:
    """A handshake-era session on `/mcp` (its tools limited to `tools`, when given)."""

    def __init__(self, persona: Persona, tools: str | None = None) -> None:
        self.persona = persona
        self.path = "/mcp" + (f"?tools={tools}" if tools else "")
        self.session_id = b""

    async def initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        headers, reply = await post(self.path, message("initialize", params), self.persona)
        self.session_id = headers.get(b"MCP-Session-Id", b"")
        return reply

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        _, reply = await post(self.path, message(method, params), self.persona, (b"mcp-session-id", self.session_id))
        return reply


async def mcp_session(persona: Persona, tools: str | None = None) -> McpSession:
    session = McpSession(persona, tools)
    reply = await session.initialize({"protocolVersion": "2025-06-18", "capabilities": {}})
    assert "result" in reply, reply
    return session


# --- initialize and ping --------------------------------------------------------------------------


async def test_initialize_and_ping_on_the_marketplace_answer_as_its_seed(alice_key: Persona) -> None:
    expected = {
        "protocolVersion": "2024-11-05",
        "capabilities": {"tools": {"listChanged": True}},
        "serverInfo": protocol.server_info(),
        "instructions": MARKETPLACE_INSTRUCTIONS,
    }
    # The seed initializes with empty params, and is answered 2024-11-05.
    assert await market(message("initialize"), alice_key) == {"jsonrpc": "2.0", "id": 1, "result": expected}
    named = await market(message("initialize", {"protocolVersion": "2025-06-18"}), alice_key)
    assert named["result"] == {**expected, "protocolVersion": "2025-06-18"}
    assert await market(message("ping"), alice_key) == {"jsonrpc": "2.0", "id": 1, "result": {"status": "pong"}}


async def test_initialize_and_ping_on_mcp_answer_as_mcp(alice_key: Persona) -> None:
    session = McpSession(alice_key)
    # Plain MCP requires the version: an initialize that names none is refused.
    refused = await session.initialize({"capabilities": {}})
    assert refused["error"] == {"code": -32602, "message": "Invalid params: protocolVersion must be a string"}
    reply = await session.initialize({"protocolVersion": "2025-06-18", "capabilities": {}})
    result = reply["result"]
    assert set(result) == {"protocolVersion", "capabilities", "serverInfo", "instructions"}
    assert result["protocolVersion"] == "2025-06-18"
    assert result["capabilities"] == {
        "tools": {"listChanged": True},
        "resources": {"subscribe": True, "listChanged": False},
    }
    assert result["serverInfo"] == protocol.server_info()
    assert result["instructions"].startswith("MemoryHub is a long-term memory: a knowledge graph of entities")
    assert "search_nodes" in result["instructions"]
    assert "momo" not in result["instructions"]
    assert await session.send("ping") == {"jsonrpc": "2.0", "id": 1, "result": {}}


# --- tools/list ------------------------------------------------------------------------------------


@pytest.fixture
def held_agent(alice_key: Persona) -> Agent:
    """A published agent alice holds tokens for (so it has a tool of its own)."""
    agent = Agent.objects.create(name="Poet", description="writes verse", base_model="m1", published=True)
    TokenBalance.objects.create(user=alice_key.user, agent=agent, tokens=500)
    return agent


async def test_the_marketplace_lists_the_agent_tools_under_the_seeds_names(
    alice_key: Persona, held_agent: Agent
) -> None:
    session = await mcp_session(alice_key, tools="agents")
    ours = (await session.send("tools/list"))["result"]["tools"]
    seeds = (await market(message("tools/list"), alice_key))["result"]["tools"]
    agent = held_agent.pk
    assert [tool["name"] for tool in ours] == ["search_agents", "buy_agent_tokens", f"agent_{agent}"]
    assert [tool["name"] for tool in seeds] == ["search_momo_agents", "buy_agent_tokens", f"momo_agent_{agent}"]
    # The declared tools differ in nothing else.
    for mine, seed in zip(ours[:2], seeds[:2], strict=True):
        assert seed == {**mine, "name": seed["name"]}
    # An agent's own tool is described in the endpoint's language (nothing else says one).
    assert ours[2]["description"] == "Poet (m1) | balance: 500 tokens | price: 1 credits / 1000 tokens | writes verse"
    assert seeds[2]["description"] == "Poet (m1) | 余额: 500 tokens | 价格: 1 credits / 1000 tokens | writes verse"
    assert seeds[2] == {**ours[2], "name": seeds[2]["name"], "description": seeds[2]["description"]}


async def test_a_stateless_request_on_the_marketplace_keeps_the_seeds_names(alice_key: Persona) -> None:
    meta = {protocol.PROTOCOL_VERSION_META: "2026-07-28", protocol.CLIENT_CAPABILITIES_META: {}}
    reply = await market(message("tools/list", {"_meta": meta}), alice_key)
    assert [tool["name"] for tool in reply["result"]["tools"]] == ["search_momo_agents", "buy_agent_tokens"]


# --- tool messages ---------------------------------------------------------------------------------


async def test_tool_messages_are_in_the_endpoints_language_unless_the_client_says(alice_key: Persona) -> None:
    buy = message("tools/call", {"name": "buy_agent_tokens", "arguments": {"agent_id": 987654, "token_amount": 1}})
    seeds = await market(buy, alice_key)
    assert seeds["result"]["content"] == [{"type": "text", "text": "错误: Agent 987654 不存在或未上架"}]
    asked = await market(buy, alice_key, (b"accept-language", b"en-US,en;q=0.9"))
    assert asked["result"]["content"][0]["text"].startswith("Error: ")
    session = await mcp_session(alice_key)
    ours = await session.send("tools/call", buy["params"])
    assert ours["result"]["isError"] is True
    assert ours["result"]["content"][0]["text"] == asked["result"]["content"][0]["text"]
