"""One JSON error shape for every HTTP API, and the translation of errors into it.

    {"error": {"code": "forbidden", "message": "...", "details": {...}}}

Domain errors carry a `code`; the HTTP status is decided here, at the edge, not in the domain.
DRF uses `drf_exception_handler`; plain views and the 404/500 handlers use `error_response`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from oauth2_provider.www_authenticate import build_bearer_challenge
from rest_framework import exceptions as drf
from rest_framework.response import Response

from kernel.errors import API_KEY_REQUIRED, DomainError, StoreBusy
from kernel.sql import is_busy

# The logger keeps its name from before the move to kernel/, so log output is unchanged.
logger = logging.getLogger("memoryhub.http_errors")

STATUS_BY_CODE = {
    "invalid_argument": 400,
    "limit_exceeded": 400,
    "namespace_required": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "already_exists": 409,
    "request_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "internal_error": 500,
    # The database stayed locked past the writer's wait (kernel.errors.StoreBusy): retry.
    "store_busy": 503,
    # The embedding provider (an upstream service) failed or timed out.
    "embedding_unavailable": 502,
    "embedding_timeout": 504,
    # The marketplace: the wallet or token balance cannot pay (Payment Required).
    "insufficient_credits": 402,
    "insufficient_tokens": 402,
    # The LLM provider (an upstream service) failed or timed out.
    "provider_unavailable": 502,
    "provider_timeout": 504,
}
AUTHENTICATE_HEADER = 'ApiKey realm="memoryhub"'
# RFC 9728 §5.1: a 401 names the protected-resource metadata, where an OAuth client (the MCP SDKs,
# Claude's and ChatGPT's connectors) finds the authorization server. The resource is /mcp.
RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource/mcp"
OAUTH_SCOPE = "mcp"


def bearer_challenge(origin: str, *, error: str | None = None, description: str | None = None) -> str:
    """`Bearer error="...",error_description="...",scope="mcp",resource_metadata="<origin>/.well-known/
    oauth-protected-resource/mcp"` (DOT's builder: values escaped); `error` only when a token was
    sent and refused (RFC 6750 §3.1)."""
    attributes: dict[str, str] = {}
    if error:
        attributes["error"] = error
        if description:
            attributes["error_description"] = description
    attributes["scope"] = OAUTH_SCOPE
    return build_bearer_challenge(None, attributes, resource_metadata_url=f"{origin}{RESOURCE_METADATA_PATH}")


def authenticate_header(
    origin: str | None, error: DomainError | None = None, *, api_key_realm: str = "memoryhub"
) -> str:
    """The WWW-Authenticate value of a 401: the ApiKey challenge, then (when the request's origin is
    known) the OAuth Bearer one. REST edges put ApiKey first (what their clients use); the MCP
    edge puts Bearer first (`mcp_authenticate_header`)."""
    api_key = f'ApiKey realm="{api_key_realm}"'
    if origin is None:
        return api_key
    return f"{api_key}, {_bearer_for(origin, error)}"


def _bearer_for(origin: str, error: DomainError | None) -> str:
    oauth_error = getattr(error, "oauth_error", None)
    return bearer_challenge(origin, error=oauth_error, description=error.message if oauth_error and error else None)


def mcp_authenticate_header(origin: str, error: DomainError | None = None) -> str:
    """The MCP transports' 401 challenge: Bearer first (the TypeScript SDK reads only the first
    challenge's scheme), then `ApiKey realm="mcp"`."""
    return f'{_bearer_for(origin, error)}, ApiKey realm="mcp"'


def request_origin(request: HttpRequest) -> str | None:
    """scheme://host[:port] of a Django request (SECURE_PROXY_SSL_HEADER and USE_X_FORWARDED_HOST
    honoured, the host validated by ALLOWED_HOSTS), or None when the host is not allowed (or the
    request names none: a hand-built request, as test clients make). Never raises: error
    handlers call it."""
    try:
        return f"{request.scheme}://{request.get_host()}"
    except (DisallowedHost, KeyError):
        return None


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def status_for(error: DomainError) -> int:
    return STATUS_BY_CODE.get(error.code, 400)


def headers_for(error: DomainError, request: HttpRequest | None = None) -> dict[str, str]:
    headers = {}
    if error.code == "unauthorized":
        headers["WWW-Authenticate"] = authenticate_header(request_origin(request) if request else None, error)
    if error.code in ("rate_limited", "store_busy"):
        headers["Retry-After"] = str(error.details.get("retry_after", 1))
    return headers


def error_response(error: DomainError, request: HttpRequest | None = None) -> JsonResponse:
    return JsonResponse(
        error_body(error.code, error.message, error.details),
        status=status_for(error),
        headers=headers_for(error, request),
    )


def _first_message(detail: Any) -> str:
    """A readable one-line summary of a DRF validation error tree."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            inner = _first_message(value)
            return inner if field == "non_field_errors" else f"{field}: {inner}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


# The field errors a 400 lists; the rest are counted (`omittedErrors`). A body of a million wrong
# items would otherwise be answered with some thirty bytes per item.
SHOWN_ERRORS = 20


def _first_errors(detail: Any, budget: list[int]) -> Any:
    """`detail` (DRF's tree of field errors) with only its first `budget[0]` messages; `budget`
    is a one-item list counted down, so what is left over is minus the number left out."""
    if isinstance(detail, dict):
        kept = {}
        for field, value in detail.items():
            if budget[0] <= 0:
                budget[0] -= _count(value)
                continue
            kept[field] = _first_errors(value, budget)
        return kept
    if isinstance(detail, list):
        shown = []
        for value in detail:
            if budget[0] <= 0:
                budget[0] -= _count(value)
                continue
            shown.append(_first_errors(value, budget))
        return shown
    budget[0] -= 1
    return _short(str(detail))


# Longest error message kept whole: DRF's messages echo the value sent ('"…" is not a valid choice').
SHOWN_CHARACTERS = 300


def _short(message: str) -> str:
    return message if len(message) <= SHOWN_CHARACTERS else f"{message[:SHOWN_CHARACTERS]}… ({len(message)} characters)"


def _count(detail: Any) -> int:
    if isinstance(detail, dict):
        return sum(_count(value) for value in detail.values())
    if isinstance(detail, list):
        return sum(_count(value) for value in detail)
    return 1


def _field_errors(detail: Any) -> dict[str, Any]:
    budget = [SHOWN_ERRORS]
    details: dict[str, Any] = {"fields": _first_errors(detail, budget)}
    if budget[0] < 0:
        details["omittedErrors"] = -budget[0]
    return details


def _drf_error(exc: drf.APIException) -> tuple[str, str, dict[str, Any] | None]:
    if isinstance(exc, drf.ValidationError):
        return "invalid_argument", _short(_first_message(exc.detail)), _field_errors(exc.detail)
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        return "unauthorized", API_KEY_REQUIRED, None
    if isinstance(exc, drf.ParseError):
        return "invalid_argument", f"the request body is not valid JSON: {exc.detail}", None
    if isinstance(exc, drf.MethodNotAllowed):
        return "method_not_allowed", str(exc.detail), None
    if isinstance(exc, drf.UnsupportedMediaType):
        return "unsupported_media_type", f"{exc.detail} Send 'Content-Type: application/json'.", None
    if isinstance(exc, drf.NotAcceptable):
        return "not_acceptable", str(exc.detail), None
    if isinstance(exc, drf.NotFound):
        return "not_found", str(exc.detail), None
    if isinstance(exc, drf.PermissionDenied):
        return "forbidden", str(exc.detail), None
    return str(exc.default_code), str(exc.detail), None


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    if is_busy(exc):  # a transaction begun outside the operation runner (access/operations.py)
        exc = StoreBusy()
    if isinstance(exc, DomainError):
        return Response(
            error_body(exc.code, exc.message, exc.details), status=status_for(exc), headers=headers_for(exc, request)
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(
            error_body("request_too_large", "The request body is larger than the server accepts (16 MB by default)."),
            status=413,
        )
    if isinstance(exc, drf.APIException):
        code, message, details = _drf_error(exc)
        origin = request_origin(request) if request is not None else None
        headers = {"WWW-Authenticate": authenticate_header(origin)} if code == "unauthorized" else {}
        status = 401 if code == "unauthorized" else exc.status_code
        return Response(error_body(code, message, details), status=status, headers=headers)
    return None  # anything else is a bug: Django's 500 handler logs it and answers in our shape


API_PREFIXES = ("/v1/", "/mcp", "/api/", "/product/", "/messages", "/sse")


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("not_found", f"No endpoint at {request.path}."), status=404)
    return defaults.page_not_found(request, exception or Http404())


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("internal_error", "The server failed to handle this request."), status=500)
    return defaults.server_error(request)
