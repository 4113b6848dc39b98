"""What the marketplace endpoint costs: search, tools/list, a purchase and a metered agent call
over real HTTP to a daphne server (POST /api/mcp/messages), one at a time and then from many
threads at once against one wallet. Agents use the offline extractive provider, so the numbers
are the server's own cost (key check, BEGIN IMMEDIATE transactions, ledger), not an LLM's.

Run: `python -m bench.marketplace [--agents 200] [--repeat 200] [--threads 16]`. The database is a
temporary file. Prints median and p95 in milliseconds. Not a test: no thresholds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench import stats
from bench.setup import start_daphne


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()

    temp_dir = tempfile.mkdtemp(prefix="memoryhub-bench-market-")
    os.environ.update(
        MEMORYHUB_DATA_DIR=temp_dir, MEMORYHUB_RATE_LIMIT_PER_MINUTE="0", DJANGO_SETTINGS_MODULE="memoryhub.settings"
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from access import services as access
    from agents import services
    from agents.models import Agent
    from agents.selectors import audit

    server = None
    try:
        call_command("migrate", verbosity=0)
        Agent.objects.bulk_create(
            Agent(name=f"Agent {n}", description=f"helps with topic {n % 17}", provider="extractive", published=True)
            for n in range(args.agents)
        )
        agent = Agent.objects.order_by("pk").first()
        assert agent is not None
        user = get_user_model().objects.create_user(username="bench")
        secret = access.api_key_create(owner=user, name="bench", grants=[], source="command").secret
        services.grant_credits(user_id=user.pk, credits=10**9)

        server, port = start_daphne({"MEMORYHUB_VECTOR_WARMUP": "false"})

        def rpc(method: str, params: dict[str, Any]) -> dict[str, Any]:
            # A connection per request, as the seed's clients (requests.post) make them.
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
            connection.request("POST", "/api/mcp/messages", body, {"x-momoai-key": secret})
            response = connection.getresponse()
            answer = json.loads(response.read())
            connection.close()
            assert response.status == 200, answer
            return dict(answer)

        def call(name: str, arguments: dict[str, Any]) -> Callable[[], object]:
            return lambda: rpc("tools/call", {"name": name, "arguments": arguments})

        cases: dict[str, Callable[[], object]] = {
            "ping": lambda: rpc("ping", {}),
            "tools/list": lambda: rpc("tools/list", {}),
            "search_momo_agents (10 of many)": call("search_momo_agents", {"query": "topic"}),
            "buy_agent_tokens": call("buy_agent_tokens", {"agent_id": agent.pk, "token_amount": 1000}),
            "momo_agent_<id> (extractive)": call(f"momo_agent_{agent.pk}", {"prompt": "what do you know?"}),
        }
        print(f"# Marketplace endpoint over HTTP, {args.agents} agents, {args.repeat} calls each (ms)\n")
        print("| request | median | p95 |")
        print("|---|---|---|")
        for label, run in cases.items():
            samples = []
            for _ in range(args.repeat):
                start = time.perf_counter_ns()
                run()
                samples.append(time.perf_counter_ns() - start)
            print(f"| {label} | {stats.median(samples) / 1e6:.2f} | {stats.p95(samples) / 1e6:.2f} |")

        jobs = args.repeat * 2
        buy = call("buy_agent_tokens", {"agent_id": agent.pk, "token_amount": 10})
        use = call(f"momo_agent_{agent.pk}", {"prompt": "hi"})
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            list(pool.map(lambda n: (buy if n % 2 else use)(), range(jobs)))
        elapsed = time.perf_counter() - start
        print(
            f"\n{jobs} purchases and calls from {args.threads} threads on one wallet: {jobs / elapsed:.0f}/s; "
            f"audit problems: {len(audit())}"
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
