"""Signals the graph sends to the rest of the server.

`graph_changed` fires after a write operation in a namespace has committed (sent by
`graph.operations.perform`), so listeners such as MCP resource subscriptions never see
uncommitted state and the graph app needs to know nothing about them.
"""

from django.dispatch import Signal

# Sent with: namespace (str), operation (str).
graph_changed = Signal()
