"""Time and size of the answers to hostile input (issue 16 item 1), against a real server.

Run from a repository root (its code is the one served):
    .venv/bin/python -m bench.hostile [case ...]
Cases: product_N (N bad items in /product/add messages), rest2mb (2 MB of bad entityNames on
/v1/graph/delete_entities), open_nodes_rest_N / open_nodes_rest_int_N / open_nodes_mcp_N /
open_nodes_mcp_int_N (N names, or N integers), nested_product / nested_rest / nested_mcp_N (lists
within their limits holding lists of 1,000 wrong items), market_int_N.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import httpx2

# The script's own directory (bench/, which has an mcp.py) must not shadow the mcp SDK.
sys.path[0] = str(Path.cwd())
from tests.mcp_endpoint.conftest import running_servers  # noqa: E402

META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


def request(server, case: str) -> tuple[str, str, bytes, dict[str, str]]:
    key = {"X-API-Key": server.keys["alice"], "Content-Type": "application/json"}
    kind, _, n = case.rpartition("_")
    if case == "rest2mb":
        body = b'{"entityNames":[' + b",".join([b"1"] * (1024 * 1024 - 10)) + b"]}"
        return "POST", "/v1/graph/delete_entities", body, key
    if case == "nested_product":  # 1,000 messages of 1,000 wrong content parts: each list within its limit
        message = b'{"content":[' + b",".join([b"1"] * 1000) + b"]}"
        return "POST", "/product/add", b'{"messages":[' + b",".join([message] * 1000) + b"]}", key
    if case == "nested_rest":
        entity = b'{"name":"a","entityType":"t","observations":[' + b",".join([b"1"] * 1000) + b"]}"
        return "POST", "/v1/graph/create_entities", b'{"entities":[' + b",".join([entity] * 1000) + b"]}", key
    count = int(n)
    if kind == "product":
        return "POST", "/product/add", json.dumps({"messages": [1] * count}).encode(), key
    if kind == "open_nodes_rest":
        return "POST", "/v1/graph/open_nodes", json.dumps({"names": ["x"] * count}).encode(), key
    if kind == "open_nodes_rest_int":
        return "POST", "/v1/graph/open_nodes", json.dumps({"names": [1] * count}).encode(), key
    if kind in ("open_nodes_mcp", "open_nodes_mcp_int", "market", "market_int", "nested_mcp"):
        names = ["x"] * count if not kind.endswith("int") else [1] * count
        call = {"name": "open_nodes", "arguments": {"names": names}}
        if kind == "nested_mcp":  # `count` entities of 1,000 wrong observations each
            entity = {"name": "a", "entityType": "t", "observations": [1] * 1000}
            call = {"name": "create_entities", "arguments": {"entities": [entity] * count}}
        if kind.startswith("market"):
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call}
            return "POST", "/api/mcp/messages", json.dumps(body).encode(), key
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {**call, "_meta": META}}
        headers = {
            **key,
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2026-07-28",
            "Mcp-Method": "tools/call",
            "Mcp-Name": call["name"],
        }
        return "POST", "/mcp", json.dumps(body).encode(), headers
    raise SystemExit(f"unknown case {case}")


def main(cases: list[str]) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_servers(Path(tmp)) as (server,),
        httpx2.Client(base_url=server.base_url, timeout=3600) as http,
    ):
        for case in cases:
            method, path, body, headers = request(server, case)
            started = time.perf_counter()
            response = http.request(method, path, content=body, headers=headers)
            elapsed = time.perf_counter() - started
            print(
                f"{case:24} request {len(body):>10,} B -> {response.status_code} "
                f"{len(response.content):>12,} B in {elapsed:8.2f} s   {response.text[:160]!r}",
                flush=True,
            )


if __name__ == "__main__":
    main(sys.argv[1:])
