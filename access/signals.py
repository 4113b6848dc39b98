"""Signals of the access app, sent after the change is committed.

`key_changed(key_id)`: a key was revoked, or its expiry changed. Whatever holds something open
for the key (MCP streams and sessions: mcp_endpoint/notifications.py) looks at the key again.

`oauth_app_revoked(user_id, application_id)`: a user's connected app was revoked (its consent and
tokens deleted); whatever it holds open (MCP sessions) ends.

`operation_applied(operation, namespace, changes)`: a write declared in access/operations.py
committed. `changes` says what it changed ("graph", "vectors", "memories", "ledger");
`namespace` is the one namespace it wrote, or None when it reached several (a delete by id).
Listeners (MCP resource subscriptions) pick what concerns them; the app that wrote needs to know
nothing about them.
"""

from django.dispatch import Signal

key_changed = Signal()
oauth_app_revoked = Signal()
operation_applied = Signal()
