"""The console's pages, mounted at /console/ (memoryhub/urls.py); each area declares its own."""

from django.urls import URLPattern

from console import dashboard, graphview, memories, search, transfer

app_name = "console"

urlpatterns: list[URLPattern] = [
    *dashboard.urlpatterns,
    *search.urlpatterns,
    *memories.urlpatterns,
    *graphview.urlpatterns,
    *transfer.urlpatterns,
]
