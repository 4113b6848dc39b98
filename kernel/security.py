"""Response headers and cookie flags for the pages and the API (Django's side; the MCP consumers
set theirs in mcp_endpoint/http.py).

- Over TLS (daphne's own ssl endpoint, `make run-tls`, or a proxy named in
  SECURE_PROXY_SSL_HEADER), every cookie is `Secure`, whatever MEMORYHUB_SECURE_COOKIES says: the
  same process may be reached over plain HTTP on loopback, where a Secure cookie would be
  dropped, so the flag follows the request. (HSTS comes from Django's SecurityMiddleware,
  MEMORYHUB_HSTS_SECONDS, which sends it over TLS only.)
- Every HTML answer gets a Content-Security-Policy: nothing loads from another origin (no page
  uses a CDN: Swagger UI and the admin are served from /static/), no inline script runs.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.deprecation import MiddlewareMixin

CSP_HEADER = "Content-Security-Policy"


class SecurityHeadersMiddleware(MiddlewareMixin):
    """Listed before the session and CSRF middleware, so it sees the cookies they set. (A
    MiddlewareMixin: sync and async, no thread hop added for async views.)"""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if request.is_secure():
            for morsel in response.cookies.values():
                morsel["secure"] = True
        policy = settings.MEMORYHUB_CONTENT_SECURITY_POLICY
        if policy and CSP_HEADER not in response and response.get("Content-Type", "").startswith("text/html"):
            response[CSP_HEADER] = policy
        return response
