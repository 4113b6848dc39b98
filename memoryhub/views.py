from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_safe

from memoryhub import health, metrics
from memoryhub.access import authentication
from memoryhub.access.exceptions import AccessError
from memoryhub.http_errors import error_response


@require_GET
async def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and operators (no auth, no tenant data): the database, the
    channel layer (a round trip on a new channel) and the Celery broker when one is configured.
    503 with each check's details when one fails."""
    report = await health.check_all()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


# Headers a reverse proxy adds: a request carrying one came from elsewhere, whatever its socket says.
_FORWARDING_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def _from_loopback(request: HttpRequest) -> bool:
    """A request made on this machine, not relayed: loopback peer address and no proxy header
    (behind a proxy on the same host every request has a loopback peer)."""
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return peer.is_loopback and not any(request.headers.get(name) for name in _FORWARDING_HEADERS)


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
