"""The one way a request proves who it is, shared by every HTTP surface.

DRF (`memoryhub.access.drf`), django-ninja (`memoryhub.access.ninja`), Channels
(`memoryhub.access.asgi`) and plain views (`memoryhub.access.decorators`) only adapt their
request object to `authenticate`; the key lookup, the constant-time check, the rate limit and
the `last_used_at` update happen here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.cache import caches
from django.utils import timezone

from memoryhub.access import ratelimit
from memoryhub.access import secrets as keys
from memoryhub.access.exceptions import NotAuthenticated, RateLimited
from memoryhub.access.models import ApiKey
from memoryhub.access.permissions import Access

LAST_USED_RESOLUTION_SECONDS = 60


def key_from_request(
    headers: Mapping[str, str], query: Mapping[str, str] | None = None, *, allow_query: bool = False
) -> str | None:
    """The raw key a request carries, or None.

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
    if scheme.lower() in ("apikey", "bearer") and credentials.strip():
        return credentials.strip()
    if allow_query and query is not None:
        value = query.get("key")
        if value:
            return value.strip()
    return None


def query_key_allowed(method: str, accept: str) -> bool:
    """`?key=` is for Server-Sent Events GETs only: EventSource cannot send headers."""
    return method.upper() == "GET" and "text/event-stream" in accept.lower()


def verify_key(raw: str | None) -> ApiKey:
    """The active key (not revoked, not expired, owner still active) whose secret is `raw`.
    Raises NotAuthenticated, with one message for every kind of failure."""
    prefix = keys.prefix_of(raw) if raw else None
    row = (
        ApiKey.objects.active().filter(prefix=prefix, owner__is_active=True).prefetch_related("grants").first()
        if prefix
        else None
    )
    if not keys.verify(raw or "", row.secret_hash if row else None) or row is None:
        raise NotAuthenticated()
    return row


def authenticate(raw: str | None) -> Access:
    """Verify the key, charge its rate limit, note its use, and return what it may do."""
    row = verify_key(raw)
    limit = ratelimit.configured_limit()
    if limit is not None:
        wait = ratelimit.take(f"key:{row.pk}", limit)
        if wait > 0:
            raise RateLimited(wait)
    _note_use(row)
    return row.to_access()


def _note_use(row: ApiKey) -> None:
    # At most one write per key per minute, however many requests arrive: `add` succeeds only
    # for the first caller after the marker expires (atomically on Redis).
    if caches["default"].add(f"access:last-used:{row.pk}", 1, timeout=LAST_USED_RESOLUTION_SECONDS):
        ApiKey.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
