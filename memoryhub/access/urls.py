"""Self-service pages: sign-in, "My keys", and namespace browsing (filled in by the pages work)."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
