"""The marketplace endpoint end to end, against a real server whose LLM provider is a real local
fake (tests/fake_llm.py): the seed's own Python example, the flow over plain HTTP and with the
official MCP SDK, the SSE stream, the agents tools on /mcp, and two users who must not see each
other's balances."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client

from tests.fake_llm import FakeLLM
from tests.mcp_endpoint.conftest import McpServer, running_servers

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM) -> Iterator[McpServer]:
    with running_servers(
        tmp_path_factory.mktemp("marketplace"),
        MEMORYHUB_LLM_URL=llm.url,
        MEMORYHUB_LLM_MODEL="fake-chat",
        MEMORYHUB_LLM_RETRIES="0",
        MEMORYHUB_LLM_TIMEOUT_SECONDS="2",
        MEMORYHUB_MARKETPLACE_HEARTBEAT_SECONDS="1",
    ) as (server,):
        yield server


def create_agent(server: McpServer, name: str, *extra: str, credits_for: tuple[str, str] | None = None) -> int:
    """A published agent (the real `create_agent` command), and with `credits_for` (user, credits)
    a grant to its buyer (`grant_credits`), in one process: its id."""
    calls = [["create_agent", "--name", name, "--publish", *extra]]
    if credits_for is not None:
        calls.append(["grant_credits", "--user", credits_for[0], "--credits", credits_for[1]])
    return int(server.commands(*calls)[0])


def grant(server: McpServer, user: str, credits: str) -> None:
    server.manage("grant_credits", "--user", user, "--credits", credits)


def audit(server: McpServer) -> list[Any]:
    script = "import json; from agents.selectors import audit; print(json.dumps(audit()))"
    return list(json.loads(server.manage("shell", "-v", "0", "-c", script).stdout))


class Market:
    """Plain JSON-RPC over POST to /api/mcp/messages, as the seed's examples do it."""

    def __init__(self, server: McpServer, http: httpx2.Client) -> None:
        self.server, self.http = server, http

    def post(self, method: str, params: dict[str, Any] | None = None, *, persona: str = "alice", **headers: str):
        key_headers = {"x-momoai-key": self.server.keys[persona]} if persona else {}
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        return self.http.post(f"{self.server.base_url}/api/mcp/messages", json=body, headers={**key_headers, **headers})

    def call(self, name: str, arguments: dict[str, Any], **options: Any) -> dict[str, Any]:
        response = self.post("tools/call", {"name": name, "arguments": arguments}, **options)
        assert response.status_code == 200, response.text
        return dict(response.json()["result"])

    def tool_names(self, persona: str = "alice") -> list[str]:
        return [tool["name"] for tool in self.post("tools/list", persona=persona).json()["result"]["tools"]]


@pytest.fixture
def plain(market: McpServer) -> Iterator[Market]:
    with httpx2.Client(timeout=30) as http:
        yield Market(market, http)


# --- the seed's own example ----------------------------------------------------------------------


