"""The one way a request proves who it is, shared by every HTTP surface: an API key, or an
OAuth access token (access/oauth.py) sent as `Authorization: Bearer`.

DRF (`access.drf`), django-ninja (`access.ninja`), Channels
(`access.asgi`) and plain views (`access.decorators`) only adapt their
request object to `authenticate`; the key lookup, the constant-time check, the rate limit and
the `last_used_at` update happen here and nowhere else.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from access import oauth, ratelimit
from access import secrets as keys
from access.exceptions import NotAuthenticated, RateLimited
from access.models import ApiKey
from access.permissions import Access, Grant, Permission
from kernel.sql import db, is_busy

LAST_USED_RESOLUTION_SECONDS = 60


class BearerToken(str):
    """A credential sent as `Authorization: Bearer` that is not an API key: `authenticate` tries it
    as an OAuth access token. (Under any other header a non-key stays a bad key, refused as one.)"""


def key_from_request(
    headers: Mapping[str, str], query: Mapping[str, str] | None = None, *, allow_query: bool = False
) -> str | None:
    """The raw key a request carries, or None; a BearerToken when it is an `Authorization:
    Bearer` credential that does not look like an API key (an OAuth access token, maybe).

    `headers` must be case-insensitive (Django's `request.headers` is). `?key=` is honoured only
    when the caller passes `allow_query` (SSE GETs, where browsers' EventSource cannot set
    headers); elsewhere a key in the URL would end up in proxy and access logs.
    """
    for header in ("X-API-Key", "x-momoai-key"):
        value = headers.get(header)
        if value:
            return value.strip()
    authorization = headers.get("Authorization", "")
    scheme, _, credentials = authorization.strip().partition(" ")
    # "Token" is what memos-api-mcp (MemOS' MCP client) sends.
    if scheme.lower() in ("apikey", "bearer", "token") and credentials.strip():
        if scheme.lower() == "bearer" and not is_api_key(credentials.strip()):
            return BearerToken(credentials.strip())
        return credentials.strip()
    if allow_query and query is not None:
        value = query.get("key")
        if value:
            return value.strip()
    return None


def query_key_allowed(method: str, accept: str) -> bool:
    """`?key=` is for Server-Sent Events GETs only: EventSource cannot send headers."""
    return method.upper() == "GET" and "text/event-stream" in accept.lower()


def verify_key(raw: str | None) -> Access:
    """The grants of the active key (not revoked, not expired, owner still active) whose secret
    is `raw`. Raises NotAuthenticated, with one message for every kind of failure.

    One hand-written query (key, owner and grants together) instead of the ORM's two: this runs
    on every API request, and building the ORM queries was most of its cost (bench/RESULTS.md,
    "Design measurements")."""
    prefix = keys.prefix_of(raw) if raw else None
    rows = _key_rows(prefix) if prefix else []
    if not keys.verify(raw or "", rows[0][3] if rows else None) or not rows:
        raise NotAuthenticated()
    key_id, owner_id, key_prefix, _, default_namespace = rows[0][:5]
    return Access(
        grants=tuple(Grant(pattern, Permission.parse(permission)) for *_, pattern, permission in rows if pattern),
        user_id=owner_id,
        key_id=key_id,
        key_prefix=key_prefix,
        default_namespace=default_namespace or None,
    )


def _key_rows(prefix: str) -> list[tuple[Any, ...]]:
    """One row per grant of the usable key with `prefix` (one row with NULL grant if it has none).

    On the raw connection under Django's (kernel.sql `db`), as graph/sql.py does: Django's cursor
    wrappers were a third of this function's time, and it runs on the thread every MCP message
    needs."""
    user_table = get_user_model()._meta.db_table
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    return (
        db()
        .execute(
            f"""
        SELECT k.id, k.owner_id, k.prefix, k.secret_hash, k.default_namespace, g.pattern, g.permission
        FROM access_apikey k
        JOIN {user_table} u ON u.id = k.owner_id
        LEFT JOIN access_namespacegrant g ON g.key_id = k.id
        WHERE k.prefix = ? AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?)
          AND u.is_active
        """,
            (prefix, now),
        )
        .fetchall()
    )


def is_api_key(raw: str) -> bool:
    """API keys look like `mh_...`; any other credential is tried as an OAuth access token."""
    return raw.startswith(keys.KEY_PREFIX)


def authenticate(raw: str | None, *, origin: str | Callable[[], str | None] | None = None) -> Access:
    """Verify the credential, charge its rate limit, note its use, and return what it may do.

    `raw` is an API key, or (a BearerToken, when the edge passes the request's `origin`,
    scheme://host[:port]) an OAuth access token, looked up by access/oauth.py and refused with
    InvalidToken. Without `origin` only keys are accepted. `origin` may be a function, called only
    for a token (a Django request's host is validated when asked for: keys need not pay for it)."""
    if isinstance(raw, BearerToken) and origin is not None:
        here = origin() if callable(origin) else origin
        if here is not None:
            return _authenticate_token(raw, here)
    access = verify_key(raw)
    limit = ratelimit.configured_limit()
    if limit is not None:
        wait = ratelimit.take(f"key:{access.key_id}", limit)
        if wait > 0:
            raise RateLimited(wait)
    assert access.key_id is not None
    assert access.key_prefix is not None
    _note_use(access.key_id, access.key_prefix)
    _count_call(access.key_id)
    return access


def _authenticate_token(raw: str, origin: str) -> Access:
    access = oauth.access_for_token(raw, origin=origin)
    limit = ratelimit.configured_limit()
    if limit is not None:
        # Per connected app and user, not per token: a client refreshing its token every hour
        # must not get a fresh bucket with it. (No last_used_at or usage counting: those are
        # per API key; DOT's token rows carry their own created/expires.)
        wait = ratelimit.take(f"oauth:{access.oauth_application_id}:{access.user_id}", limit)
        if wait > 0:
            raise RateLimited(wait)
    return access


# When this process last asked the cache about each key (by prefix, unique per key): the cache
# is then asked once a minute per key and process, not on every request (a LocMem lock and
# pickle, or a Redis round trip). With several processes last_used_at may lag up to two minutes.
_asked: dict[str, float] = {}
_ASKED_MAX = 10_000


def _note_use(key_id: int, key_prefix: str) -> None:
    # At most one write per key per minute, however many requests arrive: `add` succeeds only
    # for the first caller after the marker expires (atomically on Redis).
    now = time.monotonic()
    asked = _asked.get(key_prefix)
    if asked is not None and now - asked < LAST_USED_RESOLUTION_SECONDS:
        return  # the marker was set (by this process or another) less than a minute ago
    if len(_asked) >= _ASKED_MAX:
        _asked.clear()
    _asked[key_prefix] = now
    marker = f"access:last-used:{key_id}"
    if caches["default"].add(marker, 1, timeout=LAST_USED_RESOLUTION_SECONDS):
        try:
            ApiKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())
        except DatabaseError as error:
            if not is_busy(error):
                raise
            # Bookkeeping never fails the call it notes: a later request writes the time.
            caches["default"].delete(marker)
            _asked.pop(key_prefix, None)


# --- calls per key and day (the console's usage chart) -----------------------------------------------
# Counted in memory, per process, and added to access_keyusageday with one upsert at most once a
# minute (at the first call after the interval) and when the process exits: a request never
# waits for a write of its own. The cost is a loss window: a process that dies without running
# its exit handlers (killed, crashed) loses the calls it counted since its last flush, at most
# USAGE_FLUSH_SECONDS of them (and an idle process holds its last counts until its next call or
# its exit). Good enough for a chart; the rate limit and `last_used_at` do not depend on it.
USAGE_FLUSH_SECONDS = 60
_usage: dict[tuple[int, dt.date], int] = {}
_usage_lock = threading.Lock()
_usage_flushed_at = time.monotonic()


def _count_call(key_id: int) -> None:
    global _usage_flushed_at
    day = timezone.now().date()  # UTC (USE_TZ): one day boundary for every process
    with _usage_lock:
        _usage[(key_id, day)] = _usage.get((key_id, day), 0) + 1
        due = time.monotonic() - _usage_flushed_at >= USAGE_FLUSH_SECONDS
        if due:
            _usage_flushed_at = time.monotonic()
    if due:
        try:
            flush_usage()
        except DatabaseError as error:
            if not is_busy(error):
                raise
            # The counts are kept for the next flush; the call they count goes on.


def flush_usage() -> int:
    """Add the calls counted in this process to access_keyusageday (one statement) and forget
    them; returns how many (key, day) rows it touched. Calls of a key deleted meanwhile are
    dropped. Called at the flush interval, at exit, and by tests."""
    with _usage_lock:
        counted = list(_usage.items())
        _usage.clear()
    if not counted:
        return 0
    rows = [(key_id, day.isoformat(), calls, key_id) for (key_id, day), calls in counted]
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO access_keyusageday(key_id, day, calls) "
                "SELECT %s, %s, %s WHERE EXISTS (SELECT 1 FROM access_apikey WHERE id = %s) "
                "ON CONFLICT(key_id, day) DO UPDATE SET calls = access_keyusageday.calls + excluded.calls",
                rows,
            )
    except Exception:
        # Keep the counts for the next flush rather than lose them to a locked database.
        with _usage_lock:
            for key, calls in counted:
                _usage[key] = _usage.get(key, 0) + calls
        raise
    return len(rows)


def forget_usage() -> None:
    """Drop the calls counted and not yet flushed (a test run whose database is gone)."""
    with _usage_lock:
        _usage.clear()


def _flush_at_exit() -> None:
    with contextlib.suppress(Exception):
        flush_usage()


atexit.register(_flush_at_exit)
