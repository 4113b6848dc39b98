"""URL routes of the MCP HTTP transports (ASGI, in front of Django; see memoryhub/asgi.py)."""

from django.urls import path, re_path

from mcp_endpoint.consumers import LegacyMessagesConsumer, LegacySseConsumer, StreamableHttpConsumer
from mcp_endpoint.marketplace import MarketplaceMessagesConsumer, MarketplaceSseConsumer
from memoryhub.access.asgi_auth import ApiKeyMiddleware

urlpatterns = [
    # /mcp checks the key itself, in the same database call as a stateless request's work.
    re_path(r"^mcp/?$", ApiKeyMiddleware(StreamableHttpConsumer.as_asgi(), deferred=True)),
    path("sse", ApiKeyMiddleware(LegacySseConsumer.as_asgi())),
    re_path(r"^messages/?$", ApiKeyMiddleware(LegacyMessagesConsumer.as_asgi())),
    # The marketplace endpoint (marketplace seed); its SSE GET documents ?key= for any client.
    re_path(r"^api/mcp/messages/?$", ApiKeyMiddleware(MarketplaceMessagesConsumer.as_asgi())),
    re_path(r"^api/mcp/sse/?$", ApiKeyMiddleware(MarketplaceSseConsumer.as_asgi(), query_key_on_get=True)),
]
