"""Console area: the knowledge graph drawn (/console/namespaces/<ns>/graph), the JSON its script
reads (graph.json), and entity pages (/console/namespaces/<ns>/entities/<name>).

A namespace may hold 100,000 entities: the page never draws everything. It opens on a sample (the
most connected entities, `graph_sample`) or, with `?focus=<name>`, that entity's neighbourhood
(`graph_neighbourhood`), both bounded (graph/browse.py); the script adds neighbourhoods on request
up to MAX_ON_SCREEN nodes, then says so instead of drawing more. Every read goes through the runner
with the signed-in user's access; without JavaScript the page is the same drawing as a list.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

import graph.operations  # noqa: F401 (declares the graph operations `perform` runs)
import kernel.url_converters  # noqa: F401 (registers <anytext:...>)
from access.exceptions import NamespaceForbidden
from access.operations import perform
from console.common import console_access, forbidden, memory_url, query_text, url_with, valid_namespace, with_usernames
from graph.browse import MAX_DRAWING
from graph.exceptions import EntityNotFound
from kernel.errors import DomainError, InvalidArgument
from kernel.http_errors import error_response

# Nodes the script keeps on screen at most: expanding past it is refused with a notice.
MAX_ON_SCREEN = MAX_DRAWING
# What the page and the script ask for.
SAMPLE_SIZE = 60
NEIGHBOURHOOD_SIZE = 150
FIND_LIMIT = 20
PANEL_FACTS = 20
ENTITY_PAGE_FACTS = 50
# Versions an entity page lists (entity_history answers at most 1,000).
HISTORY_SHOWN = 100
MODES = ("sample", "neighbours", "find", "entity")


def _optional(request: HttpRequest, name: str) -> str | None:
    return query_text(request, name) or None


def _depth(request: HttpRequest) -> int:
    return 2 if request.GET.get("depth") == "2" else 1


def _drawing(access: Any, namespace: str, request: HttpRequest, focus: str | None) -> dict[str, Any]:
    filters = {"entity_type": _optional(request, "entityType"), "relation_type": _optional(request, "relationType")}
    if focus:
        return perform(
            access,
            "graph_neighbourhood",
            namespace=namespace,
            names=[focus],
            depth=_depth(request),
            limit=NEIGHBOURHOOD_SIZE,
            **filters,
        )
    return perform(access, "graph_sample", namespace=namespace, limit=SAMPLE_SIZE, **filters)


@never_cache
@login_required
@require_safe
def graph_page(request: HttpRequest, namespace: str) -> HttpResponse:
    access = console_access(request)
    namespace = valid_namespace(namespace)
    focus = query_text(request, "focus")
    status, error = 200, ""
    try:
        entity_types = perform(access, "list_entity_types", namespace=namespace)["types"]
        relation_types = perform(access, "list_relation_types", namespace=namespace)["types"]
        try:
            drawing = _drawing(access, namespace, request, focus)
        except EntityNotFound:
            error, status = f"There is no entity called {focus!r} in this namespace; showing a sample.", 404
            focus = ""
            drawing = _drawing(access, namespace, request, None)
    except NamespaceForbidden:
        return forbidden(request, namespace)
    except InvalidArgument as invalid:  # an over-long name or type
        return render(
            request,
            "console/graph.html",
            {"section": "console", "area": "graph", "namespace": namespace, "error": invalid.message},
            status=400,
        )
    config = {
        "namespace": namespace,
        "dataUrl": reverse("console:graph-data", args=[namespace]),
        # Entity pages are this prefix and the quoted name (the script appends encodeURIComponent(name)).
        "entityUrl": reverse("console:graph", args=[namespace]).removesuffix("graph") + "entities/",
        "focus": focus,
        "depth": _depth(request),
        "entityType": request.GET.get("entityType", ""),
        "relationType": request.GET.get("relationType", ""),
        "maxOnScreen": MAX_ON_SCREEN,
        "drawing": drawing,
    }
    context = {
        "section": "console",
        "area": "graph",
        "namespace": namespace,
        "focus": focus,
        "depth": config["depth"],
        "drawing": drawing,
        "entity_types": entity_types,
        "relation_types": relation_types,
        "entity_type": config["entityType"],
        "relation_type": config["relationType"],
        "config": config,
        "error": error,
    }
    return render(request, "console/graph.html", context, status=status)


def _json_drawing(access: Any, namespace: str, request: HttpRequest, mode: str) -> dict[str, Any]:
    name = _optional(request, "name")
    if mode == "sample":
        return perform(
            access,
            "graph_sample",
            namespace=namespace,
            limit=SAMPLE_SIZE,
            entity_type=_optional(request, "entityType"),
            relation_type=_optional(request, "relationType"),
        )
    if name is None:
        raise InvalidArgument(f"mode={mode} needs a name", field="name")
    if mode == "neighbours":
        return perform(
            access,
            "graph_neighbourhood",
            namespace=namespace,
            names=[name],
            depth=_depth(request),
            limit=NEIGHBOURHOOD_SIZE,
            entity_type=_optional(request, "entityType"),
            relation_type=_optional(request, "relationType"),
        )
    facts = perform(access, "entity_facts", namespace=namespace, name=name, limit=PANEL_FACTS)
    return {**facts, "observations": [{**o, "url": memory_url(o["id"])} for o in facts["observations"]]}


@never_cache
@login_required
@require_safe
def graph_data(request: HttpRequest, namespace: str) -> HttpResponse:
    """The graph view's data as JSON: `mode=sample` (filters `entityType`, `relationType`),
    `neighbours` (`name`, `depth` 1|2, same filters), `find` (`q`: matching entities' names and
    types), `entity` (`name`: its facts for the side panel). Errors in the API's error shape."""
    mode = request.GET.get("mode", "sample")
    try:
        namespace = valid_namespace(namespace)
        if mode not in MODES:
            raise InvalidArgument(f"mode must be one of {', '.join(MODES)}", field="mode")
        if mode == "find":
            query = query_text(request)
            if not query:
                raise InvalidArgument("find needs q, the words to look for", field="q")
            found = perform(
                console_access(request),
                "search_nodes",
                namespace=namespace,
                query=query,
                entity_type=_optional(request, "entityType"),
                limit=FIND_LIMIT,
            )
            body = {"matches": [{"name": e["name"], "entityType": e["entityType"]} for e in found["entities"]]}
        else:
            body = _json_drawing(console_access(request), namespace, request, mode)
    except DomainError as error:
        return error_response(error)
    except Http404:
        return error_response(EntityNotFound(namespace))
    return JsonResponse(body)


