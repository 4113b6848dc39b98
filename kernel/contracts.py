"""Building blocks of operation contracts: what an operation takes and what it returns, declared
once and read by every surface (the MCP tools' `inputSchema` / `outputSchema`, the REST request
validation and `/openapi.json`).

An app declares, per operation, a `Contract`: a pydantic model of its arguments (wire names, types,
constraints, descriptions) and a JSON Schema of its result (graph/contracts.py). The MCP registry
turns the model into a tool's `inputSchema` with `self_contained`; the REST edge derives its
request validation and OpenAPI schema from the same model (kernel/rest_contracts.py), so the two
cannot drift. Where the REST API reads an argument differently from the MCP tool (whose shapes
are the official memory server's), the declaration says so with a `Rest` marker.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field
from pydantic.json_schema import JsonDict

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True)
class Contract(Generic[Model]):
    """One operation's contract: its argument model and the JSON Schema (draft 2020-12) of its
    result, which every successful call conforms to."""

    arguments: type[Model]
    result: dict[str, Any]


@dataclass(frozen=True)
class Rest:
    """How the REST API reads an argument where it differs from the MCP tool; pydantic ignores it.

    - `blank`: an empty string is a value (e.g. a query matching everything). Other strings are
      refused empty over REST before the store sees them.
    - `optional`: REST requests may leave it out (the store has a default), though the tool's
      schema, the official server's, requires it.
    - `trim`: surrounding whitespace is dropped over REST.
    """

    blank: bool = False
    optional: bool = False
    trim: bool = False


NO_REST_RULE = Rest()


def rest_rule(metadata: list[Any]) -> Rest:
    """The `Rest` marker among a field's metadata (the default when there is none)."""
    return next((item for item in metadata if isinstance(item, Rest)), NO_REST_RULE)


# --- result schemas ------------------------------------------------------------------------------

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


# --- arguments -----------------------------------------------------------------------------------


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


def self_contained(model: type[BaseModel]) -> dict[str, Any]:
    """The argument model as a self-contained JSON Schema object (wire names).

    `$ref`s are inlined and pydantic's generated `title`s dropped: several MCP clients cannot
    resolve references, and titles only add tokens to the model's context."""
    schema = model.model_json_schema(by_alias=True)
    definitions = schema.pop("$defs", {})
    inlined = _inline(schema, definitions)
    inlined["type"] = "object"
    inlined.setdefault("properties", {})
    if not inlined["properties"]:
        # The spec's recommendation for a tool without parameters.
        inlined["additionalProperties"] = False
    return inlined


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = definitions[node["$ref"].rsplit("/", 1)[-1]]
            merged = {**copy.deepcopy(target), **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline(merged, definitions)
        return {
            key: _inline(value, definitions)
            for key, value in node.items()
            # Drop generated titles (a "title" key inside "properties" is a field name: keep it).
            if not (key == "title" and isinstance(value, str))
        }
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node
