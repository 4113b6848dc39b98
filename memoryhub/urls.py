from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView
from oauth2_provider import urls as oauth_urls
from oauth2_provider import views as oauth_views

from access import oauth_server, signin
from compat.api import api as compat_api
from memoryhub import views
from web import oauth as web_oauth

# The admin's sign-in form counts failures like /accounts/login/ (access/signin.py).
admin.site.login_form = signin.ThrottledAdminAuthenticationForm
admin.site.site_header = admin.site.site_title = "MemoryHub"


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's own sign-in view, answering 429 when the throttle refused the form."""
    return signin.with_throttle_status(admin.site.login(request))


# The OAuth 2.1 authorization server (docs/remote-mcp.md), under DOT's URL names: its metadata at
# the origin's /.well-known/ (RFC 8414, RFC 9728 and its path form for /mcp), the endpoints under
# /oauth/. DOT's application-management and device-flow pages are not mounted.
oauth_patterns = [
    *oauth_urls.metadata_urlpatterns,
    # Our consent page (web/oauth.py) and registration rules (access/oauth_server.py) on DOT's views.
    path("oauth/authorize/", web_oauth.ConsentView.as_view(), name="authorize"),
    path("oauth/token/", oauth_views.TokenView.as_view(), name="token"),
    path("oauth/revoke_token/", oauth_views.RevokeTokenView.as_view(), name="revoke-token"),
    path("oauth/register/", oauth_server.RegistrationView.as_view(), name="dcr-register"),
    path(
        "oauth/register/<str:client_id>/",
        oauth_server.RegistrationManagementView.as_view(),
        name="dcr-register-management",
    ),
]

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("", include((oauth_patterns, "oauth2_provider"))),
    path("favicon.ico", views.favicon, name="favicon"),
    path("metrics", views.metrics_view, name="metrics"),
    path("admin/login/", admin_login),  # before admin.site.urls, which has the same path
    path("admin/", admin.site.urls),
    path("v1/graph/", include("graph.api.urls")),
    path("v1/memory/", include("memory.api.urls")),
    path("product/", compat_api.urls),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    # The split view serves its set-up script as a file (/docs?script=): no inline script, so the
    # pages' Content-Security-Policy (kernel/security.py) needs no exception for it.
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="openapi"), name="docs"),
    path("console/", include("console.urls")),
    path("", include("agents.urls")),
    path("", include("web.urls")),
]

handler404 = "kernel.http_errors.not_found"
handler500 = "kernel.http_errors.server_error"
