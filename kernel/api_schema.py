"""OpenAPI pieces shared by every DRF endpoint: the error shape, the API-key security scheme, and
components whose schema is declared as JSON Schema (the operation contracts, kernel/contracts.py)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
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


# --- components declared as JSON Schema ----------------------------------------------------------


# Compared by identity (a schema is a dict, so no value hash); drf-spectacular looks it up.
@dataclass(frozen=True, eq=False)
class Documented:
    """A request body or response documented by a ready schema (OpenAPI 3.0): give it to
    `extend_schema(request=..., responses=...)` and it becomes the component `name`."""

    name: str
    schema: dict[str, Any]


class DocumentedSchema(OpenApiSerializerExtension):
    target_class = Documented
    match_subclasses = True

    def get_name(self, auto_schema: Any, direction: str) -> str:
        return str(self.target.name)

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        # A copy: drf-spectacular rewrites the schemas it is given (enums become components).
        return copy.deepcopy(self.target.schema)


def openapi_schema(schema: Any) -> Any:
    """A JSON Schema (draft 2020-12, as MCP declares results) in OpenAPI 3.0's dialect: a type
    that may be null (`"type": ["integer", "null"]`) becomes `"type": "integer", "nullable": true`."""
    if isinstance(schema, list):
        return [openapi_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: openapi_schema(value) for key, value in schema.items()}
    kind = converted.get("type")
    if isinstance(kind, list) and "null" in kind:
        others = [item for item in kind if item != "null"]
        if len(others) == 1:
            converted["type"] = others[0]
            converted["nullable"] = True
    return converted
