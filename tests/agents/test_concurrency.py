"""Money-like invariants under real concurrency: 50 purchases and agent calls at once against
one wallet, through two server processes sharing one database, with a real (fake) LLM provider
slow enough that calls overlap. No balance may go negative, no update may be lost, and the
ledger must agree with every balance."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest

from tests.fake_llm import FakeLLM
from tests.mcp_endpoint.conftest import McpServer, running_servers

BUYS = 25
CALLS = 25
CREDITS = 100
TOKENS_PER_BUY = 10_000  # 10 credits at 1 credit / 1,000: the wallet pays for exactly 10 buys


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM) -> Iterator[list[McpServer]]:
    env = {"MEMORYHUB_LLM_URL": llm.url, "MEMORYHUB_LLM_MODEL": "fake-chat", "MEMORYHUB_LLM_RETRIES": "0"}
    # Same directory: same database file.
    with running_servers(tmp_path_factory.mktemp("market-concurrency"), 2, **env) as servers:
        yield servers


def shell(server: McpServer, script: str) -> Any:
    return json.loads(server.manage("shell", "-v", "0", "-c", script).stdout)


def call_tool(server: McpServer, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    with httpx2.Client(timeout=60) as http:
        response = http.post(f"{server.base_url}/api/mcp/messages", json=body, headers=server.headers("alice"))
    assert response.status_code == 200, response.text
    return dict(response.json()["result"])


def test_fifty_concurrent_purchases_and_calls_keep_the_books_right(two_servers, llm: FakeLLM) -> None:
    first, second = two_servers
    # Each answer claims far more tokens than it may use, so calls are capped by their holds and
    # the balance runs low while calls are in flight.
    agent = int(
        first.manage(
            "create_agent", "--name", "Busy", "--publish", "--provider-url", llm.url, "--max-tokens", "8000"
        ).stdout
    )
    first.manage("grant_credits", "--user", "alice", "--credits", str(CREDITS))
    llm.latency = 0.05
    llm.usage = {"prompt_tokens": 20, "completion_tokens": 20_000}

    jobs = [("buy", n) for n in range(BUYS)] + [("call", n) for n in range(CALLS)]
    jobs.sort(key=lambda job: job[1])  # interleave buys and calls

    def run(job: tuple[str, int]) -> tuple[str, dict[str, Any]]:
        kind, n = job
        server = first if n % 2 else second
        if kind == "buy":
            return kind, call_tool(server, "buy_agent_tokens", {"agent_id": agent, "token_amount": TOKENS_PER_BUY})
        return kind, call_tool(server, f"momo_agent_{agent}", {"prompt": f"question {n}"})

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        outcomes = list(pool.map(run, jobs))

    bought = [result for kind, result in outcomes if kind == "buy" and not result["isError"]]
    refused_buys = [result for kind, result in outcomes if kind == "buy" and result["isError"]]
    answered = [result for kind, result in outcomes if kind == "call" and not result["isError"]]
    assert len(bought) == CREDITS // 10
    assert all("积分不足" in result["content"][0]["text"] for result in refused_buys)
    spent = sum(result["structuredContent"]["tokensUsed"] for result in answered)

    books = shell(
        first,
        "import json\n"
        "from agents.models import Wallet, TokenBalance, LedgerEntry, TokenHold\n"
        "from agents.selectors import audit\n"
        f"balance = TokenBalance.objects.get(user__username='alice', agent_id={agent})\n"
        "print(json.dumps({'audit': audit(), 'credits': str(Wallet.objects.get(user__username='alice').credits),"
        " 'tokens': balance.tokens, 'holds': TokenHold.objects.count(),"
        " 'purchases': LedgerEntry.objects.filter(kind='purchase').count(),"
        " 'usages': LedgerEntry.objects.filter(kind='usage').count()}))",
    )
    assert books["audit"] == []
    assert books["credits"] == "0.0000"
    assert books["purchases"] == len(bought)
    assert books["usages"] == len(answered)
    # No lost update: what the callers were told they spent is exactly what left the balance.
    assert books["tokens"] == len(bought) * TOKENS_PER_BUY - spent
    assert books["tokens"] >= 0
    assert books["holds"] == 0
