"""API-key authentication for Channels consumers (ASGI middleware), through the shared path.

Sets `scope["access"]` to the key's Access, or to None with the reason in
`scope["access_error"]` (NotAuthenticated or RateLimited); the consumer answers in its own
protocol (an HTTP 401 for MCP, a closed socket, ...). `?key=` is honoured for SSE GETs only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from memoryhub.access import authentication
from memoryhub.access.exceptions import AccessError
from memoryhub.asgi_headers import SCOPE_KEY as HEADERS_KEY
from memoryhub.asgi_headers import request_headers
from memoryhub.asyncdb import db_sync_to_async


class ApiKeyMiddleware:
    """`query_key_on_get`: accept `?key=` on every GET of this route, not only on those that
    accept text/event-stream (for SSE routes whose documentation tells clients to use it)."""

    def __init__(self, inner: Any, *, query_key_on_get: bool = False) -> None:
        self.inner = inner
        self.query_key_on_get = query_key_on_get

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
            try:
                scope["access"] = await db_sync_to_async(authentication.authenticate)(raw)
                scope["access_error"] = None
            except AccessError as error:
                scope["access"] = None
                scope["access_error"] = error
        return await self.inner(scope, receive, send)
