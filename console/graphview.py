"""Console area: graphview (being built)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
