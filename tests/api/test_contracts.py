"""One contract per operation (issue 17, item 4).

Every operation served both as an MCP tool and as a REST endpoint (same name: tool name ==
OpenAPI operationId) takes its arguments and result from one declaration, its `Contract`
(graph/contracts.py): the tool's inputSchema/outputSchema and the endpoint's request and 200
schemas in the served /openapi.json must say the same thing, property by property (names,
types, enums, bounds, descriptions, what is required), so that a change to one surface alone
fails here. The REST API's documented differences are the only ones allowed: the body's
`namespace`, nullable optional arguments, non-empty strings (minLength 1) and the arguments a
`Rest(optional=True)` marker makes optional.
"""

from __future__ import annotations

import copy
import typing
from typing import Any

import pytest
from django.test import Client
from pydantic import BaseModel, model_validator

from graph.api.views import REST_ONLY as REST_ONLY_ARGUMENTS
from graph.api.views import VIEWS
from graph.contracts import CONTRACTS, Arguments
from graph.operations import OPERATIONS
from kernel.api_schema import openapi_schema
from kernel.contracts import rest_rule
from kernel.rest_contracts import rest_body
from mcp_endpoint import registry
from mcp_endpoint.tools import graph as graph_tools  # noqa: F401 (registers the graph tools)

REST_ONLY = {"namespace"}  # the body may name the namespace; an MCP connection names it once


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    response = Client().get("/openapi.json")
    assert response.status_code == 200
    return dict(response.json())


def rest_operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """operationId -> the POST operation, for every REST route."""
    return {item["post"]["operationId"]: item["post"] for item in spec["paths"].values() if "post" in item}


def on_both_surfaces(spec: dict[str, Any]) -> list[str]:
    tools = {tool.name for tool in registry.tools()}
    return sorted(tools & set(rest_operations(spec)))


# --- reading an OpenAPI schema as the JSON Schema it stands for -----------------------------------


