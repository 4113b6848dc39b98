"""Memory banks (REST memory API seed) and the public API documentation."""

from __future__ import annotations

import datetime as dt

from django.test import Client

from access import services as access_services
from graph import services
from tests.conftest import ALICE, BOB, Persona


def test_banks_list_shows_what_the_key_can_read(
    client: Client, alice_key: Persona, bob_key: Persona, root_key: Persona
) -> None:
    for namespace in (ALICE, "org:alice:journal", BOB, "public:docs"):
        services.create_entities(namespace=namespace, entities=[{"name": "x", "entityType": "t", "observations": []}])
    access_services.grant_set(key=alice_key.key, pattern="public:docs", permission="read", source="command")
    # Existing readable namespaces, plus exact grants and the default namespace even before use.
    assert client.get("/v1/memory/banks/list", **alice_key.headers).json() == [
        "org:alice:journal",
        ALICE,
        "public:docs",
    ]
    assert client.get("/v1/memory/banks/list", **bob_key.headers).json() == [BOB]
    assert client.get("/v1/memory/banks/list", **root_key.headers).json() == [
        "default",
        "org:alice:journal",
        ALICE,
        BOB,
        "public:docs",
    ]


def test_banks_list_and_ping_need_a_key(client: Client, alice_key: Persona) -> None:
    assert client.get("/v1/memory/banks/list").status_code == 401
    assert client.get("/v1/memory/banks/ping").status_code == 401
    ping = client.get("/v1/memory/banks/ping", **alice_key.headers)
    assert ping.status_code == 200
    body = ping.json()
    assert body["ok"] is True
    assert body["area"] == "banks"
    assert dt.datetime.fromisoformat(body["ts"].replace("Z", "+00:00")).tzinfo is not None


def test_banks_debug_exists_only_in_debug_mode(client: Client, settings) -> None:
    settings.DEBUG = False
    hidden = client.get("/v1/memory/banks/debug")
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "not_found"
    settings.DEBUG = True
    shown = client.get("/v1/memory/banks/debug")  # no key needed
    assert shown.status_code == 200
    body = shown.json()
    assert body["ok"] is True
    assert body["env"] == "Development"
    assert set(body) == {"ok", "ts", "env", "mcpEnabled", "mcpBase", "expectedRoutes"}


def test_the_openapi_schema_and_docs_are_public(client: Client) -> None:
    schema = client.get("/openapi.json")
    assert schema.status_code == 200
    assert schema["Content-Type"].startswith("application/vnd.oai.openapi+json")
    document = schema.json()
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": document["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert {"create_entities", "find_path", "banks_list", "banks_ping"} <= operations
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    # The Swagger UI assets ship with the server (no CDN): served from /static/ by WhiteNoise.
    asset = client.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200
