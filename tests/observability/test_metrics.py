"""/metrics in-process: the exposition parses, requests and tool calls are counted per surface
and tool, and only loopback callers or operator keys may read it. (The live-server side, MCP over
Streamable HTTP included, is in test_live.py.)"""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.test import Client

from access.authentication import authenticate
from kernel import metrics
from mcp_endpoint import protocol
from mcp_endpoint.jsonrpc import classify
from tests.conftest import Persona
from tests.observability import promtext


def scrape(client: Client, **extra) -> dict[str, promtext.Family]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    return promtext.parse(response.content.decode())


def test_the_exposition_parses_and_counts_a_rest_call(client: Client, alice_key: Persona) -> None:
    before = scrape(client)
    labels = {"surface": "rest_graph", "method": "POST", "status": "200"}
    count_before = promtext.value(before, "memoryhub_http_requests_total", **labels)
    latency_before = promtext.value(before, "memoryhub_http_request_duration_seconds_count", surface="rest_graph")

    response = client.post(
        "/v1/graph/search_nodes",
        json.dumps({"query": "anything"}),
        content_type="application/json",
        **alice_key.headers,
    )
    assert response.status_code == 200
    assert client.post("/v1/graph/search_nodes", "{}", content_type="application/json").status_code == 401

    after = scrape(client)
    assert promtext.value(after, "memoryhub_http_requests_total", **labels) == count_before + 1
    assert (
        promtext.value(after, "memoryhub_http_request_duration_seconds_count", surface="rest_graph")
        == latency_before + 2
    )
    assert (
        promtext.value(after, "memoryhub_http_requests_total", surface="rest_graph", method="POST", status="401") >= 1
    )
    # Every family docs/operations/observability.md lists is there, typed and explained.
    for name, kind in {
        "memoryhub_http_requests_total": "counter",
        "memoryhub_http_server_errors_total": "counter",
        "memoryhub_http_request_duration_seconds": "histogram",
        "memoryhub_mcp_tool_calls_total": "counter",
        "memoryhub_mcp_tool_duration_seconds": "histogram",
        "memoryhub_database_size_bytes": "gauge",
        "memoryhub_database_wal_size_bytes": "gauge",
        "memoryhub_vector_indexes_loaded": "gauge",
        "memoryhub_vector_index_vectors": "gauge",
        "memoryhub_process_start_time_seconds": "gauge",
    }.items():
        assert after[name].type == kind
        assert after[name].help
    assert "Per server process" in after["memoryhub_http_requests_total"].help
    assert promtext.value(after, "memoryhub_database_size_bytes") > 0
    if connection.vendor == "postgresql":
        # The test role is a superuser, so it may list pg_wal: at least one 16 MB segment.
        assert promtext.value(after, "memoryhub_database_wal_size_bytes") >= 16 * 1024 * 1024
    # The scrapes themselves are the "ops" surface.
    assert promtext.value(after, "memoryhub_http_requests_total", surface="ops", method="GET", status="200") >= 1


def test_surfaces_are_told_apart_by_path() -> None:
    assert metrics.mcp_surface("/mcp") == metrics.mcp_surface("/mcp/") == "mcp"
    assert metrics.mcp_surface("/sse") == metrics.mcp_surface("/messages") == "mcp_sse"
    assert metrics.mcp_surface("/api/mcp/messages") == metrics.mcp_surface("/api/mcp/sse") == "marketplace"
    assert metrics.mcp_surface("/v1/graph/search_nodes") is None
    assert metrics.mcp_surface("/mcpx") is None
    assert metrics.django_surface("/v1/graph/search_nodes") == "rest_graph"
    assert metrics.django_surface("/v1/memory/write") == "rest_memory"
    assert metrics.django_surface("/v1/memory/banks/list") == "rest_memory"
    assert metrics.django_surface("/product/search") == "memos"
    assert metrics.django_surface("/admin/graph/entity/") == "admin"
    assert metrics.django_surface("/keys/") == "pages"
    assert metrics.django_surface("/healthz") == metrics.django_surface("/metrics") == "ops"


def _call(access, name: str, arguments: dict) -> dict:
    connection = protocol.Connection(access=access, namespace=None, protocol_version="2025-11-25", initialized=True)
    message = classify(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    )
    reply = protocol.handle(connection, message).message
    assert reply is not None
    return reply


def test_tool_calls_are_counted_by_tool_and_outcome_with_bounded_labels(client: Client, alice_key: Persona) -> None:
    access = authenticate(alice_key.secret)
    before = scrape(client)

    assert _call(access, "search_nodes", {"query": "x"})["result"]["isError"] is False
    assert _call(access, "get_entity", {"name": "nobody"})["result"]["isError"] is True
    assert "error" in _call(access, 'no_such_tool"\n{evil="1"}', {})  # a JSON-RPC error
    # Per-user agent tools share one label, whatever the id.
    assert _call(access, "agent_999999", {})["result"]["isError"] is True

    after = scrape(client)

    def delta(**labels: str) -> float:
        name = "memoryhub_mcp_tool_calls_total"
        return promtext.value(after, name, **labels) - promtext.value(before, name, **labels)

    assert delta(tool="search_nodes", outcome="ok") == 1
    assert delta(tool="get_entity", outcome="error") == 1
    assert delta(tool="unknown", outcome="fault") == 1
    assert delta(tool="agent", outcome="error") == 1
    name = "memoryhub_mcp_tool_duration_seconds_count"
    assert promtext.value(after, name, tool="search_nodes") == promtext.value(before, name, tool="search_nodes") + 1
    tools = {labels["tool"] for _, labels, _ in after["memoryhub_mcp_tool_calls_total"].samples}
    assert not any("evil" in tool or tool.startswith("agent_") for tool in tools)


