"""API-key and OAuth-token authentication for Channels consumers (ASGI middleware), through the
shared path (`authentication.authenticate`, given the request's origin so that a bearer token
that is not a key is checked as an OAuth access token bound to this server).

Sets `scope["access"]` to the caller's Access, or to None with the reason in
`scope["access_error"]` (NotAuthenticated or RateLimited); the consumer answers in its own
protocol (an HTTP 401 for MCP, a closed socket, ...). `?key=` is honoured for SSE GETs only.

With `deferred=True` the middleware only finds the key (`scope["api_key"]`, None when the
request carries none) and leaves the check to the consumer, which can then make it in the same
database call as the request's work (`check`): each hop to the database thread costs a GIL
hand-over both ways, a measurable share of a read tool call under load.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

from access import authentication
from access.exceptions import AccessError
from access.permissions import Access
from kernel.asgi_headers import SCOPE_KEY as HEADERS_KEY
from kernel.asgi_headers import request_headers, request_origin
from kernel.asyncdb import db_sync_to_async

API_KEY = "api_key"  # scope key of the raw key when the check is deferred to the consumer


def check(raw: str | None, origin: str | None = None) -> tuple[Access | None, AccessError | None]:
    """`authentication.authenticate` as a result: the Access, or None and why. Synchronous, so a
    consumer can call it inside its own database call. `origin` (`kernel.asgi_headers.request_origin`)
    lets OAuth access tokens in; without it only API keys are accepted."""
    try:
        return replace(authentication.authenticate(raw, origin=origin), surface="mcp"), None
    except AccessError as error:
        return None, error


def settle(scope: dict[str, Any], result: tuple[Access | None, AccessError | None]) -> None:
    """Record the outcome of `check` where consumers look for it."""
    scope["access"], scope["access_error"] = result


class ApiKeyMiddleware:
    """`query_key_on_get`: accept `?key=` on every GET of this route, not only on those that
    accept text/event-stream (for SSE routes whose documentation tells clients to use it).
    `deferred`: find the key but leave the check to the consumer (see the module's docstring)."""

    def __init__(self, inner: Any, *, query_key_on_get: bool = False, deferred: bool = False) -> None:
        self.inner = inner
        self.query_key_on_get = query_key_on_get
        self.deferred = deferred

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] in ("http", "websocket"):
            headers = request_headers(scope)
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            raw = authentication.key_from_request(
                headers,
                query,
                allow_query=(self.query_key_on_get and scope.get("method") == "GET")
                or authentication.query_key_allowed(scope.get("method", "GET"), headers.get("Accept", "")),
            )
            scope = {**scope, HEADERS_KEY: headers}
            if self.deferred:
                scope[API_KEY] = raw
            else:
                settle(scope, await db_sync_to_async(check)(raw, request_origin(scope)))
        return await self.inner(scope, receive, send)
