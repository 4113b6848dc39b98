from __future__ import annotations

import functools
import ipaddress

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_safe

from access import authentication
from access.exceptions import AccessError
from kernel import health, metrics
from kernel.http_errors import error_response


@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and operators (no auth, no tenant data): the database, the
    channel layer (a round trip on a new channel) and the Celery broker when one is configured.
    503 with each check's details when one fails."""
    report = await health.check_all()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=8)
def _networks(configured: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in configured)


def _trusted(address: IpAddress) -> bool:
    return any(address in network for network in _networks(tuple(settings.MEMORYHUB_TRUSTED_PROXIES)))


def _address(text: str) -> IpAddress | None:
    """An address as proxies write it: bare, quoted, [v6], with or without a port."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _forwarded_for(request: HttpRequest) -> list[str]:
    """The addresses a proxy says the request came through, oldest first (a header it set
    without one it can name gives 'unknown')."""
    if (chain := request.headers.get("X-Forwarded-For")) is not None:
        return chain.split(",")
    if (forwarded := request.headers.get("Forwarded")) is not None:
        values = [
            part.split("=", 1)[1]
            for element in forwarded.split(",")
            for part in element.split(";")
            if part.strip().lower().startswith("for=")
        ]
        return values or ["unknown"]
    if (real_ip := request.headers.get("X-Real-IP")) is not None:
        return [real_ip]
    return []


def _from_loopback(request: HttpRequest) -> bool:
    """A caller on this machine. The client is the peer, unless the peer is a trusted proxy
    (MEMORYHUB_TRUSTED_PROXIES): then it is the first address, from the right of the chain the
    proxies wrote, that is not one; an address that cannot be read ends the search, refused. So a
    peer that is no proxy is judged by its own address whatever it claims, and a caller cannot
    pass for local by writing 127.0.0.1 into a chain a proxy then appends to."""
    client = _address(request.META.get("REMOTE_ADDR", ""))
    if client is None:
        return False
    if _trusted(client):
        for hop in reversed(_forwarded_for(request)):
            address = _address(hop)
            if address is None:
                return False
            client = address
            if not _trusted(address):
                break
    return client.is_loopback


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics of this process. Open to loopback callers, to operator keys (a write
    grant on '*'), or to everyone with MEMORYHUB_METRICS_PUBLIC."""
    if not (settings.MEMORYHUB_METRICS_PUBLIC or _from_loopback(request)):
        try:
            access = authentication.authenticate(authentication.key_from_request(request.headers))
            access.require_operator("Reading /metrics")
        except AccessError as problem:  # 401 without a valid key, 403 for a key that is not an operator's
            return error_response(problem)
    return HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> FileResponse:
    """/favicon.ico, which browsers (and the admin pages, which link no icon) ask for by that name;
    the pages link the SVG in static/memoryhub/."""
    found = finders.find("memoryhub/favicon.ico")
    if not isinstance(found, str):
        raise Http404("no favicon")
    return FileResponse(open(found, "rb"), content_type="image/x-icon")
