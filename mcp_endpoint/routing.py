"""URL routes of the MCP HTTP transports (ASGI, in front of Django; see memoryhub/asgi.py).

Each route checks the Host header first (`AllowedHostsMiddleware`): Django validates it for its
own views only, and these never reach Django.
"""

from typing import Any

from django.urls import path, re_path

from access.asgi_auth import ApiKeyMiddleware
from mcp_endpoint.consumers import LegacyMessagesConsumer, LegacySseConsumer, StreamableHttpConsumer
from mcp_endpoint.http import AllowedHostsMiddleware, FailuresAnswered
from mcp_endpoint.marketplace import MarketplaceMessagesConsumer, MarketplaceSseConsumer


def _checked(app: Any, **key_options: Any) -> Any:
    return FailuresAnswered(AllowedHostsMiddleware(ApiKeyMiddleware(app, **key_options)))


urlpatterns = [
    # /mcp checks the key itself, in the same database call as a stateless request's work.
    re_path(r"^mcp/?$", _checked(StreamableHttpConsumer.as_asgi(), deferred=True)),
    path("sse", _checked(LegacySseConsumer.as_asgi())),
    re_path(r"^messages/?$", _checked(LegacyMessagesConsumer.as_asgi())),
    # The marketplace endpoint (marketplace seed); its SSE GET documents ?key= for any client.
    re_path(r"^api/mcp/messages/?$", _checked(MarketplaceMessagesConsumer.as_asgi())),
    re_path(r"^api/mcp/sse/?$", _checked(MarketplaceSseConsumer.as_asgi(), query_key_on_get=True)),
]
