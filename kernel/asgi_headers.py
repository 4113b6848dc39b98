"""An ASGI request's headers by case-insensitive name, parsed once per request.

The API-key middleware and the MCP consumer both read headers; the middleware stores what it
parsed in the scope it passes on, so the consumer does not decode the list again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

SCOPE_KEY = "memoryhub.headers"


class Headers(Mapping[str, str]):
    """Latin-1 decoded, looked up case-insensitively; a repeated header keeps its last value."""

    def __init__(self, raw: Any) -> None:
        self._values = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def request_headers(scope: Mapping[str, Any]) -> Headers:
    """The scope's headers: the ones a middleware already parsed, or parsed now."""
    parsed = scope.get(SCOPE_KEY)
    return parsed if isinstance(parsed, Headers) else Headers(scope.get("headers", ()))
