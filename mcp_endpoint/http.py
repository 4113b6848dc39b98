"""HTTP plumbing shared by the MCP consumers: the request's headers and query, Origin checks,
SSE framing, and the consumer base that reads a bounded body and streams events.

Errors at the HTTP level are JSON-RPC error objects with `id: null` (the MCP edge's one error
format), sent with the HTTP status the spec asks for.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from channels.consumer import AsyncConsumer, get_handler_name
from channels.exceptions import StopConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils import timezone

from access import namespaces, oauth, selectors
from access.asgi_auth import API_KEY, check, settle
from access.exceptions import RateLimited
from access.permissions import Access
from kernel.asgi_headers import request_headers, request_host, request_origin
from kernel.asyncdb import db_sync_to_async
from kernel.errors import DomainError, StoreBusy
from kernel.http_errors import mcp_authenticate_header
from kernel.sql import is_busy
from mcp_endpoint import events, protocol, registry, sessions
from mcp_endpoint.jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, Message, ProtocolError, encode, error, wire
from mcp_endpoint.models import McpSession

logger = logging.getLogger(__name__)

JSON = b"application/json"
EVENT_STREAM = b"text/event-stream"
# SSE retry hint (ms) for clients reconnecting after the server closed a stream.
RETRY_MS = 3000

# Request headers a browser page may send (answer to a CORS preflight).
CORS_REQUEST_HEADERS = (
    "Content-Type",
    "Accept",
    "Authorization",
    "X-API-Key",
    "x-momoai-key",
    "X-Memory-Namespace",
    "MCP-Session-Id",
    "MCP-Protocol-Version",
    "Mcp-Method",
    "Mcp-Name",
    "Last-Event-ID",
)
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


def sse_event(*, data: str, event: str | None = None, event_id: str | None = None, retry: int | None = None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    # JSON from `dumps` has no raw newlines; split anyway so any data stays valid SSE.
    lines.extend(f"data: {line}" for line in (data.split("\n") if data else [""]))
    return encode("\n".join(lines) + "\n\n")


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """DNS-rebinding defence (spec: MUST validate Origin): no Origin (not a browser) is fine; a
    browser page may call only from this server's own origin, a loopback origin, or an origin
    listed in MEMORYHUB_MCP_ALLOWED_ORIGINS."""
    if origin is None:
        return True
    allowed = settings.MEMORYHUB_MCP_ALLOWED_ORIGINS
    if "*" in allowed or origin in allowed:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    if parts.hostname in LOCAL_HOSTS or f"[{parts.hostname}]" in LOCAL_HOSTS:
        return True
    return host is not None and parts.netloc.lower() == host.lower()


def host_allowed(host: str) -> bool:
    """`HttpRequest.get_host`'s rule: the host's domain is in ALLOWED_HOSTS (with DEBUG and none
    listed, the loopback names)."""
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)


def transport_headers(scope: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
    """What Django's SecurityMiddleware adds to its own answers: nosniff (an answer is what its
    Content-Type says, never sniffed into HTML), and HSTS over TLS."""
    headers = [(b"X-Content-Type-Options", b"nosniff")]
    if scope.get("scheme") == "https" and settings.SECURE_HSTS_SECONDS:
        headers.append((b"Strict-Transport-Security", f"max-age={settings.SECURE_HSTS_SECONDS}".encode()))
    return headers


@db_sync_to_async
def answer(connection: protocol.Connection, message: Message, session: McpSession | None = None) -> protocol.Reply:
    """`protocol.handle` on the database thread; then, when the message belongs to a session,
    what it changed on the connection is stored there (in the same hop)."""
    reply = protocol.handle(connection, message)
    if session is not None:
        sessions.save(session, connection)
    return reply


class AllowedHostsMiddleware:
    """DNS-rebinding defence for the routes Django does not serve (spec: servers MUST validate
    Origin; a rebound name sends its own Host, and an Origin equal to it). A request whose Host is
    not in ALLOWED_HOSTS is refused before anything else looks at it: 403 with the MCP edge's
    error body and no CORS headers, or a websocket closed before it opens."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] not in ("http", "websocket") or host_allowed(request_host(scope)):
            return await self.inner(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4003})
            return None
        reply = {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": FOREIGN_HOST}}
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [(b"Content-Type", JSON), *transport_headers(scope)],
            }
        )
        await send({"type": "http.response.body", "body": wire(reply)})
        return None


