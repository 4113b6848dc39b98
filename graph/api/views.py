"""REST graph API: one POST endpoint per graph operation, `/v1/graph/<operation>`.

Each view is the same three steps (read the body by the operation's contract, map wire names to
keyword names, `access.operations.perform`), so the views are generated from the operations. The
body is read, and body and answer documented in /openapi.json, from the same contract as the MCP
tool of the same name (graph/contracts.py), plus the body's `namespace`. Authentication, grants,
rate limiting and error translation happen in shared code, not here.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access import drf, namespaces
from access.operations import Reach, perform
from access.permissions import Access
from graph import limits
from graph.contracts import CONTRACTS, DEDUPE
from graph.operations import OPERATIONS, keyword_arguments
from kernel.api_schema import ERROR_RESPONSES, Documented, openapi_schema
from kernel.rest_contracts import RestBody, RestField, boolean_rule, rest_body, text_rule

NAMESPACE_HEADER = OpenApiParameter(
    drf.NAMESPACE_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="The namespace, instead of the body's `namespace` (both: they must be equal, else 400); "
    "without either, the key's default namespace. The response's X-Memory-Namespace header names the "
    "namespace acted on.",
)

# Every graph request may name its namespace; else X-Memory-Namespace, else the key's default.
NAMESPACE = RestField(
    "namespace",
    text_rule(trim=True, max_length=namespaces.MAX_NAMESPACE_LENGTH, pattern=namespaces.PATTERN),
    {
        "type": "string",
        "minLength": 1,
        "maxLength": namespaces.MAX_NAMESPACE_LENGTH,
        "pattern": namespaces.PATTERN,
        "description": "e.g. org:team:project; default: the X-Memory-Namespace header, else the key's default "
        "namespace",
    },
)

# add_observations is one of the official server's tools, whose MCP arguments stay exactly its own:
# its `dedupe` flag is offered on REST only (upsert_entities has it in its contract).
REST_ONLY: dict[str, tuple[RestField, ...]] = {
    "add_observations": (
        RestField("dedupe", boolean_rule(nullable=True), {"type": "boolean", "nullable": True, "description": DEDUPE}),
    ),
}


def _count(items: list[Any], field: str) -> None:
    limits.items(items, field=field)


class GraphOperationView(APIView):
    operation: str
    body: RestBody

    def post(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, dict) else None
        if body is None:
            raise serializers.ValidationError({"non_field_errors": ["the request body must be a JSON object"]})
        arguments = self.body.validate(body)
        namespace = drf.requested_namespace(request, arguments.pop("namespace", None))
        assert isinstance(request.auth, Access)
        result = perform(
            request.auth,
            self.operation,
            namespace=namespace,
            **keyword_arguments(arguments),
        )
        # perform() acted on this one (it resolved it the same way, or raised before acting).
        target = (
            None if OPERATIONS[self.operation].reach is Reach.DATABASE else request.auth.resolve_namespace(namespace)
        )
        return Response(result, headers=drf.namespace_header(target))


def _endpoint(operation: str) -> type[GraphOperationView]:
    spec, contract = OPERATIONS[operation], CONTRACTS[operation]
    name = operation.title().replace("_", "")
    body = rest_body(
        name,
        contract.arguments,
        count=_count,
        extra=(() if spec.reach is Reach.DATABASE else (NAMESPACE,)) + REST_ONLY.get(operation, ()),
    )
    doc = (spec.function.__doc__ or "").strip()
    summary, _, description = doc.partition("\n\n")
    kind = "read" if spec.read_only else "write"
    if spec.reach is Reach.DATABASE:
        access_note = "Needs a key with a write grant on `*` (it affects every namespace)."
    else:
        access_note = f"Needs a {kind} grant on the namespace."
    view = type(f"{name}View", (GraphOperationView,), {"operation": operation, "body": body})
    return extend_schema_view(
        post=extend_schema(
            operation_id=operation,
            tags=["graph"],
            summary=" ".join(summary.split()),
            description=f"{' '.join(description.split())}\n\n{access_note}".strip(),
            request=body,
            responses={200: Documented(f"{name}Result", openapi_schema(contract.result)), **ERROR_RESPONSES},
            parameters=[] if spec.reach is Reach.DATABASE else [NAMESPACE_HEADER],
        )
    )(view)


VIEWS: dict[str, type[GraphOperationView]] = {name: _endpoint(name) for name in OPERATIONS}
