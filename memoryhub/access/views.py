"""Self-service pages: sign in, manage one's own API keys, browse the namespaces one can read.

Views stay thin. Keys are written by `memoryhub.access.services`; graph data is read through
`graph.operations.perform` with the signed-in user's access (`selectors.user_access`), the one
place where grants are checked, so a page can never show more than a key of the user could.
Every page is private to the user, so none may be cached (`never_cache`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from graph import namespaces, operations
from graph.exceptions import EntityNotFound, InvalidArgument
from memoryhub.access import selectors, services
from memoryhub.access.exceptions import NamespaceForbidden
from memoryhub.access.forms import KeyCreateForm
from memoryhub.access.models import ApiKey
from memoryhub.access.permissions import Access
from memoryhub.errors import DomainError

NAMESPACES_PER_PAGE = 25
ENTITIES_PER_PAGE = 50
MAX_QUERY_LENGTH = 1024


def _user(request: HttpRequest) -> AbstractBaseUser:
    user = request.user
    assert isinstance(user, AbstractBaseUser), "login_required runs first"
    return user


def _query(request: HttpRequest) -> str:
    return request.GET.get("q", "").strip()[:MAX_QUERY_LENGTH]


def _offset(request: HttpRequest) -> int:
    try:
        return max(0, int(request.GET.get("offset", "0")))
    except ValueError:
        return 0


def _url(path: str, **params: Any) -> str:
    query = urlencode({name: value for name, value in params.items() if value not in (None, "", 0)})
    return f"{path}?{query}" if query else path


def _forbidden(request: HttpRequest, namespace: str) -> HttpResponse:
    return render(request, "403.html", {"namespace": namespace, "section": "namespaces"}, status=403)


def _valid_namespace(namespace: str) -> str:
    try:
        return namespaces.validate(namespace)
    except InvalidArgument:
        raise Http404("no such namespace") from None


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    return redirect("keys" if request.user.is_authenticated else "login")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def keys(request: HttpRequest) -> HttpResponse:
    """List the user's keys and create one. A new key's secret is rendered in the POST response
    and nowhere else: not stored, not in the session, messages or a redirect."""
    user = _user(request)
    created: services.CreatedKey | None = None
    if request.method == "POST":
        form = KeyCreateForm(request.POST, user=user)
        if form.is_valid():
            try:
                created = services.api_key_create_for_self(user=user, **form.key_arguments())
            except DomainError as error:
                form.add_domain_error(error)
            else:
                form = KeyCreateForm(user=user)  # blank again, for the next key
    else:
        form = KeyCreateForm(user=user)
    context = {
        "section": "keys",
        "form": form,
        "keys": selectors.keys_for_user(user),
        "created": created,
    }
    return render(request, "access/keys.html", context)


@login_required
@require_POST
def key_revoke(request: HttpRequest, prefix: str) -> HttpResponse:
    user = _user(request)
    key = get_object_or_404(ApiKey, owner=user, prefix=prefix)  # someone else's key: 404, as if absent
    if services.api_key_revoke(key=key, actor=user, source="self-service"):
        messages.success(request, f"The key “{key.name}” ({key.prefix}) is revoked: requests with it now fail.")
    else:
        messages.info(request, f"The key “{key.name}” ({key.prefix}) was already revoked.")
    return redirect("keys")


@never_cache
@login_required
@require_safe
def namespace_list(request: HttpRequest) -> HttpResponse:
    access = selectors.user_access(_user(request))
    query = _query(request)
    page = Paginator(selectors.reachable_namespaces(access, contains=query), NAMESPACES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    rows = [(ns, operations.perform(access, "graph_stats", namespace=ns.name)) for ns in page]
    context = {
        "section": "namespaces",
        "query": query,
        "page": page,
        "rows": rows,
        "grants": access.grants,
        "previous_url": _url(request.path, q=query, page=page.previous_page_number()) if page.has_previous() else None,
        "next_url": _url(request.path, q=query, page=page.next_page_number()) if page.has_next() else None,
    }
    return render(request, "access/namespaces.html", context)


def _entity_page(access: Access, request: HttpRequest, namespace: str, query: str) -> dict[str, Any]:
    """One page of entities: search hits (offset paging) or the whole graph (cursor paging)."""
    if query:
        offset = _offset(request)
        result = operations.perform(
            access, "search_nodes", namespace=namespace, query=query, limit=ENTITIES_PER_PAGE, offset=offset
        )
        return {
            "entities": result["entities"],
            "first_item": offset + 1,
            "previous_url": _url(request.path, q=query, offset=max(0, offset - ENTITIES_PER_PAGE)) if offset else None,
            "next_url": _url(request.path, q=query, offset=result["nextOffset"]) if result.get("hasMore") else None,
        }
    cursor = request.GET.get("after") or None
    result = operations.perform(access, "read_graph", namespace=namespace, cursor=cursor, limit=ENTITIES_PER_PAGE)
    return {
        "entities": result["entities"],
        "first_url": request.path if cursor else None,
        "next_url": _url(request.path, after=result["nextCursor"]) if result.get("hasMore") else None,
    }


@never_cache
@login_required
@require_safe
def namespace_detail(request: HttpRequest, namespace: str) -> HttpResponse:
    access = selectors.user_access(_user(request))
    namespace = _valid_namespace(namespace)
    query = _query(request)
    context: dict[str, Any] = {"section": "namespaces", "namespace": namespace, "query": query}
    status = 200
    try:
        context["stats"] = operations.perform(access, "graph_stats", namespace=namespace)
        context.update(_entity_page(access, request, namespace, query))
    except NamespaceForbidden:
        return _forbidden(request, namespace)
    except InvalidArgument as error:  # an over-long query, a tampered cursor
        context.update(entities=[], error=error.message)
        status = 400
    return render(request, "access/namespace.html", context, status=status)


@never_cache
@login_required
@require_safe
def entity_detail(request: HttpRequest, namespace: str, name: str) -> HttpResponse:
    access = selectors.user_access(_user(request))
    namespace = _valid_namespace(namespace)
    try:
        described = operations.perform(access, "describe_entity", namespace=namespace, name=name)
    except NamespaceForbidden:
        return _forbidden(request, namespace)
    except (EntityNotFound, InvalidArgument):
        raise Http404("no such entity") from None
    context = {"section": "namespaces", "namespace": namespace, **described}
    return render(request, "access/entity.html", context)
