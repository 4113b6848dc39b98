"""Signals the graph sends to the rest of the server. (That a write committed is announced for
every app by the runner: `access.signals.operation_applied`.)"""

from django.dispatch import Signal

# Sent inside the writing transaction, right after observations (graph facts or free memories)
# are inserted, with: namespace_id (int), observations ([(id, body)]). The vectors app embeds
# them here, so a write is searchable by meaning when the call returns, and a failure to embed
# rolls the write back instead of leaving text that semantic search can never find.
observations_written = Signal()
