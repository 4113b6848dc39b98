"""URL routes of the MCP HTTP transports (ASGI, in front of Django; see memoryhub/asgi.py)."""

from django.urls import path, re_path

from mcp_endpoint.consumers import LegacyMessagesConsumer, LegacySseConsumer, StreamableHttpConsumer
from memoryhub.access.asgi_auth import ApiKeyMiddleware

urlpatterns = [
    re_path(r"^mcp/?$", ApiKeyMiddleware(StreamableHttpConsumer.as_asgi())),
    path("sse", ApiKeyMiddleware(LegacySseConsumer.as_asgi())),
    re_path(r"^messages/?$", ApiKeyMiddleware(LegacyMessagesConsumer.as_asgi())),
]
