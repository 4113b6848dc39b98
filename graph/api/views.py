"""REST graph API: one POST endpoint per graph operation, `/v1/graph/<operation>`.

Each view is the same three steps (check the input shape, map wire names to keyword names,
`access.operations.perform`), so the views are generated from one table. Authentication, grants,
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

from access import drf
from access.operations import Reach, perform
from access.permissions import Access
from graph.api import serializers as s
from graph.operations import OPERATIONS, keyword_arguments
from kernel.api_schema import ERROR_RESPONSES

NAMESPACE_HEADER = OpenApiParameter(
    drf.NAMESPACE_HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="The namespace, instead of the body's `namespace` (both: they must be equal, else 400); "
    "without either, the key's default namespace. The response's X-Memory-Namespace header names the "
    "namespace acted on.",
)


class GraphOperationView(APIView):
    operation: str
    input_serializer: type[serializers.Serializer]

    def post(self, request: Request) -> Response:
        body = request.data if isinstance(request.data, dict) else None
        if body is None:
            raise serializers.ValidationError({"non_field_errors": ["the request body must be a JSON object"]})
        checked = self.input_serializer(data=body)
        checked.is_valid(raise_exception=True)
        arguments: dict[str, Any] = dict(checked.validated_data)
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


def _endpoint(operation: str, request: type[serializers.Serializer], response: Any) -> type[GraphOperationView]:
    spec = OPERATIONS[operation]
    doc = (spec.function.__doc__ or "").strip()
    summary, _, description = doc.partition("\n\n")
    kind = "read" if spec.read_only else "write"
    if spec.reach is Reach.DATABASE:
        access_note = "Needs a key with a write grant on `*` (it affects every namespace)."
    else:
        access_note = f"Needs a {kind} grant on the namespace."
    view = type(
        f"{operation.title().replace('_', '')}View",
        (GraphOperationView,),
        {
            "operation": operation,
            "input_serializer": request,
        },
    )
    return extend_schema_view(
        post=extend_schema(
            operation_id=operation,
            tags=["graph"],
            summary=" ".join(summary.split()),
            description=f"{' '.join(description.split())}\n\n{access_note}".strip(),
            request=request,
            responses={200: response, **ERROR_RESPONSES},
            parameters=[] if spec.reach is Reach.DATABASE else [NAMESPACE_HEADER],
        )
    )(view)


_ENDPOINTS: list[tuple[str, type[serializers.Serializer], Any]] = [
    ("create_entities", s.CreateEntitiesIn, s.CreateEntitiesOut),
    ("create_relations", s.CreateRelationsIn, s.CreateRelationsOut),
    ("add_observations", s.AddObservationsIn, s.AddObservationsOut),
    ("delete_entities", s.DeleteEntitiesIn, s.DeleteResult),
    ("delete_observations", s.DeleteObservationsIn, s.DeleteResult),
    ("delete_relations", s.DeleteRelationsIn, s.DeleteResult),
    ("upsert_entities", s.UpsertEntitiesIn, s.UpsertEntitiesOut),
    ("merge_entities", s.MergeEntitiesIn, s.MergeEntitiesOut),
    ("rename_entity", s.RenameEntityIn, s.Entity),
    ("compact", s.CompactIn, s.CompactOut),
    ("read_graph", s.ReadGraphIn, s.ReadGraphOut),
    ("search_nodes", s.SearchNodesIn, s.SearchNodesOut),
    ("open_nodes", s.OpenNodesIn, s.GraphPage),
    ("get_entity", s.NameIn, s.Entity),
    ("batch_get_entities", s.BatchGetEntitiesIn, s.BatchGetEntitiesOut),
    ("entity_exists", s.EntityExistsIn, s.EntityExistsOut),
    ("graph_stats", s.NamespacedIn, s.GraphStatsOut),
    ("list_entity_types", s.NamespacedIn, s.TypeListOut),
    ("list_relation_types", s.NamespacedIn, s.TypeListOut),
    ("search_relations", s.SearchRelationsIn, s.SearchRelationsOut),
    ("degree", s.DegreeIn, s.Degree),
    ("describe_entity", s.DescribeEntityIn, s.DescribeEntityOut),
    ("get_neighbors", s.GetNeighborsIn, s.GetNeighborsOut),
    ("extract_subgraph", s.ExtractSubgraphIn, s.GraphPage),
    ("find_path", s.FindPathIn, s.FindPathOut),
    ("find_all_paths", s.FindAllPathsIn, s.FindAllPathsOut),
    ("export_graph", s.ExportGraphIn, s.ExportGraphOut),
]
VIEWS: dict[str, type[GraphOperationView]] = {name: _endpoint(name, i, o) for name, i, o in _ENDPOINTS}
