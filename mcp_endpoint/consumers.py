"""The MCP HTTP transports as Channels consumers.

- `StreamableHttpConsumer` — `/mcp`, Streamable HTTP (2025-03-26 … 2025-11-25 with sessions,
  and stateless 2026-07-28 requests).
- `LegacySseConsumer` + `LegacyMessagesConsumer` — `GET /sse` and `POST /messages`, the
  2024-11-05 HTTP+SSE transport.

They only move bytes: every message goes to `protocol.handle`, session state to `sessions`,
server-initiated messages come from `events`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from access.asgi_auth import API_KEY, check, settle
from access.exceptions import AccessError
from access.permissions import Access
from kernel.asyncdb import db_sync_to_async
from mcp_endpoint import events, protocol, sessions
from mcp_endpoint.http import RETRY_MS, McpHttpConsumer, answer, sse_event, stream_keepalive_seconds
from mcp_endpoint.jsonrpc import (
    HEADER_MISMATCH,
    HTTP_STATUS,
    INVALID_REQUEST,
    MODERN_HTTP_STATUS,
    Message,
    ProtocolError,
    classify,
    dumps,
    notification,
    parse,
)
from mcp_endpoint.models import McpSession

SESSION_HEADER = "MCP-Session-Id"
VERSION_HEADER = "MCP-Protocol-Version"
# 2026-07-28 routing headers, checked against the body.
METHOD_HEADER = "Mcp-Method"
NAME_HEADER = "Mcp-Name"
NAME_PARAMS = {"tools/call": "name", "resources/read": "uri", "prompts/get": "name"}


def _is_modern(value: Any) -> bool:
    params = value.get("params") if isinstance(value, dict) else None
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and protocol.PROTOCOL_VERSION_META in meta


def _header_value(raw: str | None) -> str | None:
    """Decode the spec's `=?base64?...?=` sentinel used for non-ASCII header values."""
    if raw is not None and raw.startswith("=?base64?") and raw.endswith("?="):
        try:
            return base64.b64decode(raw[len("=?base64?") : -2]).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
    return raw


@db_sync_to_async
def _check_key_and_handle(
    raw_key: str | None,
    origin: str,
    message: Message,
    namespace: str | None,
    categories: tuple[str, ...] | None,
    language: str | None,
) -> tuple[tuple[Access | None, AccessError | None], protocol.Reply | None]:
    """A stateless request's key check and work in one database call: the check's outcome, and
    the reply (None when the key was refused)."""
    access, problem = check(raw_key, origin)
    if access is None:
        return (None, problem), None
    connection = protocol.Connection(access=access, namespace=namespace, categories=categories, language=language)
    return (access, None), protocol.handle(connection, message)


@db_sync_to_async
def _handle_batch(connection: protocol.Connection, values: list[Any], session: McpSession) -> list[dict[str, Any]]:
    replies = protocol.handle_batch(connection, values)
    sessions.save(session, connection)
    return replies


