"""JSON Schema building blocks shared by the tool declarations (output schemas and the way
optional arguments are shown)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic.json_schema import JsonDict

STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
NUMBER: dict[str, Any] = {"type": "number"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
STRINGS: dict[str, Any] = {"type": "array", "items": STRING}


def object_schema(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An object schema whose properties are all always present."""
    return {"type": "object", "properties": properties, "required": list(properties), **extra}


def array_schema(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` or null (`properties`/`required` only apply to objects, so null passes)."""
    return {**schema, "type": [schema["type"], "null"]}


def extend(base: dict[str, Any], properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """`base` (an `object_schema`) with more always-present properties."""
    return object_schema({**base["properties"], **properties}, **extra)


def _plain_optional(schema: JsonDict) -> None:
    """Show an optional argument as its plain type: `{"type": "integer"}`, not
    `anyOf: [{integer}, {null}]` with `default: null`. Clients and models handle the plain form
    best; an explicit null is still accepted and means "not given"."""
    branches = schema.pop("anyOf", None)
    if isinstance(branches, list):
        kept = [b for b in branches if not (isinstance(b, dict) and b.get("type") == "null")]
        if len(kept) == 1 and isinstance(kept[0], dict):
            schema.update(kept[0])
        else:
            schema["anyOf"] = kept
    if schema.get("default", ...) is None:
        del schema["default"]


def optional(description: str, *, alias: str | None = None, **constraints: Any) -> Any:
    """An optional argument: omitted (or null) leaves the store's default in force."""
    if alias is not None:
        constraints["alias"] = alias
    return Field(default=None, description=description, json_schema_extra=_plain_optional, **constraints)