FOREIGN_HOST = "Forbidden: this Host is not served here (ALLOWED_HOSTS)"


class FailuresAnswered:
    """An exception that escaped every consumer (the database gone, a bug) is answered in this
    edge's own format, a JSON-RPC error, not as the ASGI server's HTML page: 503 with Retry-After
    when the database stayed busy (kernel.errors.StoreBusy), else 500 Internal error, logged.
    A response already under way (a stream) can only be cut off."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "http":
            return await self.inner(scope, receive, send)
        started = False

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            return await self.inner(scope, receive, tracked)
        except Exception as failure:
            if started:
                raise
            headers = [(b"Content-Type", JSON), *transport_headers(scope)]
            if is_busy(failure):
                status, message = 503, StoreBusy().message
                headers.append((b"Retry-After", b"1"))
            else:
                logger.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
                status, message = 500, "Internal error"
            reply = error(None, ProtocolError(INTERNAL_ERROR, message))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": wire(reply)})
            return None


class McpHttpConsumer(AsyncConsumer, abc.ABC):
    """Base of the MCP HTTP consumers: collects the body up to the request limit, checks Origin
    and the API key, then calls `respond(body)`. A subclass that starts an SSE stream keeps the
    consumer alive; channel-layer messages and the client's disconnect arrive as usual."""

    methods: tuple[str, ...] = ()
    streaming = False
    keepalive_task: asyncio.Task[None] | None = None
    # A long-lived stream watches its key (`watch_key`): the key's group, and a timer for its expiry.
    key_watched: str | None = None
    expiry_timer: asyncio.TimerHandle | None = None
    # The MCP session this request belongs to, once known.
    session: McpSession | None = None
    _chunks: list[bytes] | None = None
    _size = 0

    # Whether the consumer reads its channel: only once it holds a stream open (`keep_alive`).
    reads_channel = False

    async def websocket_connect(self, message: dict[str, Any]) -> None:  # pragma: no cover - routed as http only
        raise StopConsumer()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """AsyncConsumer's, except that the channel is read only by a consumer holding a stream
        open. With Redis, the consumers of a process take turns popping the process's messages
        and hand each to its consumer; one cancelled while its pop is on the wire loses the
        message it popped, whoever it was for (channels_redis issue #366). Every request that
        ends at once is cancelled so: a legacy `POST /messages` published the reply to its
        session's stream, answered 202, stopped, and now and then took the reply with it (an
        `initialize` that never came back, in the suite). Messages sent to a channel before it is
        read wait in the layer."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
        self.base_send = send
        client = asyncio.ensure_future(receive())
        channel: asyncio.Future[Any] | None = None
        try:
            while True:
                if channel is None and self.reads_channel and self.channel_layer is not None:
                    channel = asyncio.ensure_future(self.channel_layer.receive(self.channel_name))
                await asyncio.wait(
                    [client] if channel is None else [client, channel], return_when=asyncio.FIRST_COMPLETED
                )
                if client.done():
                    message = client.result()
                    client = asyncio.ensure_future(receive())
                    await self.dispatch(message)
                if channel is not None and channel.done():
                    message, channel = channel.result(), None
                    await self.dispatch(message)
        except StopConsumer:
            pass
        finally:
            for task in (client, channel):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its `aclose_old_connections()` before every handler: that
        hop to the database thread closed the connection the MCP transports keep there on purpose
        (kernel/asyncdb.py), so every message reopened SQLite and ran the pragmas again; with
        SQLite there is no stale or broken server connection to drop. It saves a thread hop per
        message and a visible share of a read tool call's server time (bench/load.py)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- request ---------------------------------------------------------------------------------

    @property
    def headers(self) -> Mapping[str, str]:
        if not hasattr(self, "_headers"):
            self._headers = request_headers(self.scope)
        return self._headers

    @property
    def origin(self) -> str:
        """scheme://host[:port] the client addressed: OAuth tokens must be bound to it, and the 401
        challenge names its protected-resource metadata (the Host was validated on the way in)."""
        return request_origin(self.scope)

    @property
    def query(self) -> dict[str, str]:
        if not hasattr(self, "_query"):
            self._query = dict(parse_qsl(self.scope.get("query_string", b"").decode("latin-1")))
        return self._query

    @property
    def language(self) -> str | None:
        """The language tool messages should use: the first of Accept-Language we have messages
        in ("zh" or "en"), or None when the client did not say."""
        return language_of(self.headers.get("Accept-Language"))

    def accepts(self, media_type: str) -> bool:
        accept = self.headers.get("Accept", "").lower()
        return not accept or media_type in accept or "*/*" in accept

    async def http_request(self, message: dict[str, Any]) -> None:
        if self._chunks is None:
            self._chunks, self._size = [], 0
        chunks = self._chunks
        chunk = message.get("body", b"")
        self._size += len(chunk)
        if self._size > settings.MEMORYHUB_LIMITS["MAX_REQUEST_BYTES"]:
            limit = settings.MEMORYHUB_LIMITS["MAX_REQUEST_BYTES"]
            await self.fail(413, INVALID_REQUEST, f"Request body too large: the limit is {limit} bytes")
            raise StopConsumer()
        chunks.append(chunk)
        if message.get("more_body"):
            return
        body = b"".join(chunks)
        if await self.checked() and not await self.respond_checking_key(body) and await self.authenticated():
            await self.respond(body)
        if not self.streaming:
            raise StopConsumer()

    async def checked(self) -> bool:
        """Method and Origin; answers the request itself when one fails."""
        if not origin_allowed(self.headers.get("Origin"), self.headers.get("Host")):
            await self.fail(403, INVALID_REQUEST, "Forbidden: this Origin may not call the MCP endpoint")
            return False
        if self.scope["method"] == "OPTIONS":
            # A browser's CORS preflight (it carries no key): say what the real request may use.
            await self.send_response(204, b"", self.preflight_headers())
            return False
        if self.scope["method"] not in self.methods:
            await self.fail(405, INVALID_REQUEST, "Method not allowed", headers=[(b"Allow", ", ".join(self.methods))])
            return False
        return True

    async def authenticated(self) -> bool:
        """The API key, checked here when the route deferred it (access/asgi_auth.py);
        answers the request itself (401, or 429 over the rate limit) when it fails."""
        if "access" not in self.scope:
            settle(self.scope, await db_sync_to_async(check)(self.scope.get(API_KEY), self.origin))
        if self.scope["access"] is None:
            await self.refuse_key()
            return False
        return True

    async def respond_checking_key(self, body: bytes) -> bool:
        """Answer the request with its deferred key check made in the same database call as its
        work, when the consumer can; False, with nothing sent, when it cannot (the key is then
        checked first and `respond` answers)."""
        return False

    async def refuse_key(self) -> None:
        problem = self.scope.get("access_error")
        if isinstance(problem, RateLimited):
            await self.fail(429, INVALID_REQUEST, problem.message, headers=[(b"Retry-After", str(problem.retry_after))])
        else:
            await self.fail(
                401,
                INVALID_REQUEST,
                self.unauthenticated_message(problem),
                # RFC 9728 §5.1: where an OAuth client finds the authorization server; with
                # error="invalid_token" when the token sent was refused.
                headers=[(b"WWW-Authenticate", mcp_authenticate_header(self.origin, problem))],
            )

    def unauthenticated_message(self, problem: Any) -> str:
        return problem.message if isinstance(problem, DomainError) else "A valid API key is required"

    @property
    def access(self) -> Access:
        access = self.scope["access"]
        assert isinstance(access, Access)
        return access

    def connection_settings(self) -> tuple[str | None, tuple[str, ...] | None]:
        """The namespace (`?namespace=` or X-Memory-Namespace, else the key's default: None) and
        tool categories (`?tools=`) the client asked for; raises ProtocolError when invalid."""
        namespace = self.query.get("namespace") or self.headers.get("X-Memory-Namespace") or None
        try:
            if namespace is not None:
                namespace = namespaces.validate(namespace)
            categories = registry.parse_categories(self.query.get("tools"))
        except (DomainError, ValueError) as problem:
            text = problem.message if isinstance(problem, DomainError) else str(problem)
            raise ProtocolError(INVALID_REQUEST, f"Bad request: {text}") from None
        return namespace, categories

    @abc.abstractmethod
    async def respond(self, body: bytes) -> None:
        """Answer the request (method, Origin and key already checked)."""

    # --- response ----------------------------------------------------------------------------------

    async def send_json(
        self, status: int, payload: Any, headers: list[tuple[bytes, bytes | str]] | None = None
    ) -> None:
        await self.send_response(status, wire(payload), [(b"Content-Type", JSON), *(headers or [])])

    async def send_response(self, status: int, body: bytes, headers: list[tuple[bytes, bytes | str]]) -> None:
        await self.start_response(status, headers)
        await self.send({"type": "http.response.body", "body": body})

    async def start_response(self, status: int, headers: list[tuple[bytes, bytes | str]]) -> None:
        encoded = [(name, value.encode() if isinstance(value, str) else value) for name, value in headers]
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": encoded + self.cors_headers() + transport_headers(self.scope),
            }
        )

    def cors_headers(self) -> list[tuple[bytes, bytes]]:
        """Let a page from an allowed origin read the response and the session id; a refused
        origin (its 403 goes through here too) is told nothing."""
        origin = self.headers.get("Origin")
        if origin is None or not origin_allowed(origin, self.headers.get("Host")):
            return []
        return [
            (b"Access-Control-Allow-Origin", origin.encode("latin-1")),
            (b"Access-Control-Expose-Headers", b"MCP-Session-Id, MCP-Protocol-Version"),
            (b"Vary", b"Origin"),
        ]

    def preflight_headers(self) -> list[tuple[bytes, bytes | str]]:
        return [
            (b"Access-Control-Allow-Methods", ", ".join(self.methods)),
            (b"Access-Control-Allow-Headers", ", ".join(CORS_REQUEST_HEADERS)),
            (b"Access-Control-Max-Age", b"600"),
        ]

    async def fail(
        self, status: int, code: int, message: str, headers: list[tuple[bytes, bytes | str]] | None = None
    ) -> None:
        reply = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
        await self.send_json(status, reply, headers)

    async def start_stream(self, headers: list[tuple[bytes, bytes | str]] | None = None) -> None:
        """Open an SSE response; the consumer stays alive until `end_stream` or disconnect."""
        base: list[tuple[bytes, bytes | str]] = [
            (b"Content-Type", EVENT_STREAM),
            (b"Cache-Control", b"no-cache, no-store"),
            # nginx and friends must not buffer the stream (the MemOS guide's proxy advice).
            (b"X-Accel-Buffering", b"no"),
        ]
        await self.start_response(200, base + (headers or []))
        await self.send({"type": "http.response.body", "body": b"", "more_body": True})
        self.streaming = True

    async def send_chunk(self, chunk: bytes) -> None:
        await self.send({"type": "http.response.body", "body": chunk, "more_body": True})

    def keep_alive(self, seconds: float, comment: bytes = b": keepalive\n\n") -> None:
        """Send an SSE comment every `seconds` so proxies keep an idle stream open. Such a stream
        lives as long as its key: it ends when the key is revoked or expires (`watch_key`)."""

        async def beat() -> None:
            await self.watch_key()
            while True:
                await asyncio.sleep(seconds)
                await self.send_chunk(comment)
                await self.still_open()
                # A revocation no message brought here (made by a process on another channel
                # layer, such as manage.py without Redis) is found at the next beat.
                await self.recheck_key()

        self.reads_channel = True
        self.keepalive_task = asyncio.ensure_future(beat())

    async def watch_key(self) -> None:
        """Join the key's group (a revocation or an expiry change in any process is announced
        there: mcp_endpoint/notifications.py), then look at the key once, which also sets a
        timer for its expiry. Joined first, so no change made in between is missed."""
        key_id = self.access.key_id
        if key_id is None:
            if self.access.oauth_token_id is not None:
                # An OAuth token's revocation is not announced: the keep-alive's recheck sees it.
                await self.recheck_key()
            return
        self.key_watched = events.key_group(key_id)
        await self.channel_layer.group_add(self.key_watched, self.channel_name)
        await self.recheck_key()

    async def recheck_key(self) -> None:
        # Through the consumer's own channel: ending the stream must happen in its handler.
        await self.channel_layer.send(self.channel_name, {"type": events.KEY_CHANGED_TYPE})

    async def mcp_key_changed(self, message: dict[str, Any]) -> None:
        """The key changed, or its expiry came, or a keep-alive asks: end the stream when the key
        no longer works, else (re)arm the timer for its expiry. (An OAuth caller's stream lives as
        long as the access token it was opened with.)"""
        if self.access.key_id is not None:
            usable, expires_at = await db_sync_to_async(selectors.key_state)(self.access.key_id)
        elif self.access.oauth_token_id is not None:
            usable, expires_at = await db_sync_to_async(oauth.token_state)(self.access.oauth_token_id)
        else:
            return
        if not usable:
            await self.end_stream()
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
            self.expiry_timer = None
        if expires_at is not None:
            delay = max(0.0, (expires_at - timezone.now()).total_seconds())
            self.expiry_timer = asyncio.get_running_loop().call_later(
                delay, lambda: asyncio.ensure_future(self.recheck_key())
            )

    async def end_stream(self) -> None:
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})
        await self.stop()

    async def stop(self) -> None:
        if self.keepalive_task is not None:
            self.keepalive_task.cancel()
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
        if self.key_watched is not None:
            await self.channel_layer.group_discard(self.key_watched, self.channel_name)
            self.key_watched = None
        await self.closed()
        raise StopConsumer()

    async def still_open(self) -> None:
        """Called after each keep-alive: a session stays live while its stream is open."""
        if self.session is not None:
            await db_sync_to_async(sessions.touch)(self.session)

    async def closed(self) -> None:
        """The stream ended (either side): leave groups, end legacy sessions, ..."""

    async def http_disconnect(self, message: dict[str, Any]) -> None:
        await self.stop()


def language_of(accept_language: str | None) -> str | None:
    """ "zh-CN,zh;q=0.9,en;q=0.8" → "zh"; "en-US" or any language we have no messages in → "en";
    no header → None. The client's first choice wins (q-values are not re-sorted: browsers and
    SDKs list languages in order of preference)."""
    if not accept_language or not accept_language.strip():
        return None
    first = accept_language.split(",")[0].split(";")[0].strip().lower()
    if first in ("", "*"):
        return None
    return "zh" if first.startswith("zh") else "en"


def stream_keepalive_seconds() -> float:
    return float(settings.MEMORYHUB_MCP_KEEPALIVE_SECONDS)
