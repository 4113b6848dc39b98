"""DRF fields shared by REST endpoints that still declare their bodies as serializers (the memory
API, vectors/api/serializers.py).

The graph endpoints have no serializers: their bodies are read, and documented, from the graph
operations' contracts (graph/contracts.py, kernel/rest_contracts.py).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from graph import limits


class StrictCharField(serializers.CharField):
    """A string that must be a JSON string: DRF would otherwise turn 5 or 1e-9 into "5"/"1e-09"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictRegexField(serializers.RegexField, StrictCharField):
    pass


class ShortListField(serializers.ListField):
    """A list whose length is checked before its items: over `max_length` (or, without one, over
    MAX_ITEMS_PER_REQUEST, refused as the store refuses it), a list of 200,000 wrong items is
    refused by its length rather than by 200,000 item errors."""

    def to_internal_value(self, data: Any) -> list[Any]:
        if isinstance(data, list):
            if self.max_length is None:
                limits.items(data, field=self.field_name or "list")
            elif len(data) > self.max_length:
                self.fail("max_length", max_length=self.max_length)
        return list(super().to_internal_value(data))
