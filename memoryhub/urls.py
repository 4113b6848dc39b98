from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from memoryhub import views
from memoryhub.access import banks
from memoryhub.compat.api import api as compat_api

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("v1/graph/", include("graph.api.urls")),
    path("v1/memory/", include("vectors.api.urls")),
    path("v1/memory/banks/list", banks.BankListView.as_view(), name="banks-list"),
    path("v1/memory/banks/ping", banks.BankPingView.as_view(), name="banks-ping"),
    path("v1/memory/banks/debug", banks.BankDebugView.as_view(), name="banks-debug"),
    path("product/", compat_api.urls),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    # The split view serves its set-up script as a file (/docs?script=): no inline script, so the
    # pages' Content-Security-Policy (memoryhub/security.py) needs no exception for it.
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="openapi"), name="docs"),
    path("", include("agents.urls")),
    path("", include("memoryhub.access.urls")),
]

handler404 = "memoryhub.http_errors.not_found"
handler500 = "memoryhub.http_errors.server_error"
