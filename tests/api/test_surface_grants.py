"""Every REST route, MemOS route and web page on tenant data refuses a caller without the grant
its operation needs, through the whole Django stack.

The routes are walked from the URL configuration, so a route added later must get an example here
or this fails. Bob (write on org:bob:*) aims each call at Alice's namespace; Carol (read on
org:alice:*) aims each writing call there. Alice's data is the same afterwards. The MCP tools are
walked in tests/mcp_endpoint/test_surface_grants.py, the operations in
tests/access/test_operation_grants.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from access.operations import perform
from memory.services import NewMemory
from tests.conftest import ALICE, PASSWORD, Persona
from tests.grants import CALLS, OPERATOR, READ, SECRET, WRITE

pytestmark = pytest.mark.django_db

MEMORY_ROUTES: dict[str, tuple[dict[str, Any], str]] = {
    "write": ({"text": "bob was here"}, WRITE),
    "search": ({"query": "vault code"}, READ),
    "clear": ({}, WRITE),
}
# MemOS routes: (body naming Alice's namespace as a cube, what it needs)
MEMOS_ROUTES: dict[str, tuple[dict[str, Any], str]] = {
    "add": ({"user_id": "u1", "messages": "bob was here", "writable_cube_ids": [ALICE]}, WRITE),
    "search": ({"user_id": "u1", "query": "vault code", "readable_cube_ids": [ALICE]}, READ),
    "chat/complete": ({"user_id": "u1", "query": "what is the vault code?", "readable_cube_ids": [ALICE]}, READ),
    "get_all": ({"user_id": "u1", "memory_type": "text_mem", "mem_cube_ids": [ALICE]}, READ),
    "get_memory": ({"user_id": "u1", "mem_cube_id": ALICE}, READ),
}
# Routes that name no namespace: by id (a memory outside the caller's reach is "not found"), or
# about the caller's own key (which namespaces it can use), or development-only.
BY_ID = {
    "v1/memory/delete",
    "v1/memory/history",
    "v1/memory/update",
    "v1/memory/restore",
    "v1/memory/supersede",
    "product/delete_memory",
    "product/get_memory/<memory_id>",
}
NOT_TENANT_DATA = {"v1/memory/banks/list", "v1/memory/banks/ping", "v1/memory/banks/debug"}


def _routes(resolver: URLResolver, prefix: str = "") -> list[str]:
    found: list[str] = []
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            found += _routes(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            found.append(prefix + str(pattern.pattern))
    return found


@pytest.fixture
def seeded(alice_key: Persona) -> str:
    """Alice's entity and memory holding SECRET; the memory's id."""
    access = alice_key.key.to_access()
    perform(access, "create_entities", namespace=ALICE, entities=[{"name": "Ada", "entityType": "person"}])
    perform(access, "add_observations", namespace=ALICE, observations=[{"entityName": "Ada", "contents": [SECRET]}])
    (written,) = perform(access, "memory_write", namespace=ALICE, memories=[NewMemory(text=SECRET)])
    return str(written["id"])


def _state(alice_key: Persona) -> tuple[Any, ...]:
    access = alice_key.key.to_access()
    return (
        perform(access, "export_graph", namespace=ALICE),
        perform(access, "memory_list", namespace=ALICE, limit=100),
    )


def _post(client: Client, path: str, body: dict[str, Any], persona: Persona) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json", **persona.headers)


def test_every_route_is_walked() -> None:
    routes = {route for route in _routes(get_resolver()) if route.startswith(("v1/", "product/"))}
    walked = (
        {f"v1/graph/{name}" for name in CALLS}  # the vector operations have no REST route
        | {f"v1/memory/{name}" for name in MEMORY_ROUTES}
        | {f"product/{name}" for name in MEMOS_ROUTES}
        | BY_ID
        | NOT_TENANT_DATA
        | {"product/openapi.json", "product/docs", "product/", "product/<path:rest>"}
    )
    assert routes <= walked, f"add an example call for {sorted(routes - walked)}"


def test_rest_graph_routes_refuse_a_key_without_the_grant(
    client: Client, seeded: str, alice_key: Persona, bob_key: Persona, carol_key: Persona
) -> None:
    before = _state(alice_key)
    routes = set(_routes(get_resolver()))
    graph_calls = {name: call for name, call in CALLS.items() if f"v1/graph/{name}" in routes}
    assert len(graph_calls) == 30
    for name, (arguments, needs) in graph_calls.items():
        callers = [bob_key] if needs == READ else [bob_key, carol_key]
        for caller in callers:
            response = _post(client, f"/v1/graph/{name}", {**arguments, "namespace": ALICE}, caller)
            assert response.status_code == 403, (name, caller.user.username, response.content)
            error = response.json()["error"]
            assert error["code"] == "forbidden"
            expected = "affects every namespace" if needs == OPERATOR else f"no {needs} grant for namespace {ALICE!r}"
            assert expected in error["message"], (name, error)
    assert _state(alice_key) == before


def test_rest_memory_routes_refuse_a_key_without_the_grant(
    client: Client, seeded: str, alice_key: Persona, bob_key: Persona, carol_key: Persona
) -> None:
    before = _state(alice_key)
    for name, (arguments, needs) in MEMORY_ROUTES.items():
        callers = [bob_key] if needs == READ else [bob_key, carol_key]
        for caller in callers:
            response = _post(client, f"/v1/memory/{name}", {**arguments, "namespace": ALICE}, caller)
            assert response.status_code == 403, (name, caller.user.username, response.content)
            assert f"no {needs} grant for namespace {ALICE!r}" in response.json()["error"]["message"]
    for caller in (bob_key, carol_key):  # by id: carol may read Alice's memory, not delete it
        response = _post(client, "/v1/memory/delete", {"id": seeded}, caller)
        assert response.json() == {"deleted": False, "id": seeded}
        # nor supersede it: not found, as an id that does not exist
        response = _post(client, "/v1/memory/supersede", {"id": seeded, "text": "changed"}, caller)
        assert response.status_code == 404, response.content
    unnamed = _post(client, "/v1/memory/search", {"query": "vault code"}, bob_key)
    assert unnamed.status_code == 200
    assert SECRET not in unnamed.content.decode()
    assert _state(alice_key) == before


def test_memos_routes_refuse_a_key_without_the_grant(
    client: Client, seeded: str, alice_key: Persona, bob_key: Persona, carol_key: Persona
) -> None:
    before = _state(alice_key)
    for route, (body, needs) in MEMOS_ROUTES.items():
        callers = [bob_key] if needs == READ else [bob_key, carol_key]
        for caller in callers:
            response = _post(client, f"/product/{route}", body, caller)
            assert response.status_code == 403, (route, caller.user.username, response.content)
            envelope = response.json()
            assert envelope["code"] == 403
            assert f"no {needs} grant for namespace {ALICE!r}" in envelope["message"], (route, envelope)
    for caller in (bob_key, carol_key):
        deleted = _post(client, "/product/delete_memory", {"memory_ids": [seeded]}, caller)
        assert SECRET not in deleted.content.decode()
        found = client.get(f"/product/get_memory/{seeded}", **bob_key.headers)
        assert found.status_code == 404, found.content
    assert _state(alice_key) == before


def test_web_pages_refuse_a_user_without_the_grant(client: Client, seeded: str, bob_key: Persona) -> None:
    """The namespace pages run the same operations with the signed-in user's reach: Bob's (his own
    user:bob:* space and what operators allowed him) does not include Alice's namespace."""
    assert client.login(username=bob_key.user.get_username(), password=PASSWORD)
    for path in (f"/namespaces/{ALICE}/", f"/namespaces/{ALICE}/entities/Ada"):
        response = client.get(path)
        assert response.status_code in (403, 404), (path, response.status_code)
        assert SECRET not in response.content.decode()
    listing = client.get("/namespaces/")
    assert ALICE not in listing.content.decode()