def resolve(node: Any, spec: dict[str, Any]) -> Any:
    """`node` with every $ref replaced by its component; a `oneOf` of enum components (how
    drf-spectacular shows a nullable enum) becomes one enum, and an enum component gives only its
    type and values (not the description drf-spectacular writes for it)."""
    components = spec["components"]["schemas"]
    if isinstance(node, list):
        return [resolve(item, spec) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = resolve(components[node["$ref"].rsplit("/", 1)[-1]], spec)
        if "enum" in target:
            target = {key: target[key] for key in ("type", "enum") if key in target}
        return {**target, **resolve({k: v for k, v in node.items() if k != "$ref"}, spec)}
    resolved = {key: resolve(value, spec) for key, value in node.items()}
    branches = resolved.get("oneOf")
    if isinstance(branches, list) and all("enum" in branch for branch in branches):
        del resolved["oneOf"]
        resolved["enum"] = [value for branch in branches for value in branch["enum"]]
        resolved.setdefault("type", next(branch["type"] for branch in branches if "type" in branch))
    return resolved


def rest_optional(model: type[BaseModel]) -> set[str]:
    """Wire names marked `Rest(optional=True)` in `model` and in the item models of its lists."""
    found = set()
    for key, info in model.model_fields.items():
        if rest_rule(info.metadata).optional:
            found.add(info.alias or key)
        for argument in typing.get_args(info.annotation) or (info.annotation,):
            if isinstance(argument, type) and issubclass(argument, BaseModel):
                found |= rest_optional(argument)
    return found


def differences(mcp: Any, rest: Any, *, where: str, optional_over_rest: set[str]) -> list[str]:
    """How the REST schema `rest` (resolved, OpenAPI 3.0) differs from the MCP schema `mcp`
    (JSON Schema), beyond the REST API's documented rules."""
    if not (isinstance(mcp, dict) and isinstance(rest, dict)):
        return [] if mcp == rest else [f"{where}: {mcp!r} != {rest!r}"]
    found = []
    mcp_type, rest_type = mcp.get("type"), rest.get("type")
    if isinstance(mcp_type, list):  # ["integer", "null"] is OpenAPI 3.0's nullable integer
        assert rest.get("nullable") is True, f"{where}: not nullable over REST"
        (mcp_type,) = [kind for kind in mcp_type if kind != "null"]
    if mcp_type != rest_type:
        found.append(f"{where}: type {mcp_type!r} != {rest_type!r}")
    rest_enum = {value for value in rest.get("enum", []) if value is not None}  # null: the nullable branch
    if ("enum" in mcp or "enum" in rest) and set(mcp.get("enum", [])) != rest_enum:
        found.append(f"{where}: enum {mcp.get('enum')!r} != {rest.get('enum')!r}")
    for key in ("description", "minimum", "maximum", "maxLength", "pattern", "minItems", "maxItems"):
        if mcp.get(key) != rest.get(key):
            found.append(f"{where}: {key} {mcp.get(key)!r} != {rest.get(key)!r}")
    if mcp.get("minLength") != rest.get("minLength") and not ("minLength" not in mcp and rest["minLength"] == 1):
        found.append(f"{where}: minLength {mcp.get('minLength')!r} != {rest.get('minLength')!r}")
    mcp_properties, rest_properties = mcp.get("properties", {}), rest.get("properties", {})
    if set(mcp_properties) != set(rest_properties):
        found.append(f"{where}: properties {sorted(mcp_properties)} != {sorted(rest_properties)}")
    for name in sorted(set(mcp_properties) & set(rest_properties)):
        found += differences(
            mcp_properties[name], rest_properties[name], where=f"{where}.{name}", optional_over_rest=optional_over_rest
        )
    expected_required = [name for name in mcp.get("required", []) if name not in optional_over_rest]
    if expected_required != rest.get("required", []):
        found.append(f"{where}: required {expected_required} != {rest.get('required', [])}")
    for key in ("items", "additionalProperties"):
        if isinstance(mcp.get(key), dict) or isinstance(rest.get(key), dict):
            found += differences(
                mcp.get(key), rest.get(key), where=f"{where}.{key}", optional_over_rest=optional_over_rest
            )
    return found


def request_schema(operation: dict[str, Any], spec: dict[str, Any], name: str = "") -> dict[str, Any]:
    """The REST body schema, without the REST-only arguments (an empty object when there is no
    body): `namespace`, and those an official tool cannot gain on MCP (graph.api.views.REST_ONLY)."""
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    schema = resolve(body, spec) if body else {"type": "object", "properties": {}}
    extra = {field.name for field in REST_ONLY_ARGUMENTS.get(name, ())}
    schema["properties"] = {k: v for k, v in schema["properties"].items() if k not in REST_ONLY | extra}
    return schema


def response_schema(operation: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return dict(resolve(operation["responses"]["200"]["content"]["application/json"]["schema"], spec))


def mcp_input(tool: registry.Tool) -> dict[str, Any]:
    # A tool without arguments says so (additionalProperties: false, the spec's advice); REST
    # ignores unknown keys, as the tools do in fact.
    return {k: v for k, v in tool.input_schema.items() if not (k == "additionalProperties" and v is False)}


# --- the tests -----------------------------------------------------------------------------------


def test_every_graph_operation_is_on_both_surfaces(spec: dict[str, Any]) -> None:
    # The memory API's REST routes (memory_write, ...) and tools (add_memory, ...) have different
    # names; when they share a contract and a name, this test covers them too.
    assert on_both_surfaces(spec) == sorted(OPERATIONS) == sorted(CONTRACTS)


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_both_surfaces_read_one_declaration(name: str) -> None:
    tool, contract = registry.get(name), CONTRACTS[name]
    assert tool is not None
    assert tool.arguments is contract.arguments
    assert tool.output_schema is contract.result
    assert VIEWS[name].body.contract is contract.arguments


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_the_request_schema_is_the_input_schema(spec: dict[str, Any], name: str) -> None:
    tool = registry.get(name)
    assert tool is not None
    rest = request_schema(rest_operations(spec)[name], spec, name)
    optional = rest_optional(tool.arguments)
    assert differences(mcp_input(tool), rest, where=name, optional_over_rest=optional) == []


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_the_response_schema_is_the_output_schema(spec: dict[str, Any], name: str) -> None:
    tool = registry.get(name)
    assert tool is not None
    rest = response_schema(rest_operations(spec)[name], spec)
    assert differences(tool.output_schema, rest, where=name, optional_over_rest=set()) == []
    assert openapi_schema(tool.output_schema)["required"] == rest["required"]


@pytest.mark.parametrize(
    "drift",
    [
        lambda s: s["properties"].pop("maxDepth"),
        lambda s: s["properties"]["to"].update(type="integer"),
        lambda s: s["properties"]["direction"].update(enum=["out", "in"]),
        lambda s: s["properties"]["maxDepth"].update(maximum=99),
        lambda s: s["properties"]["from"].update(description="another text"),
        lambda s: s["required"].remove("to"),
        lambda s: s["properties"].update(extra={"type": "string"}),
    ],
)
def test_a_drift_between_the_surfaces_is_caught(spec: dict[str, Any], drift: Any) -> None:
    tool = registry.get("find_path")
    assert tool is not None
    rest = request_schema(rest_operations(spec)["find_path"], spec)
    assert differences(mcp_input(tool), rest, where="find_path", optional_over_rest=set()) == []
    drifted = copy.deepcopy(rest)
    drift(drifted)
    assert differences(mcp_input(tool), drifted, where="find_path", optional_over_rest=set()) != []


def test_a_drift_inside_list_items_is_caught(spec: dict[str, Any]) -> None:
    tool = registry.get("create_entities")
    assert tool is not None
    rest = request_schema(rest_operations(spec)["create_entities"], spec)
    optional = rest_optional(tool.arguments)
    assert optional == {"observations"}
    assert differences(mcp_input(tool), rest, where="create_entities", optional_over_rest=optional) == []
    drifted = copy.deepcopy(rest)
    drifted["properties"]["entities"]["items"]["properties"]["name"]["type"] = "integer"
    assert differences(mcp_input(tool), drifted, where="create_entities", optional_over_rest=optional) != []
    # Without the marker, REST's optional observations would be a drift.
    assert differences(mcp_input(tool), rest, where="create_entities", optional_over_rest=set()) != []


def test_the_served_schema_does_not_change_from_one_request_to_the_next() -> None:
    # drf-spectacular rewrites the schemas it is given (enums become components): the declared
    # ones must come out the same however often /openapi.json is generated.
    client = Client()
    first = client.get("/openapi.json").content
    assert client.get("/openapi.json").content == first


class Vectors(Arguments):
    vectors: list[float]


class Crossed(Arguments):
    low: int
    high: int

    @model_validator(mode="after")
    def _ordered(self) -> Crossed:
        if self.low > self.high:
            raise ValueError("low is above high")
        return self


@pytest.mark.parametrize("contract", [Vectors, Crossed])
def test_a_contract_rest_cannot_read_as_declared_is_refused(contract: type[Arguments]) -> None:
    # Rather than a REST API that silently reads less than the tool: give REST a rule first.
    with pytest.raises(TypeError):
        rest_body("Example", contract, count=lambda items, field: None)