@never_cache
@login_required
@require_safe
def entity_page(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    access = console_access(request)
    namespace = valid_namespace(namespace)
    try:
        observation_offset = int(request.GET.get("observations", 0) or 0)
        relation_offset = int(request.GET.get("relations", 0) or 0)
    except ValueError:
        raise Http404("no such page") from None
    try:
        facts = perform(
            access,
            "entity_facts",
            namespace=namespace,
            name=name,
            limit=ENTITY_PAGE_FACTS,
            observation_offset=observation_offset,
            relation_offset=relation_offset,
        )
        history = perform(access, "entity_history", namespace=namespace, name=name)
    except NamespaceForbidden:
        return forbidden(request, namespace)
    except (EntityNotFound, InvalidArgument):
        raise Http404("no such entity") from None
    here = reverse("console:entity", args=[namespace, name])
    observations = [{**o, "url": memory_url(o["id"])} for o in with_usernames(facts["observations"])]
    versions = history["versions"][:HISTORY_SHOWN]
    context = {
        "section": "console",
        "area": "graph",
        "namespace": namespace,
        "entity": facts["entity"],
        "observations": observations,
        "outgoing": facts["outgoing"],
        "incoming": facts["incoming"],
        "versions": [_version_row(v) for v in with_usernames(versions)],
        "more_versions": len(history["versions"]) - len(versions),
        "graph_url": url_with(reverse("console:graph", args=[namespace]), focus=name),
        "more_observations": url_with(
            here, observations=facts["nextObservationOffset"], relations=relation_offset or None
        )
        if facts["nextObservationOffset"] is not None
        else "",
        "more_relations": url_with(here, relations=facts["nextRelationOffset"], observations=observation_offset or None)
        if facts["nextRelationOffset"] is not None
        else "",
        "paged": bool(observation_offset or relation_offset),
        "here": here,
    }
    return render(request, "console/entity.html", context)


# The fields of a kept state that a person reads, in the order shown.
_STATE_FIELDS = (
    "text",
    "name",
    "entityType",
    "entityName",
    "from",
    "to",
    "relationType",
    "validFrom",
    "validTo",
    "expiresAt",
)


def _version_row(version: dict[str, Any]) -> dict[str, Any]:
    """One history version with its changed fields side by side (before, after)."""
    before, after = version.get("before") or {}, version.get("after") or {}
    changes = []
    for field in _STATE_FIELDS:
        old, new = before.get(field), after.get(field)
        if old != new:
            changes.append({"field": field, "before": old, "after": new})
    text = after.get("text", before.get("text")) if version["kind"] == "observation" else None
    return {
        **version,
        "changes": changes,
        "text": text,
        "url": memory_url(version["id"]) if version["kind"] == "observation" else "",
    }


urlpatterns: list[URLPattern] = [
    path("namespaces/<str:namespace>/graph", graph_page, name="graph"),
    path("namespaces/<str:namespace>/graph.json", graph_data, name="graph-data"),
    path("namespaces/<str:namespace>/entities/<anytext:name>", entity_page, name="entity"),
]
