"""Newline-delimited JSON-RPC over a byte stream: the shared core of the stdio and TCP transports.

One `LineConnection(...).run()` is one MCP connection. It opens a session row (so the connection can subscribe
to the knowledge graph and be found by `notifications.py`), reads one JSON-RPC message per line,
answers each through `protocol.handle` in the order the lines were read, and forwards the
server-initiated messages published to the session's channel-layer group (`events.group`) as
lines of their own. EOF (or a failed write) ends the session.

Framing rules (the MCP stdio transport's, which the TCP transport shares): every line written
is one complete JSON-RPC message without embedded newlines (`jsonrpc.dumps` escapes them);
blank lines are ignored and a trailing CR is tolerated. A line longer than
`MEMORYHUB_LIMITS["MAX_REQUEST_BYTES"]` is answered with an error and skipped without ever
being held in memory whole.

A connection that authenticated with an API key passes the raw key as `raw_key`: each line then
re-authenticates it, exactly as the HTTP transports check the key on every request, so a revoked
or expired key stops working on open connections too, grant changes apply at once, and the
per-key rate limit counts lines. A quiet connection does not outlive its key either: it joins the
key's group (a revocation in any process sharing the channel layer is announced there), ends at
the key's expiry, and re-checks the key every MEMORYHUB_MCP_KEEPALIVE_SECONDS; when the key is
gone it gets one error line (id null) and is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
from typing import Any, Final, Protocol

from channels.layers import get_channel_layer
from django.conf import settings
from django.utils import timezone

from access import selectors
from access.authentication import authenticate
from access.exceptions import NotAuthenticated, RateLimited
from access.permissions import Access
from kernel.asyncdb import db_sync_to_async
from mcp_endpoint import events, protocol, sessions
from mcp_endpoint.jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, ProtocolError, classify, dumps, encode, error, parse
from mcp_endpoint.models import McpSession

logger = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024
# The in-memory channel layer forgets a group member after a day (its `group_expiry`); a
# connection that lives longer re-joins well before that.
GROUP_REFRESH_SECONDS = 3600.0
KEY_GONE = "A valid API key is required: the key of this connection was revoked or has expired"


class ByteStream(Protocol):
    """Where a connection's bytes come from and go to."""

    async def read(self) -> bytes:
        """The next chunk of input; b"" at end of input."""
        ...

    async def write(self, data: bytes) -> None:
        """Write all of `data`; raises OSError when the peer is gone."""
        ...


