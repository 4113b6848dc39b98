"""ASGI entry point: `daphne -b 127.0.0.1 -p 8000 memoryhub.asgi:application`.

The MCP transports (`/mcp`, `/sse`, `/messages`) and the console's live feed (`/console/live`)
are Channels consumers; everything else is Django.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memoryhub.settings")

# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path, re_path  # noqa: E402

from console import live as console_live  # noqa: E402
from kernel.observability import AsgiMiddleware  # noqa: E402
from kernel.startup import announce, start_background_work  # noqa: E402
from kernel.twisted_http import install as memoise_twisted_content_types  # noqa: E402
from mcp_endpoint.routing import urlpatterns as mcp_urlpatterns  # noqa: E402

memoise_twisted_content_types()
announce()
start_background_work()

# Django's own ASGI app takes every path the MCP routes do not.
django_route = re_path(r"", django_asgi_app)  # type: ignore[arg-type]  # an ASGI app, not a view

# Outermost: every HTTP request gets its request id (logs, X-Request-ID) and the MCP routes their
# metrics (kernel/observability.py; Django's views are measured by its middleware).
# /console/live: the console's Server-Sent Events stream (console/live.py), before Django's catch-all.
console_routes = [path("console/live", console_live.application())]

application = AsgiMiddleware(ProtocolTypeRouter({"http": URLRouter([*mcp_urlpatterns, *console_routes, django_route])}))
