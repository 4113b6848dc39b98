"""Console area: memories (being built)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
