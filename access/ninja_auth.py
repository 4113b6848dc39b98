"""API-key (and OAuth access token) authentication for django-ninja APIs, through the shared path.

Failures raise the access layer's DomainErrors (NotAuthenticated, RateLimited); each NinjaAPI
translates them in its own exception handler into its own envelope (e.g. MemOS'
`{code, message, data}`), as every edge translates domain errors once.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from django.http import HttpRequest
from ninja.security import APIKeyHeader

from access import authentication
from access.permissions import Access
from kernel.http_errors import request_origin


class ApiKeyAuth(APIKeyHeader):
    param_name = "X-API-Key"  # what the OpenAPI schema shows; every accepted header works

    def __call__(self, request: HttpRequest) -> Access:
        raw = authentication.key_from_request(request.headers)
        access = replace(
            authentication.authenticate(raw, origin=functools.partial(request_origin, request)), surface="memos"
        )
        request.access = access  # type: ignore[attr-defined]
        return access

    def authenticate(self, request: HttpRequest, key: str | None) -> Access:
        return replace(
            authentication.authenticate(key, origin=functools.partial(request_origin, request)), surface="memos"
        )