class StreamableHttpConsumer(McpHttpConsumer):
    """`/mcp`: POST carries client messages, GET opens the session's stream, DELETE ends it."""

    methods = ("POST", "GET", "DELETE")
    # The JSON-RPC id of the subscriptions/listen request this consumer streams for, if any.
    listen_id: Any = None
    last_sent = 0  # highest standalone-stream seq sent on this GET stream (dedupes replay vs live)
    # Set when the request named a session we do not have: its errors go out as 404.
    not_found = False
    # The session's channel-layer group, once this consumer holds one of its streams.
    joined: str | None = None

    async def respond_checking_key(self, body: bytes) -> bool:
        """A stateless 2026-07-28 request that passes every check made before its work is
        answered with one database call for the key check and the work; anything else (and any
        error before the work, which must not be told to a caller without a valid key) goes the
        usual way."""
        if self.scope["method"] != "POST" or "access" in self.scope:
            return False
        call = self.stateless_call(body)
        if call is None:
            return False
        message, namespace, categories = call
        outcome, reply = await _check_key_and_handle(
            self.scope.get(API_KEY), self.origin, message, namespace, categories, self.language
        )
        settle(self.scope, outcome)
        if reply is None:
            await self.refuse_key()
        else:
            await self.answer_modern(reply)
        return True

    def stateless_call(self, body: bytes) -> tuple[Message, str | None, tuple[str, ...] | None] | None:
        """The message, namespace and tool categories of a POST holding one 2026-07-28 request
        that passes the checks `post` and `post_modern` make before the work, or None."""
        if self.headers.get(METHOD_HEADER) is None:
            return None  # not a 2026-07-28 request (its headers would not match): no parse twice
        if not (self.accepts("application/json") or self.accepts("text/event-stream")):
            return None
        try:
            value = parse(body)
            if isinstance(value, list) or not _is_modern(value):
                return None
            message = classify(value)
            if message.kind != "request" or message.method == "subscriptions/listen":
                return None
            self.check_modern_headers(message)
            namespace, categories = self.connection_settings()
        except ProtocolError:
            return None
        return message, namespace, categories

    async def respond(self, body: bytes) -> None:
        try:
            if self.scope["method"] == "POST":
                await self.post(body)
            elif self.scope["method"] == "GET":
                await self.get()
            else:
                await self.delete()
        except ProtocolError as problem:
            await self.fail(HTTP_STATUS.get(problem.code, 400), problem.code, problem.message)

    # --- sessions and headers -----------------------------------------------------------------------

    async def require_session(self) -> McpSession:
        """The request's session: 400 without the header, 404 when unknown, ended or another key's."""
        session_id = self.headers.get(SESSION_HEADER)
        if not session_id:
            raise ProtocolError(INVALID_REQUEST, f"Bad Request: the {SESSION_HEADER} header is required")
        session = await db_sync_to_async(sessions.load)(session_id, self.access)
        if session is None or session.transport != McpSession.Transport.HTTP:
            self.not_found = True
            raise ProtocolError(INVALID_REQUEST, "Session not found: initialize a new session")
        self.session = session
        return session

    def check_version_header(self) -> None:
        """Spec: an invalid or unsupported MCP-Protocol-Version is 400; none means 2025-03-26."""
        version = self.headers.get(VERSION_HEADER)
        if version is not None and version not in protocol.HANDSHAKE_VERSIONS:
            raise ProtocolError(INVALID_REQUEST, f"Bad Request: unsupported {VERSION_HEADER}: {version}")

    async def fail(self, status: int, code: int, message: str, headers: Any = None) -> None:
        if self.not_found:
            status = 404
        await super().fail(status, code, message, headers)

    # --- POST ---------------------------------------------------------------------------------------

    async def post(self, body: bytes) -> None:
        if not (self.accepts("application/json") or self.accepts("text/event-stream")):
            await self.fail(406, INVALID_REQUEST, "Not Acceptable: accept application/json and text/event-stream")
            return
        value = parse(body)
        if isinstance(value, list):
            await self.post_batch(value)
            return
        message = classify(value)
        if _is_modern(value):
            await self.post_modern(message)
            return
        if message.kind == "request" and message.method == "initialize":
            await self.post_initialize(message)
            return
        session = await self.require_session()
        self.check_version_header()
        connection = sessions.connection_for(session, self.access)
        connection.language = self.language
        scope = events.RequestScope(session.session_id)
        token = events.current_request.set(scope)
        try:
            reply = await answer(connection, message, session)
        finally:
            events.current_request.reset(token)
        if reply.message is None:
            await self.send_response(202, b"", [])
        elif self.wants_stream() or scope.pending:
            # Notifications the request caused go out before its answer, on its own stream.
            await self.reply_as_stream(reply.message, notifications=scope.pending)
        else:
            await self.send_json(200, reply.message)

    def wants_stream(self) -> bool:
        # The client asks for an SSE answer by accepting only text/event-stream.
        accept = self.headers.get("Accept", "").lower()
        return "text/event-stream" in accept and "application/json" not in accept

    async def post_initialize(self, message: Message) -> None:
        namespace, categories = self.connection_settings()
        connection = protocol.Connection(
            access=self.access,
            namespace=sessions.resolved_namespace(self.access, namespace) or None,
            categories=categories,
            language=self.language,
        )
        reply = await answer(connection, message)
        assert reply.message is not None
        if "error" in reply.message:
            await self.send_json(200, reply.message)
            return
        session = await db_sync_to_async(sessions.open_session)(
            access=self.access, connection=connection, transport=McpSession.Transport.HTTP
        )
        self.session = session
        headers: list[tuple[bytes, bytes | str]] = [(SESSION_HEADER.encode(), session.session_id)]
        if self.wants_stream():
            await self.reply_as_stream(reply.message, headers)
        else:
            await self.send_json(200, reply.message, headers)

    async def post_batch(self, values: list[Any]) -> None:
        """JSON-RPC batches exist only in 2025-03-26; other sessions get 400."""
        session = await self.require_session()
        self.check_version_header()
        connection = sessions.connection_for(session, self.access)
        connection.language = self.language
        replies = await _handle_batch(connection, values, session)
        if replies:
            await self.send_json(200, replies)
        else:
            await self.send_response(202, b"", [])

    async def post_modern(self, message: Message) -> None:
        """A 2026-07-28 request: no session; headers must agree with the body."""
        if message.kind == "notification":
            await self.send_response(202, b"", [])
            return
        if message.kind == "request":
            self.check_modern_headers(message)
        namespace, categories = self.connection_settings()
        connection = protocol.Connection(
            access=self.access, namespace=namespace, categories=categories, language=self.language
        )
        if message.kind == "request" and message.method == "subscriptions/listen":
            await self.listen(connection, message)
            return
        await self.answer_modern(await answer(connection, message))

    def check_modern_headers(self, message: Message) -> None:
        """A 2026-07-28 request's routing headers must agree with its body."""
        meta = message.params["_meta"]
        if self.headers.get(VERSION_HEADER) != meta.get(protocol.PROTOCOL_VERSION_META):
            raise ProtocolError(HEADER_MISMATCH, f"{VERSION_HEADER} header does not match params._meta")
        if self.headers.get(METHOD_HEADER) != message.method:
            raise ProtocolError(HEADER_MISMATCH, f"{METHOD_HEADER} header does not match the request's method")
        name_param = NAME_PARAMS.get(message.method)
        if name_param is not None:
            value = message.params.get(name_param)
            if value is not None and _header_value(self.headers.get(NAME_HEADER)) != value:
                raise ProtocolError(HEADER_MISMATCH, f"{NAME_HEADER} header does not match params.{name_param}")

    async def answer_modern(self, reply: protocol.Reply) -> None:
        """A 2026-07-28 reply: JSON-RPC errors with the HTTP status the spec gives them."""
        if reply.message is None:
            await self.send_response(202, b"", [])
            return
        error = reply.message.get("error")
        status = 200 if error is None else MODERN_HTTP_STATUS.get(error["code"], 200)
        if self.wants_stream() and status == 200:
            await self.reply_as_stream(reply.message)
        else:
            await self.send_json(status, reply.message)

    async def listen(self, connection: protocol.Connection, message: Message) -> None:
        """2026-07-28 `subscriptions/listen`: the response is a stream of the notifications asked
        for, first the acknowledgement, each tagged with the request's id. It is served as a
        session of its own (never shown to the client), so writes anywhere find it as they find
        subscribed sessions; it ends when the client disconnects. No replay, as the spec says."""
        connection.namespace = sessions.resolved_namespace(self.access, connection.namespace) or None
        try:
            honoured = await db_sync_to_async(protocol.listen_filter)(connection, message.params)
        except ProtocolError as problem:
            await self.send_json(400, {"jsonrpc": "2.0", "id": message.id, "error": problem.error()})
            return
        connection.protocol_version, connection.initialized = protocol.MODERN_VERSIONS[-1], True
        self.session = await db_sync_to_async(sessions.open_session)(
            access=self.access, connection=connection, transport=McpSession.Transport.HTTP
        )
        self.listen_id = message.id
        self.joined = events.group(self.session.session_id)
        await self.channel_layer.group_add(self.joined, self.channel_name)
        await self.start_stream()
        await self.still_open()
        acknowledged = notification("notifications/subscriptions/acknowledged", {"notifications": honoured})
        await self.send_chunk(
            sse_event(data=dumps(protocol.tag_subscription(acknowledged, message.id)), event="message")
        )
        self.keep_alive(stream_keepalive_seconds())

    async def reply_as_stream(
        self, message: dict[str, Any], headers: Any = None, notifications: list[dict[str, Any]] | None = None
    ) -> None:
        """Answer on an SSE stream of its own: priming event (id, empty data, retry), any
        notifications the request caused, the response, then close. Each event is logged, so a
        client that lost the connection gets the rest by GET with Last-Event-ID."""
        session_id = self.session.session_id if self.session is not None else None
        await self.start_stream(headers)
        if session_id is None:
            await self.send_chunk(sse_event(data=dumps(message), event="message"))
        else:
            stream = await db_sync_to_async(events.new_stream)(session_id)
            priming = await db_sync_to_async(events.record)(session_id, stream, None)
            await self.send_chunk(sse_event(data="", event_id=priming.id, retry=RETRY_MS))
            for outgoing in [*(notifications or []), message]:
                event = await db_sync_to_async(events.record)(session_id, stream, outgoing)
                await self.send_chunk(sse_event(data=dumps(outgoing), event="message", event_id=event.id))
        await self.end_stream()

    # --- GET: the session's standalone stream -------------------------------------------------------

    async def get(self) -> None:
        if self.headers.get(VERSION_HEADER) in protocol.MODERN_VERSIONS:
            # 2026-07-28 has no GET stream (subscriptions/listen replaces it).
            await self.fail(405, INVALID_REQUEST, "Method not allowed for protocol 2026-07-28")
            return
        if not self.accepts("text/event-stream"):
            await self.fail(406, INVALID_REQUEST, "Not Acceptable: a GET must accept text/event-stream")
            return
        session = await self.require_session()
        self.check_version_header()
        last_event_id = self.headers.get("Last-Event-ID")
        replay = None
        if last_event_id:
            replay = await db_sync_to_async(events.replay)(session.session_id, last_event_id)
            if replay is None:
                raise ProtocolError(INVALID_REQUEST, "Bad Request: Last-Event-ID is not an event of this session")
        group = events.group(session.session_id)
        if replay is not None and replay[0] != events.STANDALONE:
            # Resuming a POST's response stream: send what it missed, then close it.
            await self.start_stream()
            for event in replay[1]:
                await self.send_event(event)
            await self.end_stream()
            return
        # Join first, then replay: nothing published in between is lost (duplicates are skipped).
        await self.channel_layer.group_add(group, self.channel_name)
        self.joined = group
        # Mark the stream open as ours before the previous holder (in this process or another) is
        # told to go: it clears the mark only while the mark is its own, so it cannot erase ours.
        # (Marked after the takeover, the old stream's clean-up could land after our mark and
        # leave the session looking stream-less until our next keep-alive.)
        await self.still_open()
        # One standalone stream per session (spec: never broadcast a message to two streams).
        await self.channel_layer.group_send(group, {"type": "mcp.takeover", "channel": self.channel_name})
        await self.start_stream()
        if replay is not None:
            for event in replay[1]:
                await self.send_event(event)
        else:
            priming = await db_sync_to_async(events.record)(session.session_id, events.STANDALONE, None)
            await self.send_event(priming, retry=RETRY_MS)
        self.keep_alive(stream_keepalive_seconds())

    async def send_event(self, event: events.Event, retry: int | None = None) -> None:
        parsed = events.parse_event_id(event.id)
        # Dedupe replayed against live events by sequence number; the priming event (no
        # message) does not count, or a notification numbered before it but delivered live
        # just after it would be dropped.
        if parsed is not None and parsed[0] == events.STANDALONE and event.message is not None:
            if parsed[1] <= self.last_sent:
                return
            self.last_sent = parsed[1]
        data = "" if event.message is None else dumps(event.message)
        await self.send_chunk(sse_event(data=data, event="message" if data else None, event_id=event.id, retry=retry))

    async def mcp_message(self, message: dict[str, Any]) -> None:
        if self.listen_id is not None:
            tagged = protocol.tag_subscription(message["message"], self.listen_id)
            await self.send_chunk(sse_event(data=dumps(tagged), event="message"))
            return
        await self.send_event(events.Event(message["id"], message["message"]))

    async def mcp_takeover(self, message: dict[str, Any]) -> None:
        if message["channel"] != self.channel_name:
            await self.end_stream()

    async def mcp_ended(self, message: dict[str, Any]) -> None:
        await self.end_stream()

    async def still_open(self) -> None:
        await super().still_open()
        if self.joined is not None and self.session is not None:
            # Lives a little longer than the keep-alive interval that renews it.
            await db_sync_to_async(events.stream_opened)(
                self.session.session_id, self.channel_name, 3 * stream_keepalive_seconds()
            )

    async def closed(self) -> None:
        if self.joined is not None:
            await self.channel_layer.group_discard(self.joined, self.channel_name)
            if self.session is not None:
                await db_sync_to_async(events.stream_closed)(self.session.session_id, self.channel_name)
        if self.listen_id is not None and self.session is not None:
            await db_sync_to_async(sessions.end)(self.session)

    # --- DELETE ---------------------------------------------------------------------------------

    async def delete(self) -> None:
        session = await self.require_session()
        await db_sync_to_async(sessions.end)(session)
        await self.channel_layer.group_send(events.group(session.session_id), {"type": "mcp.ended"})
        await self.send_response(204, b"", [])


