"""Signals of the access app, sent after the change is committed.

`key_changed(key_id)`: a key was revoked, or its expiry changed. Whatever holds something open
for the key (MCP streams and sessions: mcp_endpoint/notifications.py) looks at the key again.
"""

from django.dispatch import Signal

key_changed = Signal()