def test_the_seeds_python_example_runs_unchanged_but_for_host_and_key(market: McpServer, llm: FakeLLM) -> None:
    """seed_marketplace_example.py is the seed's Python example, only BASE_URL and API_KEY
    changed. It calls momo_agent_58, which exists here once 58 agents do."""
    fill_to_58 = (
        "from agents.models import Agent\n"
        "missing = 58 - (Agent.objects.order_by('-pk').values_list('pk', flat=True).first() or 0)\n"
        "Agent.objects.bulk_create([Agent(name=f'Filler {n}', published=True) for n in range(max(missing, 0))])\n"
        "Agent.objects.filter(pk=58).update(name='编程助手', description='写代码的智能体')"
    )
    market.manage("shell", "-v", "0", "-c", fill_to_58)
    grant(market, "carol", "100")
    with httpx2.Client(timeout=30) as http:
        bought = Market(market, http).call("buy_agent_tokens", {"agent_id": 58, "token_amount": 10000}, persona="carol")
    assert bought["isError"] is False
    env = {**os.environ, "SEED_BASE_URL": f"{market.base_url}/api/mcp", "SEED_API_KEY": market.keys["carol"]}
    run = subprocess.run(
        [sys.executable, str(HERE / "seed_marketplace_example.py")], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert '"protocolVersion": "2024-11-05"' in out
    assert "- search_momo_agents\n- buy_agent_tokens\n- momo_agent_58\n" in out
    assert '"name": "编程助手"' in out
    # The last line is the agent's answer, from the (fake) provider.
    assert out.rstrip().splitlines()[-1] == "ANSWER: 你好,请做个自我介绍"
    assert audit(market) == []


# --- plain HTTP -------------------------------------------------------------------------------------


def test_initialize_and_ping_answer_as_the_seed_shows(plain: Market) -> None:
    response = plain.post("initialize")
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["protocolVersion"] == "2024-11-05"
    assert result["capabilities"] == {"tools": {"listChanged": True}}
    assert set(result["serverInfo"]) >= {"name", "version"}
    assert plain.post("ping").json() == {"jsonrpc": "2.0", "id": 1, "result": {"status": "pong"}}


def test_keys_are_required_and_errors_use_the_seeds_codes(plain: Market, market: McpServer) -> None:
    missing = plain.post("ping", persona="")
    assert missing.status_code == 401
    assert missing.json()["error"] == {"code": -32600, "message": "Missing API key"}
    invalid = plain.post("ping", persona="", **{"x-momoai-key": "mh_nope_nope"})
    assert invalid.json()["error"] == {"code": -32600, "message": "Invalid API key"}
    bearer = plain.post("ping", persona="", Authorization=f"Bearer {market.keys['alice']}")
    assert bearer.json()["result"] == {"status": "pong"}
    assert plain.post("no/such/method").json()["error"]["code"] == -32601
    broken = plain.http.post(
        f"{market.base_url}/api/mcp/messages", content=b"{not json", headers={"x-momoai-key": market.keys["alice"]}
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == -32700


def test_search_buy_call_and_run_out(plain: Market, market: McpServer, llm: FakeLLM) -> None:
    agent = create_agent(
        market,
        "翻译助手",
        "--description",
        "专业的翻译智能体",
        "--base-model",
        "deepseek-chat",
        "--tag",
        "翻译",
        credits_for=("bob", "50"),
    )
    assert f"momo_agent_{agent}" not in plain.tool_names("bob")

    found = plain.call("search_momo_agents", {"query": "翻译"}, persona="bob")
    listing = json.loads(found["content"][0]["text"])
    card = next(card for card in listing["agents"] if card["id"] == agent)
    assert card == {
        "id": agent,
        "name": "翻译助手",
        "description": "专业的翻译智能体",
        "price": 1,
        "priceUnit": "1000",
        "baseModel": "deepseek-chat",
        "tags": ["翻译"],
        "hasPurchased": False,
        "availableTokens": 0,
    }
    assert listing["tip"] == "使用 buy_agent_tokens 工具购买 token 后即可使用智能体"

    # Before buying: the seed's "no tokens" error, in Chinese for a Chinese prompt.
    refused = plain.call(f"momo_agent_{agent}", {"prompt": "你好"}, persona="bob")
    assert refused["isError"] is True
    assert (
        refused["content"][0]["text"]
        == f"错误: 您没有 Agent {agent} 的使用额度。请先使用 buy_agent_tokens 工具购买 token。"
    )

    bought = plain.call("buy_agent_tokens", {"agent_id": agent, "token_amount": 10000}, persona="bob")
    assert bought["content"][0]["text"] == f"成功为 Agent {agent} 购买了 10000 tokens"
    assert bought["structuredContent"]["credits"] == 40

    tools = plain.post("tools/list", persona="bob").json()["result"]["tools"]
    tool = next(tool for tool in tools if tool["name"] == f"momo_agent_{agent}")
    assert tool["description"].startswith(
        "翻译助手 (deepseek-chat) | 余额: 10000 tokens | 价格: 1 credits / 1000 tokens"
    )
    assert tool["inputSchema"]["required"] == ["prompt"]

    llm.answer = "Hello, World!"
    try:
        answered = plain.call(f"momo_agent_{agent}", {"prompt": "将以下中文翻译成英文:你好,世界!"}, persona="bob")
    finally:
        llm.answer = None
    assert answered["content"] == [{"type": "text", "text": "Hello, World!"}]
    assert answered["structuredContent"]["availableTokens"] < 10000

    # Not enough credits for more: an isError result, nothing spent.
    too_many = plain.call("buy_agent_tokens", {"agent_id": agent, "token_amount": 10**8}, persona="bob")
    assert too_many["isError"] is True
    assert too_many["content"][0]["text"].startswith("错误: 积分不足")
    assert audit(market) == []


def test_a_failing_or_silent_provider_is_an_error_result_that_costs_nothing(
    plain: Market, market: McpServer, llm: FakeLLM
) -> None:
    agent = create_agent(market, "Flaky", credits_for=("carol", "10"))
    plain.call("buy_agent_tokens", {"agent_id": agent, "token_amount": 1000}, persona="carol")
    llm.fail_status, llm.fail_times = 500, 1
    failed = plain.call(f"momo_agent_{agent}", {"prompt": "hello"}, persona="carol")
    assert failed["isError"] is True
    assert "HTTP 500" in failed["content"][0]["text"]
    llm.latency = 3  # beyond the server's 2 s provider timeout
    try:
        started = time.monotonic()
        silent = plain.call(f"momo_agent_{agent}", {"prompt": "hello"}, persona="carol")
        waited = time.monotonic() - started
    finally:
        llm.latency = 0
    assert silent["isError"] is True
    assert "did not answer within" in silent["content"][0]["text"]
    assert waited < 10  # the timeout fired; the call did not wait for the provider
    card = json.loads(plain.call("search_momo_agents", {"query": "Flaky"}, persona="carol")["content"][0]["text"])
    assert card["agents"][0]["availableTokens"] == 1000
    assert audit(market) == []


def test_errors_follow_accept_language(plain: Market, market: McpServer) -> None:
    agent = create_agent(market, "Poet")
    english = plain.call(f"momo_agent_{agent}", {"prompt": "写一首诗"}, **{"Accept-Language": "en-US,en;q=0.9"})
    assert english["content"][0]["text"] == (
        f"Error: you have no tokens for Agent {agent}. Buy some with the buy_agent_tokens tool first."
    )
    unknown = plain.call("momo_agent_987654", {"prompt": "hello"})
    assert unknown["isError"] is True
    assert "987654" in unknown["content"][0]["text"]


def test_a_purchase_changes_only_the_buyers_tool_list(plain: Market, market: McpServer) -> None:
    agent = create_agent(market, "Private Tutor", "--provider", "extractive", credits_for=("alice", "10"))
    before_bob = plain.tool_names("bob")
    plain.call("buy_agent_tokens", {"agent_id": agent, "token_amount": 1000}, persona="alice")
    assert f"momo_agent_{agent}" in plain.tool_names("alice")
    assert plain.tool_names("bob") == before_bob
    bob_call = plain.call(f"momo_agent_{agent}", {"prompt": "hello"}, persona="bob")
    assert bob_call["isError"] is True
    bob_view = json.loads(plain.call("search_momo_agents", {"query": "Tutor"}, persona="bob")["content"][0]["text"])
    assert bob_view["agents"][0]["hasPurchased"] is False


# --- the official SDK over /api/mcp/messages and /mcp ------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/api/mcp/messages", "/mcp"])
async def test_the_sdk_sees_the_tool_list_change_after_a_purchase(market: McpServer, path: str) -> None:
    agent = create_agent(market, f"SDK agent {path}", "--provider", "extractive", credits_for=("alice", "10"))
    changed: list[Any] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.append(message)

    url = f"{market.base_url}{path}" + ("?tools=agents" if path == "/mcp" else "")
    search, call = (
        ("search_momo_agents", f"momo_agent_{agent}") if path != "/mcp" else ("search_agents", f"agent_{agent}")
    )
    async with (
        httpx2.AsyncClient(headers=market.headers("alice"), timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy", message_handler=on_message) as client,
    ):
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert search in names
        assert "buy_agent_tokens" in names
        assert call not in names
        found = await client.call_tool(search, {"query": "SDK agent"})
        assert found.structured_content["count"] >= 1
        bought = await client.call_tool("buy_agent_tokens", {"agent_id": agent, "token_amount": 500})
        assert bought.is_error is False
        with anyio.fail_after(5):
            while not changed:
                await anyio.sleep(0.05)
        assert call in [tool.name for tool in (await client.list_tools()).tools]
        answer = await client.call_tool(call, {"prompt": "what do you know?"})
        assert answer.is_error is False
        assert "No language model is configured" in answer.content[0].text


# --- SSE ------------------------------------------------------------------------------------------


def sse_lines(response: httpx2.Response) -> Iterator[str]:
    yield from response.iter_lines()


def test_the_sse_stream_establishes_beats_and_carries_list_changes(plain: Market, market: McpServer) -> None:
    agent = create_agent(market, "Streamed", "--provider", "extractive", credits_for=("alice", "10"))
    url = f"{market.base_url}/api/mcp/sse?key={market.keys['alice']}"
    with httpx2.Client(timeout=10) as http, http.stream("GET", url) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = sse_lines(stream)
        first = next(line for line in lines if line.startswith("data: "))
        established = json.loads(first.removeprefix("data: "))
        assert established["method"] == "connection/established"
        assert established["params"]["connectionId"].split("_")[0].isdigit()
        assert set(established["params"]["serverInfo"]) >= {"name", "version"}
        assert next(line for line in lines if line.startswith(":")) == ": heartbeat"
        plain.call("buy_agent_tokens", {"agent_id": agent, "token_amount": 100})
        note = next(line for line in lines if line.startswith("data: "))
        assert json.loads(note.removeprefix("data: ")) == {
            "jsonrpc": "2.0",
            "method": "notifications/tools/list_changed",
        }


def test_the_sse_stream_needs_a_key(market: McpServer) -> None:
    with httpx2.Client(timeout=10) as http:
        response = http.get(f"{market.base_url}/api/mcp/sse")
    assert response.status_code == 401
    assert response.json()["error"] == {"code": -32600, "message": "Missing API key"}