class SocketStream:
    """A `ByteStream` over asyncio streams (TCP)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self) -> bytes:
        return await self.reader.read(CHUNK_SIZE)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


class PipeStream:
    """A `ByteStream` over two file descriptors (stdio), each served by a daemon thread.

    Blocking reads and writes in threads work on whatever the process was given (pipes, a
    terminal, a regular file) and, unlike asyncio's pipe transports, never switch the
    descriptors to non-blocking mode: a terminal or pipe shared with stderr or a parent shell is
    left as it was. The threads are daemons, so a read still blocked on stdin never keeps the
    process from exiting. The reader keeps at most a few chunks ahead of the connection."""

    AHEAD = 4  # chunks the reader thread may read before the connection takes them

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.loop = asyncio.get_running_loop()
        self.chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self.room = threading.Semaphore(self.AHEAD)
        self.outbox: queue.SimpleQueue[tuple[bytes, asyncio.Future[None]]] = queue.SimpleQueue()
        threading.Thread(target=self._read_loop, name="mcp-stdin", daemon=True).start()
        threading.Thread(target=self._write_loop, name="mcp-stdout", daemon=True).start()

    def _read_loop(self) -> None:
        while True:
            self.room.acquire()
            try:
                chunk = os.read(self.read_fd, CHUNK_SIZE)
            except OSError as problem:
                logger.warning("reading the MCP input failed: %s", problem)
                chunk = b""
            try:
                self.loop.call_soon_threadsafe(self.chunks.put_nowait, chunk)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                return
            if not chunk:
                return

    def _write_loop(self) -> None:
        while True:
            data, done = self.outbox.get()
            problem: OSError | None = None
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.write_fd, view) :]
            except OSError as failure:
                problem = failure
            try:
                self.loop.call_soon_threadsafe(_settle, done, problem)
            except RuntimeError:  # the loop is closed
                return

    async def read(self) -> bytes:
        chunk = await self.chunks.get()
        self.room.release()
        if not chunk:
            self.chunks.put_nowait(b"")  # end of input stays the end for any later read
        return chunk

    async def write(self, data: bytes) -> None:
        done: asyncio.Future[None] = self.loop.create_future()
        self.outbox.put((data, done))
        await done


def _settle(future: asyncio.Future[None], problem: OSError | None) -> None:
    if future.done():
        return
    if problem is None:
        future.set_result(None)
    else:
        future.set_exception(problem)


class _Oversize:
    """A line over the request limit (already skipped)."""


OVERSIZE: Final = _Oversize()


class LineReader:
    """Splits a `ByteStream` into lines of at most `limit` bytes (newline excluded).

    A longer line is reported once as OVERSIZE as soon as it is known to be too long, and its
    bytes are dropped up to the next newline; at most `limit` + one chunk is ever buffered."""

    def __init__(self, stream: ByteStream, limit: int) -> None:
        self.stream = stream
        self.limit = limit
        self.buffer = bytearray()
        self.scanned = 0  # bytes of `buffer` known to hold no newline
        self.skipping = False
        self.eof = False

    async def next(self) -> bytes | _Oversize | None:
        """The next line (without its newline), OVERSIZE, or None at end of input."""
        while True:
            index = self.buffer.find(b"\n", self.scanned)
            if index >= 0:
                line = bytes(self.buffer[:index])
                del self.buffer[: index + 1]
                self.scanned = 0
                if self.skipping:
                    self.skipping = False  # the rest of an oversized line: already reported
                    continue
                return OVERSIZE if len(line) > self.limit else line
            if self.skipping:
                self.buffer.clear()
            elif len(self.buffer) > self.limit:
                self.buffer.clear()
                self.scanned = 0
                self.skipping = True
                return OVERSIZE
            self.scanned = len(self.buffer)
            if self.eof:
                # A last line without its newline still counts (unless it was being skipped).
                line = b"" if self.skipping else bytes(self.buffer)
                self.buffer.clear()
                self.scanned = 0
                self.skipping = False
                return line or None
            try:
                chunk = await self.stream.read()
            except (ConnectionError, OSError) as problem:
                logger.debug("MCP connection read failed: %s", problem)
                chunk = b""
            if chunk:
                self.buffer += chunk
            else:
                self.eof = True


class LineConnection:
    """One MCP connection over a line stream; `run()` serves it until end of input and the
    session ends with it. `namespace` None means the key's default; `raw_key` (the key the
    connection authenticated with) makes every line re-check it."""

    def __init__(
        self,
        stream: ByteStream,
        *,
        access: Access,
        namespace: str | None,
        categories: tuple[str, ...] | None,
        transport: str,
        raw_key: str | None = None,
    ) -> None:
        self.stream = stream
        self.transport = transport
        self.raw_key = raw_key
        self.connection = protocol.Connection(
            access=access,
            namespace=sessions.resolved_namespace(access, namespace) or None,
            categories=categories,
        )
        self.session: McpSession | None = None
        self.write_lock = asyncio.Lock()
        self.closing = False
        # Set when the key was found gone while the connection was quiet: the reader is stopped.
        self.key_gone = False
        self.reader: asyncio.Future[None] | None = None
        self.expiry_timer: asyncio.TimerHandle | None = None

    # --- output ---------------------------------------------------------------------------------

    async def send(self, message: Any) -> None:
        """Write one message as one line (raises OSError when the peer is gone)."""
        line = encode(dumps(message) + "\n")
        async with self.write_lock:
            await self.stream.write(line)

    # --- the connection -------------------------------------------------------------------------

    async def run(self) -> None:
        self.session = await db_sync_to_async(sessions.open_session)(
            access=self.connection.access, connection=self.connection, transport=self.transport
        )
        group = events.group(self.session.session_id)
        key_id = self.connection.access.key_id if self.raw_key is not None else None
        key_group = events.key_group(key_id) if key_id is not None else None
        layer = get_channel_layer()
        channel: str | None = None
        helpers: list[asyncio.Task[None]] = []
        try:
            if layer is not None:
                channel = await layer.new_channel()
                await layer.group_add(group, channel)
                if key_group is not None:
                    await layer.group_add(key_group, channel)
                    await layer.send(channel, {"type": events.KEY_CHANGED_TYPE})
                helpers.append(asyncio.create_task(self.forward(layer, channel)))
                helpers.append(asyncio.create_task(self.refresh(layer, group, channel)))
                if key_group is not None:
                    helpers.append(asyncio.create_task(self.recheck_key(layer, channel)))
            # Read only once the groups are joined: nothing a line causes is published unheard.
            self.reader = asyncio.ensure_future(self.read_loop())
            await self.reader
        except asyncio.CancelledError:
            if not self.key_gone:
                raise
        finally:
            if self.reader is not None:
                self.reader.cancel()
            if self.expiry_timer is not None:
                self.expiry_timer.cancel()
            for task in helpers:
                task.cancel()
            for task in helpers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            if layer is not None and channel is not None:
                with contextlib.suppress(Exception):
                    await layer.group_discard(group, channel)
                    if key_group is not None:
                        await layer.group_discard(key_group, channel)
            await db_sync_to_async(sessions.end)(self.session)

    async def read_loop(self) -> None:
        limit = int(settings.MEMORYHUB_LIMITS["MAX_REQUEST_BYTES"])
        lines = LineReader(self.stream, limit)
        while not self.closing:
            line = await lines.next()
            if line is None:
                return
            try:
                if isinstance(line, _Oversize):
                    problem = ProtocolError(INVALID_REQUEST, f"Request too large: the limit is {limit} bytes a message")
                    await self.send(error(None, problem))
                    continue
                if not line.strip():
                    continue
                reply = await self.answer_line(line)
                if reply is not None:
                    await self.send(reply)
            except OSError as problem:
                logger.debug("MCP connection write failed: %s", problem)
                return

    async def answer_line(self, line: bytes) -> Any:
        try:
            value = parse(line)
        except ProtocolError as problem:
            return error(None, problem)
        try:
            return await db_sync_to_async(self.answer)(value)
        except Exception:
            logger.exception("MCP %s message failed", self.transport)
            return error(None, ProtocolError(INTERNAL_ERROR, "Internal error"))

    async def forward(self, layer: Any, channel: str) -> None:
        """Server-initiated messages of the session (resource updates) → lines."""
        while True:
            event = await layer.receive(channel)
            if event.get("type") == events.KEY_CHANGED_TYPE:
                if not await self.key_still_works(layer, channel):
                    return
                continue
            if event.get("type") != events.MESSAGE_TYPE:
                continue
            try:
                await self.send(event["message"])
            except OSError:
                return

    async def key_still_works(self, layer: Any, channel: str) -> bool:
        """Look at the connection's key: when it is gone, say so in one error line and stop the
        reader (the connection then ends); else (re)arm the timer for its expiry."""
        key_id = self.connection.access.key_id
        assert key_id is not None
        usable, expires_at = await db_sync_to_async(selectors.key_state)(key_id)
        if self.expiry_timer is not None:
            self.expiry_timer.cancel()
            self.expiry_timer = None
        if not usable:
            self.key_gone = True
            with contextlib.suppress(OSError):
                await self.send(error(None, ProtocolError(INVALID_REQUEST, KEY_GONE)))
            if self.reader is not None:
                self.reader.cancel()
            return False
        if expires_at is not None:
            delay = max(0.0, (expires_at - timezone.now()).total_seconds())
            self.expiry_timer = asyncio.get_running_loop().call_later(
                delay, lambda: asyncio.ensure_future(layer.send(channel, {"type": events.KEY_CHANGED_TYPE}))
            )
        return True

    async def recheck_key(self, layer: Any, channel: str) -> None:
        """A revocation no message brought here (made by a process on another channel layer, such
        as manage.py without Redis) is found within a keep-alive interval."""
        while True:
            await asyncio.sleep(float(settings.MEMORYHUB_MCP_KEEPALIVE_SECONDS))
            await layer.send(channel, {"type": events.KEY_CHANGED_TYPE})

    async def refresh(self, layer: Any, group: str, channel: str) -> None:
        """Re-join the group before the layer forgets it, and show the session as alive while
        the client is quiet (a subscriber may only listen for hours)."""
        idle = settings.MEMORYHUB_MCP_SESSION_IDLE_SECONDS
        while True:
            await asyncio.sleep(min(GROUP_REFRESH_SECONDS, idle / 2))
            await layer.group_add(group, channel)
            await db_sync_to_async(self.touch)()

    # --- one line, synchronously (runs in the database thread) -----------------------------------

    def answer(self, value: Any) -> Any:
        """The reply to one decoded line: a message, a batch of them, or None."""
        request_id = value.get("id") if isinstance(value, dict) else None
        if not isinstance(request_id, (str, int)) or isinstance(request_id, bool):
            request_id = None
        if self.raw_key is not None:
            try:
                self.connection.access = authenticate(self.raw_key)
            except RateLimited as limited:
                return error(
                    request_id, ProtocolError(INVALID_REQUEST, limited.message, {"retryAfter": limited.retry_after})
                )
            except NotAuthenticated:
                self.closing = True
                return error(request_id, ProtocolError(INVALID_REQUEST, KEY_GONE))
        self.touch()
        if isinstance(value, list):
            return self.answer_batch(value)
        try:
            message = classify(value)
        except ProtocolError as problem:
            return error(None, problem)
        reply = protocol.handle(self.connection, message)
        self.save()
        return reply.message

    def answer_batch(self, values: list[Any]) -> Any:
        try:
            replies = protocol.handle_batch(self.connection, values)
        except ProtocolError as problem:
            return error(None, problem)
        self.save()
        return replies or None

    def save(self) -> None:
        assert self.session is not None
        sessions.save(self.session, self.connection)

    def touch(self) -> None:
        assert self.session is not None
        sessions.touch(self.session)
