"""API-key (or OAuth access token) authentication for plain Django views (non-DRF), through the
shared path."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from access import authentication
from access.exceptions import AccessError
from kernel.http_errors import error_response, request_origin


def api_key_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Authenticate the request's key and set `request.access`; else answer 401/429 as JSON."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        raw = authentication.key_from_request(
            request.headers,
            request.GET,
            allow_query=authentication.query_key_allowed(request.method or "", request.headers.get("Accept", "")),
        )
        try:
            request.access = authentication.authenticate(  # type: ignore[attr-defined]
                raw, origin=functools.partial(request_origin, request)
            )
        except AccessError as error:
            return error_response(error, request)
        return view(request, *args, **kwargs)

    return wrapped
