"""Path converters the page edges share (web/, console/), registered once with Django."""

from __future__ import annotations

from django.urls import register_converter


class AnyTextConverter:
    """Any non-empty text, '/' and line breaks included (entity names may hold any character;
    Django's `path` converter stops at a line break)."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


# Registered on import: `path("…/<anytext:name>", …)` works in any urls module that imports this.
register_converter(AnyTextConverter, "anytext")
