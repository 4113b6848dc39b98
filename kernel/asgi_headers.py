"""An ASGI request's headers by case-insensitive name, parsed once per request.

The API-key middleware and the MCP consumer both read headers; the middleware stores what it
parsed in the scope it passes on, so the consumer does not decode the list again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.conf import settings

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


def request_host(scope: Mapping[str, Any]) -> str:
    """The host a request names, as Django's `HttpRequest._get_raw_host` finds it: X-Forwarded-Host
    when USE_X_FORWARDED_HOST, else Host, else the server's own address. (Not validated here: the
    MCP routes refuse hosts outside ALLOWED_HOSTS first, mcp_endpoint/http.py.)"""
    headers = request_headers(scope)
    if settings.USE_X_FORWARDED_HOST and "X-Forwarded-Host" in headers:
        return headers["X-Forwarded-Host"]
    if "Host" in headers:
        return headers["Host"]
    server = scope.get("server") or ("", None)
    return f"{server[0]}:{server[1]}" if server[1] is not None else str(server[0])


def request_scheme(scope: Mapping[str, Any]) -> str:
    """http or https, as Django's `HttpRequest.scheme` decides it: SECURE_PROXY_SSL_HEADER, when
    set and present, names the scheme a proxy received; else the connection's own."""
    if settings.SECURE_PROXY_SSL_HEADER:
        header, secure_value = settings.SECURE_PROXY_SSL_HEADER
        name = header.removeprefix("HTTP_").replace("_", "-")
        value = request_headers(scope).get(name)
        if value is not None:
            return "https" if value.split(",", 1)[0].strip() == secure_value else "http"
    return str(scope.get("scheme") or "http")


def request_origin(scope: Mapping[str, Any]) -> str:
    """scheme://host[:port] of the request, as a client addressed it (the OAuth resource's origin)."""
    return f"{request_scheme(scope)}://{request_host(scope)}"
