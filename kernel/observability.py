"""Request ids and HTTP metrics for every request, at two layers:

- `AsgiMiddleware` wraps the whole ASGI application (memoryhub/asgi.py). For every HTTP request it
  takes the request id (the caller's `X-Request-ID` when sane, else a new one), sets it in the
  `kernel.logs.request_id` context variable for the request's task (so every log line of the
  request carries it, also from Django's handler and the MCP consumers), and returns it in the
  `X-Request-ID` response header. It measures the MCP transports' routes (Channels consumers,
  which are not Django views).
- `RequestMiddleware` is Django middleware (first in MIDDLEWARE): it measures Django's views per
  surface, and sets the request id itself when the request did not come through the ASGI
  middleware (the test client, WSGI).

Each request is counted once: a path is either an MCP route (ASGI layer) or Django's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from kernel import logs, metrics

_HEADER = logs.REQUEST_ID_HEADER.encode()
_HEADER_LOWER = _HEADER.lower()
_SCOPE_KEY = "memoryhub.request_id"

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _is_event_stream(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"content-type" and value.startswith(b"text/event-stream") for name, value in headers)


class AsgiMiddleware:
    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((value for name, value in scope.get("headers", ()) if name.lower() == _HEADER_LOWER), None)
        request_id = logs.accept_request_id(incoming)
        scope = {**scope, _SCOPE_KEY: request_id}
        surface = metrics.mcp_surface(scope.get("path", ""))
        started = time.perf_counter()
        status = 0
        recorded = False

        def record() -> None:
            nonlocal recorded
            if surface is not None and not recorded:
                recorded = True
                metrics.observe_http(surface, scope.get("method", ""), status, time.perf_counter() - started)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if not any(name.lower() == _HEADER_LOWER for name, _ in headers):
                    headers.append((_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
                if _is_event_stream(headers):
                    record()  # a stream's latency is the time to its headers, not its lifetime
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                record()
            await send(message)

        token = logs.request_id.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # The server cancels a request whose client went away: 499 (nginx's "client closed
            # request") when nothing was answered yet, not a server error.
            status = status or 499
            raise
        except BaseException:
            if not recorded:
                status = max(status, 500)
            raise
        finally:
            # Also when the client went away before the response was complete.
            if status:
                record()
            logs.request_id.reset(token)


class RequestMiddleware:
    """Django middleware (sync and async): request id when the ASGI layer has not set one,
    the `X-Request-ID` response header, and HTTP metrics for Django's surfaces."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        request_id, token = self._begin(request)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            if token is not None:
                logs.request_id.reset(token)
        return self._finish(request, response, request_id, started)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        request_id, token = self._begin(request)
        started = time.perf_counter()
        try:
            response = await self.get_response(request)
        finally:
            if token is not None:
                logs.request_id.reset(token)
        return self._finish(request, response, request_id, started)

    @staticmethod
    def _begin(request: HttpRequest) -> tuple[str, Any]:
        scope = getattr(request, "scope", None)
        request_id = scope.get(_SCOPE_KEY) if isinstance(scope, dict) else None
        if request_id is not None:
            return request_id, None  # the ASGI middleware set it for the whole task
        request_id = logs.accept_request_id(request.headers.get(logs.REQUEST_ID_HEADER))
        return request_id, logs.request_id.set(request_id)

    @staticmethod
    def _finish(request: HttpRequest, response: HttpResponseBase, request_id: str, started: float) -> HttpResponseBase:
        if not response.has_header(logs.REQUEST_ID_HEADER):
            response[logs.REQUEST_ID_HEADER] = request_id
        # Streaming responses (none of the APIs; a large static file) count when they start.
        metrics.observe_http(
            metrics.django_surface(request.path),
            request.method or "",
            response.status_code,
            time.perf_counter() - started,
        )
        return response
