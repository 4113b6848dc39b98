"""Server-initiated notifications.

- A committed write in a namespace tells every session subscribed to that namespace's
  `memory://knowledge-graph` (`notifications/resources/updated`).
- A key revoked, or its expiry changed: its live sessions end when it no longer works, and every
  stream it holds open, in any process, looks at it again (and ends: `McpHttpConsumer`).
- A change in the agents a user holds tokens for (a first purchase, the last token spent) tells
  that user's connections their tool list changed (`notifications/tools/list_changed`): MCP
  sessions of any of their keys, their open marketplace SSE streams, and the marketplace POST
  that caused it (which then answers as an SSE stream when the client accepts one).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.dispatch import receiver

from access import selectors
from access.signals import key_changed, oauth_app_revoked, operation_applied
from agents.signals import agents_listed_changed
from graph.operations import GRAPH
from mcp_endpoint import events, sessions
from mcp_endpoint.jsonrpc import notification
from mcp_endpoint.protocol import GRAPH_RESOURCE

TOOLS_CHANGED = "notifications/tools/list_changed"


@receiver(operation_applied, dispatch_uid="mcp_endpoint.resource_updated")
def resource_updated(sender: Any, namespace: str | None, changes: str | None, **kwargs: Any) -> None:
    if changes != GRAPH or namespace is None:
        return
    message = notification("notifications/resources/updated", {"uri": GRAPH_RESOURCE})
    for session_id in sessions.subscribers(namespace):
        events.publish(session_id, message)


def marketplace_group(user_id: int) -> str:
    return f"marketplace.user.{user_id}"


@receiver(agents_listed_changed, dispatch_uid="mcp_endpoint.tools_changed")
def tools_changed(sender: Any, user_id: int, **kwargs: Any) -> None:
    message = notification(TOOLS_CHANGED)
    for session_id in sessions.sessions_of_user(user_id, "agents"):
        events.publish(session_id, message)
    pending = events.current_marketplace_post.get()
    if pending is not None:
        pending.append(message)
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(marketplace_group(user_id), {"type": events.MESSAGE_TYPE, "message": message})


@receiver(key_changed, dispatch_uid="mcp_endpoint.key_changed")
def key_streams_recheck(sender: Any, key_id: int, **kwargs: Any) -> None:
    usable, _ = selectors.key_state(key_id)
    if not usable:
        sessions.end_for_key(key_id)
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(events.key_group(key_id), {"type": events.KEY_CHANGED_TYPE})


@receiver(oauth_app_revoked, dispatch_uid="mcp_endpoint.oauth_app_revoked")
def oauth_sessions_end(sender: Any, user_id: int, application_id: int, **kwargs: Any) -> None:
    """A revoked app's sessions end at once (its requests already fail: its tokens are gone)."""
    sessions.end_for_oauth_app(user_id, application_id)
