"""Server-to-client messages of a session: numbered, logged for resumption, delivered live.

Every SSE event of a session gets an id `<stream>.<seq>`: the stream it belongs to (`0` is the
session's standalone GET stream, `p<n>` a POST's response stream) and its position in it, so
ids are unique within the session and say where they came from (both spec rules). Events are
kept in the cache for `RETENTION` seconds, one key each (no read-modify-write, so concurrent
publishers in several processes cannot lose one), and a client that reconnects with
`Last-Event-ID` gets what it missed on that stream.

Live delivery goes through the channel layer group of the session, which the consumer holding
the session's standalone stream (or the stdio / TCP connection) has joined. With the Redis
channel layer that works across server processes.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache

STANDALONE = "0"
RETENTION = 3600
# A stream's counter outlives the events it numbered: every use renews it for this long, and an
# open standalone stream renews its counter with each keep-alive. Were a counter to expire while
# its stream is still in use (it used to, an hour after it was created, however busy the stream),
# numbering would restart at 1: ids would repeat and overwrite kept events, a client resuming
# with Last-Event-ID would miss what came after, and an open GET stream, which skips events
# numbered at or below the last one it sent, would silently drop every new notification.
COUNTER_RETENTION = 2 * RETENTION
# A reconnecting client is sent at most this many missed events of one stream.
REPLAY_LIMIT = 1000
# Channel-layer message type of a server-to-client MCP message ("mcp.message" → mcp_message).
MESSAGE_TYPE = "mcp.message"


# Channel-layer message type telling a stream to look at its key again (revoked, expiry changed,
# or its own expiry timer fired): "mcp.key_changed" → McpHttpConsumer.mcp_key_changed.
KEY_CHANGED_TYPE = "mcp.key_changed"


def key_group(key_id: int) -> str:
    """The group every long-lived stream opened with the key joins, on every process."""
    return f"mcp.key.{key_id}"


def group(session_id: str) -> str:
    # Session ids are urlsafe base64: valid channel-layer group characters.
    return f"mcp.session.{session_id}"


def _seq_key(session_id: str, stream: str) -> str:
    return f"mcp:seq:{session_id}:{stream}"


def _event_key(session_id: str, stream: str, seq: int) -> str:
    return f"mcp:ev:{session_id}:{stream}:{seq}"


def new_stream(session_id: str) -> str:
    """A fresh id for a POST response stream of this session."""
    return f"p{_next(session_id, 'streams')}"


def _next(session_id: str, counter: str) -> int:
    key = _seq_key(session_id, counter)
    cache.add(key, 0, timeout=COUNTER_RETENTION)
    value = int(cache.incr(key))
    # INCR keeps the key's expiry: renew it, or it would run out an hour after creation.
    cache.touch(key, COUNTER_RETENTION)
    return value


@dataclass(frozen=True)
class Event:
    id: str
    message: dict[str, Any] | None  # None: the priming event (empty data)


def record(session_id: str, stream: str, message: dict[str, Any] | None) -> Event:
    """Number and keep one event of `stream` (message None: a priming event)."""
    seq = _next(session_id, stream)
    cache.set(_event_key(session_id, stream, seq), message, timeout=RETENTION)
    return Event(f"{stream}.{seq}", message)


def parse_event_id(event_id: str) -> tuple[str, int] | None:
    stream, _, seq = event_id.rpartition(".")
    # isdigit() is also true of "²" and other scripts' digits, which int() refuses; our sequence
    # numbers are ASCII and far shorter than 19 digits (int() refuses past 4,300).
    if not stream or not (seq.isascii() and seq.isdigit()) or len(seq) > 18:
        return None
    return stream, int(seq)


def replay(session_id: str, last_event_id: str) -> tuple[str, list[Event]] | None:
    """The stream `last_event_id` belongs to and its events after it, or None when the id is
    not one of ours."""
    parsed = parse_event_id(last_event_id)
    if parsed is None:
        return None
    stream, after = parsed
    last = cache.get(_seq_key(session_id, stream))
    if last is None:
        return stream, []
    first = max(after + 1, int(last) - REPLAY_LIMIT + 1)
    keys = {seq: _event_key(session_id, stream, seq) for seq in range(first, int(last) + 1)}
    found = cache.get_many(keys.values())
    events = [Event(f"{stream}.{seq}", found[key]) for seq, key in keys.items() if key in found]
    return stream, events


@dataclass
class RequestScope:
    """A POST being answered for a session: notifications it causes while the session has no
    stream open are sent with its answer (which then becomes an SSE stream)."""

    session_id: str
    pending: list[dict[str, Any]] = field(default_factory=list)


# Set by the Streamable HTTP consumer around one request; context variables follow the call
# into the worker thread that runs the protocol, where `publish` is called.
current_request: ContextVar[RequestScope | None] = ContextVar("current_request", default=None)


def _stream_key(session_id: str) -> str:
    return f"mcp:open:{session_id}"


def stream_opened(session_id: str, channel: str, lifetime: float) -> None:
    """The standalone stream of the session is open (in any process), held by the consumer on
    `channel`; renewed by its keep-alives."""
    cache.set(_stream_key(session_id), channel, timeout=lifetime)
    # The stream dedupes by sequence number: its counter must not expire while it is open.
    cache.touch(_seq_key(session_id, STANDALONE), COUNTER_RETENTION)


def stream_closed(session_id: str, channel: str) -> None:
    # Only the holder clears it: a stream that was taken over closes after its successor opened.
    if cache.get(_stream_key(session_id)) == channel:
        cache.delete(_stream_key(session_id))


def publish(session_id: str, message: dict[str, Any]) -> None:
    """Send a server-initiated message to the session (synchronous code): on its standalone
    stream when one is open, else with the answer of the session's request that caused it, else
    into the stream's log, where a GET with Last-Event-ID finds it."""
    scope = current_request.get()
    if scope is not None and scope.session_id == session_id and not cache.get(_stream_key(session_id)):
        scope.pending.append(message)
        return
    event = record(session_id, STANDALONE, message)
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group(session_id), {"type": MESSAGE_TYPE, "id": event.id, "message": message})


# Set by the marketplace POST consumer around one request: the notifications it causes (its
# caller's tool list changed) go out with its answer.
current_marketplace_post: ContextVar[list[dict[str, Any]] | None] = ContextVar("current_marketplace_post", default=None)
