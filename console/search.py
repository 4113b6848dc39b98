"""Console area: search by meaning and keywords together (`memory_search`, hybrid) across the
namespaces the user can read, or one of them, with filters kept in the URL (a search is a link).

Each hit shows who wrote it (`memory_authors`: the key and surface of its first version) next to
its actor, its time and its validity. The page answers 400 with the message by the field for a
bad filter; an empty query shows a hint, not an error.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import URLPattern, path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from access import operations, selectors
from console.common import MAX_QUERY_LENGTH, console_access, entity_url, forbidden, url_with, user, with_usernames
from kernel.errors import DomainError
from memory import limits

# Hits per page; "more" asks for up to the operation's maximum (memory.limits.MAX_TOP_K).
PAGE = 20
TEXT_CLIP = 600
# The namespace select lists at most this many (an operator's may be long; the query string
# still accepts any name).
MAX_NAMESPACE_CHOICES = 500
# The form's fields, as the URL names them, and the operation's argument (or error field) each feeds.
FIELDS = {
    "q": "query",
    "namespace": "namespace",
    "tags": "tags",
    "actor": "actorId",
    "key": "key",
    "from": "writtenFrom",
    "to": "writtenTo",
    "asOf": "asOf",
    "expired": "includeExpired",
    "top": "topK",
}


def clip(text: str, length: int = TEXT_CLIP) -> str:
    return text if len(text) <= length else f"{text[: length - 1]}…"


def _form(request: HttpRequest) -> dict[str, str]:
    values = {name: request.GET.get(name, "").strip() for name in FIELDS}
    values["expired"] = "1" if values["expired"] else ""
    return values


def _arguments(form: dict[str, str]) -> dict[str, Any]:
    """The memory_search arguments of the form (each checked by the operation itself)."""
    tags = [tag.strip() for tag in form["tags"].split(",") if tag.strip()]
    wanted = limits.MAX_TOP_K if form["top"] == "more" else PAGE
    return {
        "query": form["q"],
        "mode": "hybrid",
        "top_k": wanted,
        "tags": tags or None,
        "actor_id": form["actor"] or None,
        "key": form["key"] or None,
        "written_from": form["from"] or None,
        "written_to": form["to"] or None,
        "as_of": form["asOf"] or None,
        "include_expired": bool(form["expired"]),
    }


def _error_field(error: DomainError) -> str:
    field = str(error.details.get("field", ""))
    for name, argument in FIELDS.items():
        if field == argument:
            return name
    return "q"


@never_cache
@login_required
@require_safe
def search(request: HttpRequest) -> HttpResponse:
    access = console_access(request)
    form = _form(request)
    names = list(selectors.reachable_namespaces(access).values_list("name", flat=True)[:MAX_NAMESPACE_CHOICES])
    keys = list(selectors.keys_for_user(user(request)).values_list("prefix", flat=True)[:100])
    context: dict[str, Any] = {
        "section": "console",
        "area": "search",
        "form": form,
        "namespaces": names,
        "keys": keys,
        "max_query_length": MAX_QUERY_LENGTH,
        "hits": None,
        "errors": {},
    }
    status = 200
    if len(request.GET.get("q", "")) > MAX_QUERY_LENGTH:
        context["errors"] = {"q": f"The query is too long: at most {MAX_QUERY_LENGTH} characters."}
        status = 400
    elif form["q"]:
        try:
            result = operations.perform(
                access, "memory_search", namespace=form["namespace"] or None, **_arguments(form)
            )
            hits = result["results"]
            authors = (
                operations.perform(
                    access, "memory_authors", namespace=form["namespace"] or None, ids=[hit["id"] for hit in hits]
                )
                if hits
                else {}
            )
        except DomainError as error:
            if error.code == "forbidden":
                return forbidden(request, form["namespace"])
            context["errors"] = {_error_field(error): error.message}
            status = 400
        else:
            named = dict(zip(authors, with_usernames(list(authors.values())), strict=True))
            context["hits"] = [
                {
                    **hit,
                    "clipped": clip(hit["text"]),
                    "author": named.get(hit["id"], {}),
                    "entity_url": entity_url(hit["namespace"], hit["entityName"]) if hit["entityName"] else "",
                }
                for hit in hits
            ]
            context["total"] = result["totalResults"]
            context["query_time"] = result["queryTime"]
            if form["top"] != "more" and len(hits) == PAGE:
                context["more_url"] = url_with(request.path, **{**form, "top": "more"})
    return render(request, "console/search.html", context, status=status)


urlpatterns: list[URLPattern] = [path("search", search, name="search")]
