"""OpenAPI pieces shared by every DRF endpoint: the error shape and the API-key security scheme."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField(help_text="machine-readable: unauthorized, forbidden, invalid_argument, ...")
    message = serializers.CharField(help_text="for people and agents")
    details = serializers.DictField(required=False, help_text="what the error is about (field, namespace, limit)")


class Error(serializers.Serializer):
    error = ErrorDetail()


ERROR_RESPONSES: dict[int, Any] = {
    400: OpenApiResponse(Error, description="Bad input: a wrong shape, a missing field or a limit exceeded"),
    401: OpenApiResponse(Error, description="Missing, unknown, expired or revoked API key"),
    403: OpenApiResponse(Error, description="The key has no grant for this namespace"),
    404: OpenApiResponse(Error, description="An entity named in the request does not exist"),
    409: OpenApiResponse(Error, description="The new name is taken"),
    413: OpenApiResponse(Error, description="The request body is too large"),
    429: OpenApiResponse(Error, description="Rate limit; see Retry-After"),
    502: OpenApiResponse(Error, description="The embedding provider failed (embedding_unavailable)"),
    504: OpenApiResponse(Error, description="The embedding provider did not answer in time (embedding_timeout)"),
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "access.drf.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "Also accepted: 'Authorization: Bearer <key>', 'Authorization: ApiKey <key>', "
            "'Authorization: Token <key>', 'x-momoai-key: <key>'.",
        }
