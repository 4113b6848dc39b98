"""MCP sessions: one row per handshake-era connection (Streamable HTTP, legacy SSE, stdio, TCP).

Sessions live in the database so that any server process can serve any request of a session
and find who to notify when a namespace changes; the events of a session's streams live in
the cache (`events.py`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class McpSession(models.Model):
    class Transport(models.TextChoices):
        HTTP = "http", "Streamable HTTP"
        SSE = "sse", "HTTP+SSE (legacy)"
        STDIO = "stdio", "stdio"
        TCP = "tcp", "TCP"

    # Cryptographically random, visible ASCII only (the spec's rule for MCP-Session-Id).
    session_id = models.CharField(max_length=64, unique=True)
    # Bound to the key that opened it: a request with another key gets 404 (sessions are not
    # authentication, and a stolen id is useless without the key). Null for a local stdio
    # session started without a key (whoever can run manage.py can read the database anyway).
    key = models.ForeignKey(
        "access.ApiKey", on_delete=models.CASCADE, related_name="mcp_sessions", null=True, blank=True
    )
    # Or, for an OAuth caller (access/oauth.py), bound to the connected app and the user: a client
    # refreshes its short-lived token mid-session, the pair stays. Revoking the app deletes its
    # tokens (so the session is unusable at once) and deleting the app deletes its sessions.
    oauth_application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL,
        on_delete=models.CASCADE,
        related_name="mcp_sessions",
        null=True,
        blank=True,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mcp_sessions", null=True, blank=True
    )
    transport = models.CharField(max_length=8, choices=Transport.choices)
    namespace = models.CharField(max_length=255, blank=True, default="")
    tool_categories = models.CharField(max_length=255, blank=True, default="")
    protocol_version = models.CharField(max_length=16, blank=True, default="")
    client_info = models.JSONField(null=True, blank=True)
    initialized = models.BooleanField(default=False)
    subscribed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Who to notify when a namespace changes.
            models.Index(
                fields=["namespace"],
                name="mcp_session_subscribers",
                condition=models.Q(subscribed=True, ended_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_transport_display()} session {self.session_id[:8]}…"
