"""/console/live: the dashboard's recent writes as Server-Sent Events (a Channels consumer, routed
in memoryhub/asgi.py in front of Django).

- Who: the browser's session cookie, looked up afresh at the start and at every check (so a
  sign-out, a password change or a deactivated account ends the stream within a keep-alive
  interval). No session: 403. The Host must be one Django serves (ALLOWED_HOSTS; Django checks it
  for its own views only) and an Origin, when the browser sends one, must be this server's.
- What: the rows of `recent_changes` (console/dashboard.py `present`: the same JSON as
  recent.json), read through the runner with the user's console access each time, so a grant
  taken away stops the rows at the next read. Each event's `id:` is its version id: EventSource
  reconnects with Last-Event-ID and the stream resumes after it, missing nothing (within the
  history scan bound of graph/overview.py).
- When: every committed write in this process announces itself (`operation_applied`), and the
  receiver below has every open stream woken through the channel layer (with Redis, streams in
  every server process) within WAKE_INTERVAL_SECONDS: a burst of writes, one wake-up. Writes the layer does not carry (another process on the in-memory layer,
  `manage.py` commands, Celery workers) are found by a poll every POLL_SECONDS. A wake-up carries
  no data: each stream reads what its user may see.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from importlib import import_module
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from asgiref.sync import async_to_sync
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.http import AsyncHttpConsumer
from channels.layers import get_channel_layer
from channels.sessions import CookieMiddleware
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.base_user import AbstractBaseUser
from django.dispatch import receiver
from django.http.request import split_domain_port, validate_host
from django.utils.crypto import constant_time_compare

from access import selectors
from access.signals import operation_applied
from console.dashboard import recent_for
from kernel.asgi_headers import request_headers
from kernel.asyncdb import db_sync_to_async

logger = logging.getLogger(__name__)

GROUP = "console.writes"
WAKE = "console.wake"
CHECK = "console.check"
# A poll for writes no wake-up announced, and a keep-alive comment with a session check.
POLL_SECONDS = 5.0
# At most one wake-up of the streams per this interval, per process (`_Waker`).
WAKE_INTERVAL_SECONDS = 0.2
KEEPALIVE_SECONDS = 15.0
# Rows read per round; a round that fills it is followed by another at once.
BATCH = 100
RETRY_MS = 3000


class _Waker:
    """This process's wake-ups of the open streams: the write path only sets an event, and one
    thread sends at most one wake-up to the channel layer every WAKE_INTERVAL_SECONDS, however
    many writes committed meanwhile (a group_send on the write path itself made a one-observation
    write several times slower: an event loop per call, and a round trip to Redis in a cluster)."""

    def __init__(self) -> None:
        self.pending = threading.Event()
        self.lock = threading.Lock()
        self.started = False

    def poke(self) -> None:
        self.pending.set()
        if not self.started:
            with self.lock:
                if not self.started:
                    threading.Thread(target=self.run, name="console-wake", daemon=True).start()
                    self.started = True

    def run(self) -> None:
        while True:
            self.pending.wait()
            self.pending.clear()
            layer = get_channel_layer()
            try:
                if layer is not None:
                    async_to_sync(layer.group_send)(GROUP, {"type": WAKE})
            except Exception:  # an unreachable Redis: the streams' own poll still finds the writes
                if _exiting():
                    # A write committed as the process stops (SIGTERM): its streams are closing,
                    # and async_to_sync can no longer start a thread.
                    return
                logger.warning("could not wake the console's live streams", exc_info=True)
            time.sleep(WAKE_INTERVAL_SECONDS)


def _exiting() -> bool:
    # The interpreter marks its main thread stopped before it shuts down thread pools.
    return not threading.main_thread().is_alive()


_waker = _Waker()


@receiver(operation_applied, dispatch_uid="console.live.wake")
def wake_streams(sender: Any, **kwargs: Any) -> None:
    """A write committed: wake every open dashboard stream, soon (they read what their user may see)."""
    _waker.poke()


def session_user(session_key: str | None) -> AbstractBaseUser | None:
    """The active user signed in with this session, as Django's `auth.get_user` decides it (the
    session exists and has not expired, its backend is configured, its auth hash matches the
    user's password); None otherwise."""
    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user_id, backend_path = store.get(SESSION_KEY), store.get(BACKEND_SESSION_KEY)
    if user_id is None or backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    found = load_backend(backend_path).get_user(user_id)
    if found is None or not isinstance(found, AbstractBaseUser):
        return None
    stored_hash = store.get(HASH_SESSION_KEY) or ""
    hashes = [found.get_session_auth_hash()]
    fallback = getattr(found, "get_session_auth_fallback_hash", None)
    if fallback is not None:
        hashes.extend(fallback())
    if not any(constant_time_compare(stored_hash, candidate) for candidate in hashes):
        return None
    return found


def _rows(session_key: str | None, after: int) -> list[dict[str, Any]] | None:
    """The user's rows after `after` (newest first), or None when the session no longer holds."""
    found = session_user(session_key)
    if found is None:
        return None
    return recent_for(selectors.user_access(found), after=after, limit=BATCH)


