"""MCP sessions: open, load, save and end them (writes and reads of `McpSession`).

A session belongs to the API key that opened it, or to the (user, connected app) of the OAuth
token that opened it; `load` by any other caller finds nothing, so a leaked session id is worth
nothing on its own.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from access.exceptions import AccessError
from access.permissions import Access
from mcp_endpoint.models import McpSession
from mcp_endpoint.protocol import Connection


def _idle_limit() -> timedelta:
    return timedelta(seconds=settings.MEMORYHUB_MCP_SESSION_IDLE_SECONDS)


def new_session_id() -> str:
    # 32 bytes from the OS CSPRNG; urlsafe base64 is visible ASCII (0x21-0x7E) as the spec requires.
    return secrets.token_urlsafe(32)


def resolved_namespace(access: Access, namespace: str | None) -> str:
    """The namespace a connection works in ('' when neither the client nor the key names one:
    then every tool call says how to fix that)."""
    try:
        return access.resolve_namespace(namespace)
    except AccessError:
        return ""


def open_session(*, access: Access, connection: Connection, transport: str) -> McpSession:
    return McpSession.objects.create(
        session_id=new_session_id(),
        key_id=access.key_id,
        oauth_application_id=access.oauth_application_id,
        user_id=access.user_id if access.is_oauth else None,
        transport=transport,
        namespace=connection.namespace or "",
        tool_categories=",".join(connection.categories or ()),
        protocol_version=connection.protocol_version or "",
        client_info=connection.client_info,
        initialized=connection.initialized,
        subscribed=connection.subscribed,
    )


def load(session_id: str, access: Access) -> McpSession | None:
    """The live session with this id opened by this caller (the same key, or the same user and
    connected app), or None (unknown, ended, idle too long, or another caller's)."""
    session = (
        McpSession.objects.filter(session_id=session_id, ended_at__isnull=True, **_owner(access))
        .only(
            "id",
            "session_id",
            "transport",
            "namespace",
            "tool_categories",
            "protocol_version",
            "client_info",
            "initialized",
            "subscribed",
            "last_seen_at",
        )
        .first()
    )
    if session is None:
        return None
    now = timezone.now()
    if session.last_seen_at < now - _idle_limit():
        end(session)
        return None
    touch(session)
    return session


def _owner(access: Access) -> dict[str, int | None]:
    """The lookup that finds only sessions `access` opened: by key; by user and app for an OAuth
    caller; and a keyless local caller (stdio) only keyless, non-OAuth sessions."""
    if access.key_id is not None:
        return {"key_id": access.key_id}
    if access.is_oauth:
        return {"key_id": None, "oauth_application_id": access.oauth_application_id, "user_id": access.user_id}
    return {"key_id": None, "oauth_application_id": None}


def end_for_oauth_app(user_id: int, application_id: int) -> int:
    """End every live session a user's connected app opened (its consent was revoked); returns
    how many. Its requests fail anyway once its tokens are deleted; this frees their streams'
    subscriptions at once."""
    return McpSession.objects.filter(
        user_id=user_id, oauth_application_id=application_id, ended_at__isnull=True
    ).update(ended_at=timezone.now(), subscribed=False)


def touch(session: McpSession) -> None:
    """The session is in use (a request, a line, an open stream): keep `last_seen_at` fresh,
    with at most one write a minute per session."""
    if cache.add(f"mcp:seen:{session.session_id}", 1, timeout=60):
        McpSession.objects.filter(pk=session.pk).update(last_seen_at=timezone.now())


def connection_for(session: McpSession, access: Access) -> Connection:
    return Connection(
        access=access,
        namespace=session.namespace or None,
        categories=tuple(session.tool_categories.split(",")) if session.tool_categories else None,
        protocol_version=session.protocol_version or None,
        client_info=session.client_info,
        initialized=session.initialized,
        subscribed=session.subscribed,
    )


def save(session: McpSession, connection: Connection) -> None:
    """Store what a message changed on the connection (handshake, initialized, subscription).

    Only the fields this message changed are written, so two requests of one session that
    change different things at once (say `initialized` and a subscription) keep both."""
    if not connection.changed:
        return
    state = {
        "protocol_version": connection.protocol_version or "",
        "client_info": connection.client_info,
        "initialized": connection.initialized,
        "subscribed": connection.subscribed,
    }
    changed = {field: value for field, value in state.items() if getattr(session, field) != value}
    if changed:
        McpSession.objects.filter(pk=session.pk).update(**changed)
        for field, value in changed.items():
            setattr(session, field, value)
    connection.changed = False


def end(session: McpSession) -> None:
    McpSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(ended_at=timezone.now(), subscribed=False)


def end_by_id(session_id: str) -> None:
    McpSession.objects.filter(session_id=session_id, ended_at__isnull=True).update(
        ended_at=timezone.now(), subscribed=False
    )


def end_for_key(key_id: int) -> int:
    """End every live session opened with the key (revoked or expired); returns how many."""
    return McpSession.objects.filter(key_id=key_id, ended_at__isnull=True).update(
        ended_at=timezone.now(), subscribed=False
    )


def subscribers(namespace: str) -> list[str]:
    """Ids of the live sessions subscribed to the knowledge graph of `namespace` (a session not
    seen for the idle limit, say of a killed stdio process, is not live)."""
    return list(
        McpSession.objects.filter(
            namespace=namespace,
            subscribed=True,
            ended_at__isnull=True,
            last_seen_at__gte=timezone.now() - _idle_limit(),
        ).values_list("session_id", flat=True)
    )


def sessions_of_user(user_id: int, category: str) -> list[str]:
    """Ids of the live sessions opened with any key of `user_id` (or by their connected apps) whose tools include `category`
    (a session that chose no categories has them all)."""
    live = McpSession.objects.filter(
        Q(key__owner_id=user_id) | Q(user_id=user_id),
        ended_at__isnull=True,
        last_seen_at__gte=timezone.now() - _idle_limit(),
    )
    return [
        session_id
        for session_id, categories in live.values_list("session_id", "tool_categories")
        if not categories or category in categories.split(",")
    ]


def purge() -> int:
    """Delete the sessions that can never be used again: ended ones, and live ones unused for the
    idle limit (`load` would end them on their next request anyway). Returns how many. Their
    replay events expire from the cache on their own (events.RETENTION)."""
    idle = McpSession.objects.filter(ended_at__isnull=True, last_seen_at__lt=timezone.now() - _idle_limit())
    ended = McpSession.objects.filter(ended_at__isnull=False)
    _, deleted = (ended | idle).delete()
    return deleted.get(McpSession._meta.label, 0)


@dataclass(frozen=True)
class KeyClient:
    """An MCP client that used a key, as its sessions recorded it (the client's own name for
    itself, from `initialize`; nothing else about the caller is stored)."""

    name: str
    transport: str
    protocol_version: str
    last_seen_at: datetime
    connected: bool


def clients_of_key(key_id: int, *, limit: int = 10) -> list[KeyClient]:
    """The MCP clients that opened sessions with the key, most recently seen first, one entry per
    client name and transport (over its most recent sessions)."""
    sessions = (
        McpSession.objects.filter(key_id=key_id)
        .order_by("-last_seen_at", "-id")
        .only("transport", "protocol_version", "client_info", "last_seen_at", "ended_at")[:200]
    )
    idle_since = timezone.now() - _idle_limit()
    clients: dict[tuple[str, str], KeyClient] = {}
    for session in sessions:
        info = session.client_info if isinstance(session.client_info, dict) else {}
        name = " ".join(str(info.get(part) or "") for part in ("name", "version")).strip() or "unnamed client"
        transport = session.get_transport_display()
        connected = session.ended_at is None and session.last_seen_at >= idle_since
        seen = clients.get((name, transport))
        if seen is None:
            if len(clients) >= limit:
                continue
            clients[(name, transport)] = KeyClient(
                name=name[:200],
                transport=transport,
                protocol_version=session.protocol_version,
                last_seen_at=session.last_seen_at,
                connected=connected,
            )
        elif connected and not seen.connected:
            clients[(name, transport)] = dataclasses.replace(seen, connected=True)
    return list(clients.values())
