"""Hostile bodies on every route of every surface, against the real server over HTTP (issue 16).

The schemathesis test (test_openapi_fuzz.py) sends what the REST schema describes, in-process.
This one sends what no schema allows, to the real server: 10,000-deep nesting, 20,000-item
arrays of the wrong type, lone surrogates, integers past 64 bits, non-ASCII digits, wrong types;
in every argument of every REST route (/v1/*), MemOS route (/product/*), MCP tool (/mcp) and
marketplace tool and method (/api/mcp/messages), first one kind at a time, then mixed by
hypothesis. Every answer must be no 5xx (nor JSON-RPC -32603), within a few seconds, and small.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_endpoint import registry
from mcp_endpoint.jsonrpc import INTERNAL_ERROR
from tests.mcp_endpoint.conftest import McpServer
from tests.mcp_endpoint.test_streamable_http import ACCEPT, modern_headers, modern_message

SECONDS = 5.0  # generous: before the hardening, some of these took minutes
MAX_BYTES = 64 * 1024  # an error (or an empty namespace's answer) is far smaller

# Raw JSON texts, spliced in where a value goes (so the client's encoder cannot refuse them).
HOSTILE: dict[str, str] = {
    "deep": "[" * 10_000 + "]" * 10_000,
    "deep_object": '{"a":' * 5_000 + "1" + "}" * 5_000,
    "many_wrong_items": "[" + ",".join(["{}"] * 20_000) + "]",
    "many_strings": "[" + ",".join(['"x"'] * 20_000) + "]",
    "lone_surrogate": '"x\\ud800"',
    "surrogates_in_list": '["a\\udfff", "\\ud800b"]',
    "int_2_64": str(2**64),
    "int_10_30": str(10**30),
    "negative_huge": str(-(2**63) - 1),
    "float_huge": "1e308",
    "float_tiny": "-1e-320",
    "superscript_digit": '"²"',
    "long_string": json.dumps("x" * 100_000),
    "object": '{"a": {"b": [1, "2", null]}}',
    "empty": '""',
    "null": "null",
    "true": "true",
}
# Whole bodies that are not objects at all.
BODIES: dict[str, str] = {
    "deep_body": HOSTILE["deep"],
    "array_body": HOSTILE["many_wrong_items"],
    "string_body": HOSTILE["lone_surrogate"],
    "number_body": HOSTILE["int_10_30"],
    "double_encoded_deep": json.dumps('{"messages": ' + "[" * 10_000 + "]" * 10_000 + "}"),
}


def body_with(fields: list[str], value: str) -> str:
    """A JSON object giving every field in `fields` the raw JSON `value`."""
    return "{" + ",".join(f"{json.dumps(field)}:{value}" for field in fields) + "}"


def _properties(schema: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return sorted(schema.get("properties", {}))


def http_routes(http: httpx2.Client, schema_path: str) -> list[tuple[str, list[str]]]:
    """(path, request body fields) of every POST operation in an OpenAPI document."""
    spec = http.get(schema_path).json()
    routes = []
    for path, item in sorted(spec["paths"].items()):
        if "post" not in item:
            continue
        content = item["post"].get("requestBody", {}).get("content", {}).get("application/json", {})
        routes.append((path, _properties(content.get("schema", {}), spec)))
    return routes


@pytest.fixture(scope="module")
def routes(http: httpx2.Client, server: McpServer) -> list[tuple[str, list[str]]]:
    found = http_routes(http, "/openapi.json") + http_routes(http, "/product/openapi.json")
    assert len([path for path, _ in found if path.startswith("/v1/")]) >= 30
    assert len([path for path, _ in found if path.startswith("/product/")]) >= 6
    return found


TOOLS = [(tool.name, sorted(tool.input_schema["properties"])) for tool in registry.tools()]


def check_http(response: httpx2.Response, elapsed: float, what: str) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text[:300])
    assert elapsed < SECONDS, (what, elapsed)
    assert len(response.content) < MAX_BYTES, (what, len(response.content))


def check_rpc(response: httpx2.Response, elapsed: float, what: str) -> None:
    check_http(response, elapsed, what)
    if response.headers.get("content-type", "").startswith("application/json") and response.content:
        message = response.json()
        assert message.get("error", {}).get("code") != INTERNAL_ERROR, (what, message)


class Surfaces:
    """One request on each surface, timed, with the raw JSON text as sent."""

    def __init__(self, server: McpServer, http: httpx2.Client) -> None:
        self.server, self.http = server, http
        self.namespace = server.namespace()

    def post(self, path: str, text: str, **headers: str) -> tuple[httpx2.Response, float]:
        sent = {**self.server.headers("alice"), "Content-Type": "application/json", **headers}
        started = time.perf_counter()
        response = self.http.post(path, content=text.encode("utf-8", "surrogatepass"), headers=sent)
        return response, time.perf_counter() - started

    def tool(self, name: str, arguments: str) -> tuple[httpx2.Response, float]:
        message = json.dumps(modern_message("tools/call", {"name": name, "arguments": "ARGUMENTS"}))
        headers = {**modern_headers(self.server, "tools/call", name), "Accept": ACCEPT}
        url = f"/mcp?namespace={self.namespace}"
        return self.post(url, message.replace('"ARGUMENTS"', arguments), **headers)

    def market(self, method: str, params: str) -> tuple[httpx2.Response, float]:
        text = f'{{"jsonrpc":"2.0","id":1,"method":{json.dumps(method)},"params":{params}}}'
        return self.post("/api/mcp/messages", text)


@pytest.fixture(scope="module")
def surfaces(server: McpServer, http: httpx2.Client) -> Surfaces:
    return Surfaces(server, http)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_every_http_route_survives_a_hostile_value_in_every_field(
    surfaces: Surfaces, routes: list[tuple[str, list[str]]], kind: str
) -> None:
    for path, fields in routes:
        check_http(*surfaces.post(path, body_with(fields or ["x"], HOSTILE[kind])), f"{path} {kind}")


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_every_http_route_survives_a_hostile_body(
    surfaces: Surfaces, routes: list[tuple[str, list[str]]], kind: str
) -> None:
    for path, _ in routes:
        response, elapsed = surfaces.post(path, BODIES[kind])
        check_http(response, elapsed, f"{path} {kind}")
        assert response.status_code == 400, (path, kind, response.text[:300])


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_every_mcp_tool_survives_a_hostile_value_in_every_argument(surfaces: Surfaces, kind: str) -> None:
    for name, fields in TOOLS:
        check_rpc(*surfaces.tool(name, body_with(fields or ["x"], HOSTILE[kind])), f"{name} {kind}")


@pytest.mark.parametrize("kind", sorted(HOSTILE) + sorted(BODIES))
def test_the_marketplace_survives_hostile_params(surfaces: Surfaces, kind: str) -> None:
    value = HOSTILE.get(kind) or BODIES[kind]
    for name in ("search_momo_agents", "search_agents", "buy_agent_tokens"):
        fields = ["query", "agent_id", "agentId", "tokens", "amount", "limit", "page"]
        check_rpc(*surfaces.market("tools/call", f'{{"name":"{name}","arguments":{body_with(fields, value)}}}'), kind)
    for method in ("tools/list", "initialize", "ping", "resources/read"):
        check_rpc(*surfaces.market(method, body_with(["cursor", "protocolVersion", "uri"], value)), kind)
    check_rpc(*surfaces.post("/api/mcp/messages", value), kind)


def test_whole_hostile_bodies_on_mcp(surfaces: Surfaces) -> None:
    headers = {**modern_headers(surfaces.server, "tools/call", "search_nodes"), "Accept": ACCEPT}
    for kind, text in {**BODIES, **HOSTILE}.items():
        check_rpc(*surfaces.post("/mcp", text, **headers), kind)
        check_rpc(*surfaces.tool("search_nodes", text), kind)


def test_hostile_headers_and_query_strings(surfaces: Surfaces, http: httpx2.Client, server: McpServer) -> None:
    odd: list[bytes] = [b"\xb2", b"org:alice:\xed\xa0\x80", b"x" * 8000, b"org:alice:" + b"a" * 5000]
    for value in odd:
        headers = {**server.headers("alice"), "X-Memory-Namespace": value, "Content-Type": "application/json"}
        for path in ("/v1/graph/read_graph", "/v1/memory/search", "/product/search"):
            started = time.perf_counter()
            response = http.post(path, content=b'{"query": "x"}', headers=headers)
            check_http(response, time.perf_counter() - started, f"{path} {value[:20]!r}")
        text = value.decode("latin-1")
        for query in (f"namespace={text}", "namespace=%ED%A0%80", f"tools={text}"):
            started = time.perf_counter()
            response = http.post(
                f"/mcp?{query}",
                content=json.dumps(modern_message("tools/call", {"name": "graph_stats", "arguments": {}})).encode(),
                headers={**modern_headers(server, "tools/call", "graph_stats"), "Accept": ACCEPT},
            )
            check_rpc(response, time.perf_counter() - started, query[:40])


@pytest.mark.parametrize("memory_id", ["mem_" + "9" * 30, "%C2%B2", "mem_%ED%A0%80", "9" * 4000, "mem_-1"])
def test_odd_memory_ids_in_the_path(surfaces: Surfaces, http: httpx2.Client, memory_id: str) -> None:
    started = time.perf_counter()
    response = http.get(f"/product/get_memory/{memory_id}", headers=surfaces.server.headers("alice"))
    check_http(response, time.perf_counter() - started, memory_id[:20])
    assert response.status_code == 404


# Hostile atoms, mixed into objects and lists by hypothesis.
ATOMS = st.sampled_from(sorted(HOSTILE.values())) | st.sampled_from(['"x"', "1", "-1", "0", "[]", "{}"])


def _values(depth: int = 3) -> st.SearchStrategy[str]:
    return st.recursive(
        ATOMS,
        lambda inner: (
            st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]")
            | st.dictionaries(st.sampled_from(["name", "query", "names", "text", "x"]), inner, max_size=3).map(
                lambda pairs: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs.items()) + "}"
            )
        ),
        max_leaves=4,
    )


@st.composite
def _arguments(draw: st.DrawFn, fields: list[str]) -> str:
    chosen = draw(st.lists(st.sampled_from(fields or ["x"]), min_size=1, max_size=4, unique=True))
    return "{" + ",".join(f"{json.dumps(field)}:{draw(_values())}" for field in chosen) + "}"


SETTINGS = settings(
    max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def test_mixed_hostile_values_everywhere(surfaces: Surfaces, routes: list[tuple[str, list[str]]]) -> None:
    @SETTINGS
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        path, fields = data.draw(st.sampled_from(routes))
        check_http(*surfaces.post(path, data.draw(_arguments(fields))), path)
        name, arguments = data.draw(st.sampled_from(TOOLS))
        check_rpc(*surfaces.tool(name, data.draw(_arguments(arguments))), name)

    check()