def host_allowed(host: str) -> bool:
    """`HttpRequest.get_host`'s rule (ALLOWED_HOSTS; with DEBUG and none listed, loopback)."""
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)


class LiveConsumer(AsyncHttpConsumer):
    """One dashboard's stream of recent writes (see the module docstring)."""

    session_key: str | None = None
    cursor = 0
    streaming = False
    ticker: asyncio.Task[None] | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch without its `aclose_old_connections()` before every handler, as the
        MCP consumers do (mcp_endpoint/http.py): the database thread keeps its SQLite connection
        (kernel/asyncdb.py), and a wake-up every few seconds per open dashboard would reopen it."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def http_request(self, message: dict[str, Any]) -> None:
        """As AsyncHttpConsumer's, except that a stream, once started, stays: the consumer goes on
        taking its wake-ups until the client disconnects or the session ends."""
        if "body" in message:
            self.body.append(message["body"])
        if message.get("more_body"):
            return
        try:
            await self.handle(b"".join(self.body))
        finally:
            if not self.streaming:
                await self.disconnect()
        if not self.streaming:
            raise StopConsumer()

    async def http_disconnect(self, message: dict[str, Any]) -> None:
        await self.disconnect()
        raise StopConsumer()

    async def handle(self, body: bytes) -> None:
        headers = request_headers(self.scope)
        host = headers.get("X-Forwarded-Host") if settings.USE_X_FORWARDED_HOST else None
        host = host or headers.get("Host", "")
        origin = headers.get("Origin")
        if self.scope.get("method") not in ("GET", "HEAD"):
            await self.refuse(405, b"GET only")
            return
        if not host_allowed(host) or (origin is not None and urlsplit(origin).netloc.lower() != host.lower()):
            await self.refuse(403, b"Forbidden")
            return
        self.session_key = self.scope.get("cookies", {}).get(settings.SESSION_COOKIE_NAME)
        if await db_sync_to_async(session_user)(self.session_key) is None:
            await self.refuse(403, b"Sign in to follow the console's recent writes")
            return
        query = dict(parse_qsl(self.scope.get("query_string", b"").decode("latin-1")))
        resume = headers.get("Last-Event-ID") or query.get("after") or "0"
        self.cursor = int(resume) if resume.isascii() and resume.isdigit() and len(resume) < 19 else 0
        await self.send_headers(
            status=200,
            headers=[
                (b"Content-Type", b"text/event-stream; charset=utf-8"),
                (b"Cache-Control", b"no-cache, no-store"),
                (b"X-Accel-Buffering", b"no"),  # nginx: pass events through as they come
                (b"X-Content-Type-Options", b"nosniff"),
            ],
        )
        await self.send_body(f"retry: {RETRY_MS}\n: live\n\n".encode(), more_body=True)
        self.streaming = True
        # Joined before the first read: a write committed in between wakes us, nothing is missed.
        assert self.channel_layer is not None
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.console_wake({})
        self.ticker = asyncio.ensure_future(self.tick())

    async def refuse(self, status: int, message: bytes) -> None:
        await self.send_response(status, message, headers=[(b"Content-Type", b"text/plain; charset=utf-8")])

    async def tick(self) -> None:
        """Poll for writes no wake-up announced; now and then a keep-alive and a session check.
        Through the consumer's own channel, so reads and sends happen in its handlers, in order."""
        assert self.channel_layer is not None
        waited = 0.0
        while True:
            await asyncio.sleep(POLL_SECONDS)
            waited += POLL_SECONDS
            kind = CHECK if waited >= KEEPALIVE_SECONDS else WAKE
            if kind == CHECK:
                waited = 0.0
            await self.channel_layer.send(self.channel_name, {"type": kind})

    async def console_wake(self, message: dict[str, Any]) -> None:
        """Send every row after the cursor (oldest first); end the stream if the session ended."""
        while True:
            rows = await db_sync_to_async(_rows)(self.session_key, self.cursor)
            if rows is None:
                await self.end()
            for row in reversed(rows or []):
                data = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
                await self.send_body(f"id: {row['versionId']}\ndata: {data}\n\n".encode(), more_body=True)
                self.cursor = max(self.cursor, row["versionId"])
            if not rows or len(rows) < BATCH:
                return

    async def console_check(self, message: dict[str, Any]) -> None:
        await self.send_body(b": keep-alive\n\n", more_body=True)
        await self.console_wake(message)

    async def end(self) -> None:
        await self.send_body(b"", more_body=False)
        self.streaming = False
        await self.disconnect()
        raise StopConsumer()

    async def disconnect(self) -> None:
        if self.ticker is not None:
            self.ticker.cancel()
            self.ticker = None
        if self.channel_layer is not None:
            await self.channel_layer.group_discard(GROUP, self.channel_name)


def application() -> Any:
    """The ASGI app for /console/live: cookies parsed (the session is read by the consumer itself,
    afresh each time)."""
    return CookieMiddleware(LiveConsumer.as_asgi())