def test_label_values_are_escaped() -> None:
    exposition = metrics.Exposition()
    name = exposition.family("escaping_test", "gauge", 'help with \\ and\nnewline "quoted"')
    exposition.sample(name, 1, (("value", 'a "quoted" \\ back\nslash'),))
    families = promtext.parse(exposition.text())
    ((_, labels, value),) = families["memoryhub_escaping_test"].samples
    assert labels == {"value": 'a "quoted" \\ back\nslash'}
    assert value == 1


# --- who may read /metrics -------------------------------------------------------------------------

REMOTE = {"REMOTE_ADDR": "203.0.113.9"}


def test_loopback_callers_need_no_key(client: Client, db) -> None:
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_remote_callers_need_an_operator_key(client: Client, alice_key: Persona, root_key: Persona) -> None:
    anonymous = client.get("/metrics", **REMOTE)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    tenant = client.get("/metrics", **REMOTE, **alice_key.headers)
    assert tenant.status_code == 403
    assert tenant.json()["error"]["code"] == "forbidden"
    assert client.get("/metrics", **REMOTE, HTTP_X_API_KEY="mh_not_a_key").status_code == 401
    operator = client.get("/metrics", **REMOTE, **root_key.headers)
    assert operator.status_code == 200
    assert b"memoryhub_http_requests_total" in operator.content


@pytest.mark.parametrize("header", ["HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"])
def test_a_proxied_request_is_not_loopback(client: Client, db, header: str) -> None:
    # Behind a reverse proxy on the same host every request arrives from 127.0.0.1.
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", **{header: "198.51.100.7"}).status_code == 401


def test_public_metrics_setting_opens_it_to_everyone(client: Client, db, settings) -> None:
    settings.MEMORYHUB_METRICS_PUBLIC = True
    assert client.get("/metrics", **REMOTE).status_code == 200


def test_metrics_is_get_only(client: Client, db) -> None:
    assert client.post("/metrics").status_code == 405


# The loopback rule rests on MEMORYHUB_TRUSTED_PROXIES (default: a proxy on this host, 127.0.0.1
# and ::1): the client is the first address, from the right of the forwarded chain, that is not a
# trusted proxy; /metrics is open when that client is loopback. A peer that is not a trusted proxy
# is the client, whatever headers it sends.


def test_a_scraper_on_this_host_may_come_through_the_local_proxy(client: Client, db) -> None:
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1", HTTP_FORWARDED='for="[::1]";proto=http').status_code == 200


def test_a_forged_chain_does_not_make_a_remote_caller_local(client: Client, db) -> None:
    # The caller wrote "127.0.0.1" itself; the proxy appended who really called.
    forged = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1, 198.51.100.7"}
    assert client.get("/metrics", **forged).status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="not-an-address").status_code == 401
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_FORWARDED="by=x").status_code == 401
    # A remote peer's own forwarding headers count for nothing.
    assert client.get("/metrics", **REMOTE, HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 401


def test_the_trusted_proxies_setting_decides(client: Client, db, settings) -> None:
    # A proxy on another machine, trusted: it speaks for its clients, and it is not loopback.
    settings.MEMORYHUB_TRUSTED_PROXIES = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 401
    # No proxy on this host: a loopback peer is a local caller; its forwarding headers are not trusted.
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7").status_code == 200
    settings.MEMORYHUB_TRUSTED_PROXIES = []
    assert client.get("/metrics", REMOTE_ADDR="::1", HTTP_X_REAL_IP="198.51.100.7").status_code == 200


def test_under_proxy_headers_a_forged_loopback_address_is_no_local_caller(client: Client, db) -> None:
    # `daphne --proxy-headers` (make run-cluster) makes the chain's first entry, which the caller
    # wrote, the peer address: any loopback address is a trusted proxy by default, so the chain is
    # read on to the address the proxy appended.
    forged = {"REMOTE_ADDR": "127.0.0.5", "HTTP_X_FORWARDED_FOR": "127.0.0.5, 198.51.100.7"}
    assert client.get("/metrics", **forged).status_code == 401


def test_the_database_families_measure_the_configured_backend(db) -> None:
    """The database's size (the SQLite file; the PostgreSQL database) and its write-ahead log."""
    families = promtext.parse(metrics.render())
    assert families["memoryhub_database_size_bytes"].type == "gauge"
    assert families["memoryhub_database_wal_size_bytes"].type == "gauge"
    assert promtext.value(families, "memoryhub_database_size_bytes") > 0
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database())")
            size = cursor.fetchone()[0]
        assert abs(promtext.value(families, "memoryhub_database_size_bytes") - size) < 1024 * 1024
        assert promtext.value(families, "memoryhub_database_wal_size_bytes") >= 16 * 1024 * 1024
    else:
        assert promtext.value(families, "memoryhub_database_wal_size_bytes") >= 0


@pytest.mark.postgres_only(reason="pg_wal can be listed only by a superuser or pg_monitor")
def test_without_pg_monitor_the_wal_size_is_left_out(db) -> None:
    """A role that may read MemoryHub's tables but is neither superuser nor pg_monitor."""
    role = f"mh_metrics_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOLOGIN NOSUPERUSER")
        cursor.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        try:
            cursor.execute(f"SET ROLE {role}")
            families = promtext.parse(metrics.render())
            cursor.execute("RESET ROLE")
        finally:
            cursor.execute("RESET ROLE")
            cursor.execute(f"DROP OWNED BY {role}")
            cursor.execute(f"DROP ROLE {role}")
    assert promtext.value(families, "memoryhub_database_size_bytes") > 0
    assert families["memoryhub_database_wal_size_bytes"].samples == []