class LegacySseConsumer(McpHttpConsumer):
    """`GET /sse` (2024-11-05): opens a session and streams every server message to it. The
    first event, `endpoint`, says where to POST: `/messages?sessionId=<id>`."""

    methods = ("GET",)

    async def respond(self, body: bytes) -> None:
        try:
            namespace, categories = self.connection_settings()
        except ProtocolError as problem:
            await self.fail(400, problem.code, problem.message)
            return
        connection = protocol.Connection(
            access=self.access,
            namespace=sessions.resolved_namespace(self.access, namespace) or None,
            categories=categories,
        )
        session = await db_sync_to_async(sessions.open_session)(
            access=self.access, connection=connection, transport=McpSession.Transport.SSE
        )
        self.session = session
        await self.channel_layer.group_add(events.group(session.session_id), self.channel_name)
        await self.start_stream()
        prefix = self.scope.get("root_path", "")
        await self.send_chunk(sse_event(event="endpoint", data=f"{prefix}/messages?sessionId={session.session_id}"))
        self.keep_alive(stream_keepalive_seconds())

    async def mcp_message(self, message: dict[str, Any]) -> None:
        await self.send_chunk(sse_event(event="message", data=dumps(message["message"])))

    async def mcp_ended(self, message: dict[str, Any]) -> None:
        await self.end_stream()

    async def closed(self) -> None:
        if self.session is not None:
            await self.channel_layer.group_discard(events.group(self.session.session_id), self.channel_name)
            await db_sync_to_async(sessions.end)(self.session)


class LegacyMessagesConsumer(McpHttpConsumer):
    """`POST /messages?sessionId=` (or `session_id=`): accepts one message with 202; the reply
    goes out on the session's `/sse` stream."""

    methods = ("POST",)

    async def respond(self, body: bytes) -> None:
        session_id = self.query.get("sessionId") or self.query.get("session_id")
        if not session_id:
            await self.fail(400, INVALID_REQUEST, "Bad Request: sessionId is required")
            return
        session = await db_sync_to_async(sessions.load)(session_id, self.access)
        if session is None or session.transport != McpSession.Transport.SSE:
            await self.fail(404, INVALID_REQUEST, "Session not found: open a new stream at /sse")
            return
        try:
            message = classify(parse(body))
        except ProtocolError as problem:
            await self.fail(400, problem.code, problem.message)
            return
        connection = sessions.connection_for(session, self.access)
        connection.language = self.language
        reply = await answer(connection, message, session)
        if reply.message is not None:
            await self.channel_layer.group_send(
                events.group(session.session_id), {"type": events.MESSAGE_TYPE, "id": "", "message": reply.message}
            )
        await self.send_response(202, b"Accepted", [(b"Content-Type", b"text/plain; charset=utf-8")])
