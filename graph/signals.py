"""Signals the graph sends to the rest of the server.

`graph_changed` fires after a write operation in a namespace has committed (sent by
`graph.operations.perform`), so listeners such as MCP resource subscriptions never see
uncommitted state and the graph app needs to know nothing about them.
"""

from django.dispatch import Signal

# Sent with: namespace (str), operation (str).
graph_changed = Signal()

# Sent inside the writing transaction, right after observations (graph facts or free memories)
# are inserted, with: namespace_id (int), observations ([(id, body)]). The vectors app embeds
# them here, so a write is searchable by meaning when the call returns, and a failure to embed
# rolls the write back instead of leaving text that semantic search can never find.
observations_written = Signal()
