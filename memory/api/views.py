"""REST memory API: `POST /v1/memory/{write,search,delete,clear}` (the seed's routes and shapes).

Each view checks the body's shape, maps wire names to keyword names and performs the memory
operation (`access.operations.perform`: the runner checks grants, the operation the values).
Authentication, rate limiting and error translation (one error shape; embedding failures 502,
timeouts 504) happen in shared code, not here.

The namespace comes from the body's `namespace` or the X-Memory-Namespace header, read the same way
as on every REST route (`access.drf.requested_namespace`: both given and different is a
400). Write needs one; search without one covers every namespace the key can read; clear without
one clears the key's default namespace. Responses name the namespace acted on in their
X-Memory-Namespace header (search: only when it searched one).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access import drf
from access.operations import perform
from access.permissions import Access
from graph.api.views import NAMESPACE_HEADER
from kernel.api_schema import ERROR_RESPONSES
from memory import operations
from memory.api import serializers as s
from memory.services import NewMemory

_ERRORS = {status: ERROR_RESPONSES[status] for status in (400, 401, 403, 413, 429)}
# Write and search embed text, which may go to an outside provider.
_EMBEDDING_ERRORS = {**_ERRORS, 502: ERROR_RESPONSES[502], 504: ERROR_RESPONSES[504]}


class MemoryView(APIView):
    input_serializer: type[serializers.Serializer]

    def arguments(self, request: Request) -> tuple[Access, dict[str, Any]]:
        """The caller's access and the checked body (wire names), its `namespace` the one the
        request names in the body or the header (None: neither)."""
        if not isinstance(request.data, dict):
            raise serializers.ValidationError({"non_field_errors": ["the request body must be a JSON object"]})
        checked = self.input_serializer(data=request.data)
        checked.is_valid(raise_exception=True)
        assert isinstance(request.auth, Access)
        body = dict(checked.validated_data)
        if "namespace" in self.input_serializer().fields:
            body["namespace"] = drf.requested_namespace(request, body.get("namespace"))
        return request.auth, body


class WriteView(MemoryView):
    input_serializer = s.WriteIn

    @extend_schema(
        operation_id="memory_write",
        parameters=[NAMESPACE_HEADER],
        tags=["memory"],
        summary="Write a memory.",
        description="Stores `text` in `namespace` (or the X-Memory-Namespace header; a write grant is needed); "
        "the very next search finds it, by its words and by meaning. `ttlMs` makes it expire. A text that says the same as a current memory of "
        "the same actor in the namespace is not stored twice: the answer's `id` and `duplicateOf` name that memory, "
        "whose mentionCount and lastSeen rise (`dedupe: false` stores it anyway).",
        request=s.WriteIn,
        responses={200: s.WriteOut, **_EMBEDDING_ERRORS},
    )
    def post(self, request: Request) -> Response:
        access, body = self.arguments(request)
        if body["namespace"] is None:
            raise serializers.ValidationError(
                {"namespace": ["This field is required (in the body or the X-Memory-Namespace header)."]}
            )
        memory = NewMemory(
            text=body["text"],
            actor_id=body.get("actorId"),
            tags=body.get("tags"),
            ttl_ms=body.get("ttlMs"),
            valid_from=body.get("validFrom"),
            valid_to=body.get("validTo"),
        )
        (written,) = perform(
            access,
            operations.WRITE,
            namespace=body["namespace"],
            memories=[memory],
            dedupe=body.get("dedupe", True),
            infer=body.get("infer", False),
        )
        return Response(written, headers=drf.namespace_header(written["namespace"]))


class SearchView(MemoryView):
    input_serializer = s.SearchIn

    @extend_schema(
        operation_id="memory_search",
        parameters=[NAMESPACE_HEADER],
        tags=["memory"],
        summary="Search memories by meaning.",
        description="Ranks memories and knowledge-graph observations by meaning and exact terms, best first, "
        "in `namespace` (a read grant is needed) or, without it, in every namespace the key can read. "
        "Expired memories are never returned. Current facts only, unless `asOf` (what was true then) or "
        "`includeExpired: true` (every fact, each marked with `current`, `validFrom`, `validTo`).",
        request=s.SearchIn,
        responses={200: s.SearchOut, **_EMBEDDING_ERRORS},
    )
    def post(self, request: Request) -> Response:
        access, body = self.arguments(request)
        found = perform(
            access,
            operations.SEARCH,
            namespace=body.get("namespace"),
            query=body["query"],
            actor_id=body.get("actorId"),
            top_k=body.get("topK"),
            as_of=body.get("asOf"),
            include_expired=body.get("includeExpired"),
        )
        return Response(found, headers=drf.namespace_header(body["namespace"]))


class DeleteView(MemoryView):
    input_serializer = s.DeleteIn

    @extend_schema(
        operation_id="memory_delete",
        tags=["memory"],
        summary="Delete a memory.",
        description="Deletes one memory written with /v1/memory/write. `deleted` is false when there is no "
        "such memory or the key cannot write its namespace (the two are not told apart). Knowledge-graph "
        "observations are deleted with /v1/graph/delete_observations. A deleted memory can be restored with "
        "/v1/memory/restore for MEMORYHUB_HISTORY_RETENTION_DAYS; `purge: true` erases it and its history at once.",
        request=s.DeleteIn,
        responses={200: s.DeleteOut, **_ERRORS},
    )
    def post(self, request: Request) -> Response:
        access, body = self.arguments(request)
        return Response(perform(access, operations.DELETE, id=body["id"], purge=body.get("purge", False)))


class ClearView(MemoryView):
    input_serializer = s.ClearIn

    @extend_schema(
        operation_id="memory_clear",
        parameters=[NAMESPACE_HEADER],
        tags=["memory"],
        summary="Clear the memories of a namespace.",
        description="Deletes every memory of `namespace` (or the X-Memory-Namespace header; default: the key's "
        "default namespace, named in the answer; a write grant is needed), or only those of `actorId`. Knowledge-graph entities and their observations are kept.",
        request=s.ClearIn,
        responses={200: s.ClearOut, **_ERRORS},
    )
    def post(self, request: Request) -> Response:
        access, body = self.arguments(request)
        cleared = perform(access, operations.CLEAR, namespace=body["namespace"], actor_id=body.get("actorId"))
        return Response(cleared, headers=drf.namespace_header(cleared["namespace"]))


_NOT_FOUND = {**_ERRORS, 404: ERROR_RESPONSES[404]}


class HistoryView(MemoryView):
    input_serializer = s.HistoryIn

    @extend_schema(
        operation_id="memory_get_history",
        tags=["memory"],
        summary="The history of a memory.",
        description="Every version of a memory or observation (or of an entity or relation, by its ent_/rel_ id), "
        "newest first: the fields before and after, when, which key, user and actor, through which surface and "
        "operation. Looked up in every namespace the key can read; 404 when there is none there. The whole "
        "history of an entity with its observations and relations is /v1/graph/entity_history.",
        request=s.HistoryIn,
        responses={200: s.HistoryOut, **_NOT_FOUND},
    )
    def post(self, request: Request) -> Response:
        access, body = self.arguments(request)
        return Response(perform(access, operations.HISTORY, id=body["id"]))


class UpdateView(MemoryView):
    input_serializer = s.UpdateIn

    @extend_schema(
        operation_id="memory_update",
        tags=["memory"],
        summary="Change a memory's text in place.",
        description="The memory (or knowledge-graph observation) gets the new text and keeps its id; keyword "
        "search finds the new text at once and its vector is made again. The old text stays in its history. "
        "Looked up in every namespace the key can write; 404 otherwise; 400 for empty or oversized text; 409 for "
        "a past fact (superseded or closed: restore one of its versions, or supersede the current one).",
        request=s.UpdateIn,
        responses={200: s.UpdateOut, **_NOT_FOUND, 409: ERROR_RESPONSES[409]},
    )
    def post(self, request: Request) -> Response:
        access, body = self.arguments(request)
        return Response(perform(access, operations.UPDATE, id=body["id"], text=body["text"]))


class SupersedeView(MemoryView):
    input_serializer = s.SupersedeIn

    @extend_schema(
        operation_id="memory_supersede",
        tags=["memory"],
        summary="Replace a fact that changed.",
        description="Closes the memory (validTo = now; it stays, for asOf and includeExpired searches and in its "
        "history) and writes its successor with `text`, valid from the same instant, linked both ways "
        "(`supersedes` / `supersededBy`), in one transaction. Looked up in every namespace the key can write: 404 "
        "otherwise; 409 naming the current successor when it is already superseded (of two supersessions at once, "
        "one wins).",
        request=s.SupersedeIn,
        responses={200: s.SupersedeOut, **_NOT_FOUND, 409: ERROR_RESPONSES[409]},
    )
    def post(self, request: Request) -> Response:
        access, body = self.arguments(request)
        done = perform(access, operations.SUPERSEDE, id=body["id"], text=body["text"])
        return Response(done, headers=drf.namespace_header(done["namespace"]))


class RestoreView(MemoryView):
    input_serializer = s.RestoreIn

    @extend_schema(
        operation_id="memory_restore",
        tags=["memory"],
        summary="Restore a memory, entity or relation.",
        description="Without `version`, a deleted (or expired) memory, observation, entity or relation comes back "
        "with the same id as it was just before (an entity with what the same call deleted with it; an "
        "observation with its entity if that is gone too). With `version`, it gets that version's fields back. "
        "Deleted objects can be restored for MEMORYHUB_HISTORY_RETENTION_DAYS (default 30) unless purged. "
        "Looked up in every namespace the key can write: 404 otherwise, or for a version that does not exist; "
        "409 when a name or text is taken again, or when the version is one where a superseded memory was current "
        "(its successor stands: supersede that one). A memory gets the version's validity back.",
        request=s.RestoreIn,
        responses={200: s.RestoreOut, **_NOT_FOUND, 409: ERROR_RESPONSES[409]},
    )
    def post(self, request: Request) -> Response:
        access, body = self.arguments(request)
        return Response(perform(access, operations.RESTORE, id=body["id"], version=body.get("version")))
