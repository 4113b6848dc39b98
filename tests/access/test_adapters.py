"""The same key check behind every kind of surface: a plain view, django-ninja, Channels.

(The DRF adapter is exercised by every REST test.) Each adapter is tried with a good key, a
revoked one and none, and must agree with the others.
"""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import RequestFactory
from ninja import NinjaAPI
from ninja.testing import TestClient

from access import services
from access.asgi_auth import ApiKeyMiddleware
from access.decorators import api_key_required
from access.ninja_auth import ApiKeyAuth
from kernel.errors import DomainError
from kernel.http_errors import error_body, status_for
from tests.conftest import Persona


@api_key_required
def plain_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"namespace": request.access.default_namespace})  # type: ignore[attr-defined]


def test_plain_views_take_the_key_from_headers(alice_key: Persona, rf: RequestFactory) -> None:
    ok = plain_view(rf.get("/x", HTTP_AUTHORIZATION=f"Bearer {alice_key.secret}"))
    assert ok.status_code == 200
    assert json.loads(ok.content) == {"namespace": alice_key.namespace}
    missing = plain_view(rf.get("/x"))
    assert missing.status_code == 401
    assert json.loads(missing.content)["error"]["code"] == "unauthorized"


def test_plain_views_accept_a_query_key_only_for_event_streams(alice_key: Persona, rf: RequestFactory) -> None:
    url = f"/sse?key={alice_key.secret}"
    assert plain_view(rf.get(url, HTTP_ACCEPT="text/event-stream")).status_code == 200
    assert plain_view(rf.get(url)).status_code == 401
    assert plain_view(rf.post(url, HTTP_ACCEPT="text/event-stream")).status_code == 401


def _ninja_client() -> TestClient:
    api = NinjaAPI(auth=ApiKeyAuth(), urls_namespace=None)

    @api.exception_handler(DomainError)
    def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
        return api.create_response(request, error_body(exc.code, exc.message), status=status_for(exc))

    @api.get("/whoami")
    def whoami(request: HttpRequest) -> dict:
        return {"namespace": request.auth.default_namespace}  # type: ignore[attr-defined]

    return TestClient(api)


def test_ninja_apis_use_the_same_check(alice_key: Persona) -> None:
    client = _ninja_client()
    ok = client.get("/whoami", headers={"x-momoai-key": alice_key.secret})
    assert ok.status_code == 200
    assert ok.json() == {"namespace": alice_key.namespace}
    assert client.get("/whoami").status_code == 401
    services.api_key_revoke(key=alice_key.key, source="command")
    refused = client.get("/whoami", headers={"X-API-Key": alice_key.secret})
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


async def _echo_access(scope, receive, send) -> None:
    access, error = scope["access"], scope["access_error"]
    body = {"namespace": access.default_namespace} if access else {"error": error.code}
    await send({"type": "http.response.start", "status": 200 if access else 401, "headers": []})
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


@pytest.mark.django_db(transaction=True)
@pytest.mark.anyio
async def test_channels_consumers_get_the_access_in_their_scope(alice_key: Persona) -> None:
    app = ApiKeyMiddleware(_echo_access)
    ok = await HttpCommunicator(app, "GET", "/mcp", headers=[(b"x-api-key", alice_key.secret.encode())]).get_response()
    assert ok["status"] == 200
    assert json.loads(ok["body"]) == {"namespace": alice_key.namespace}

    sse = HttpCommunicator(app, "GET", f"/sse?key={alice_key.secret}", headers=[(b"accept", b"text/event-stream")])
    assert (await sse.get_response())["status"] == 200
    no_sse = HttpCommunicator(app, "POST", f"/mcp?key={alice_key.secret}")
    assert json.loads((await no_sse.get_response())["body"]) == {"error": "unauthorized"}

    await database_sync_to_async(services.api_key_revoke)(key=alice_key.key, source="command")
    revoked = HttpCommunicator(app, "GET", "/mcp", headers=[(b"x-api-key", alice_key.secret.encode())])
    assert (await revoked.get_response())["status"] == 401
