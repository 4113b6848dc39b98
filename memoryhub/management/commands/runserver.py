"""`manage.py runserver`: daphne's development server, which serves the ASGI application (the
MCP streams and WebSockets need it; Django's own runserver is WSGI).

Daphne is not in INSTALLED_APPS (memoryhub/settings.py), so its command is re-exported here; the
import happens only when this command runs.
"""

from daphne.management.commands.runserver import Command

__all__ = ["Command"]
