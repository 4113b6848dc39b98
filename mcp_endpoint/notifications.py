"""Resource notifications: a committed write in a namespace tells every session subscribed to
that namespace's `memory://knowledge-graph` (`notifications/resources/updated`)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from graph.signals import graph_changed
from mcp_endpoint import events, sessions
from mcp_endpoint.jsonrpc import notification
from mcp_endpoint.protocol import GRAPH_RESOURCE


@receiver(graph_changed, dispatch_uid="mcp_endpoint.resource_updated")
def resource_updated(sender: Any, namespace: str, **kwargs: Any) -> None:
    message = notification("notifications/resources/updated", {"uri": GRAPH_RESOURCE})
    for session_id in sessions.subscribers(namespace):
        events.publish(session_id, message)
