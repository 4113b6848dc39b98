"""Self-service pages: sign in, manage one's own API keys, browse the namespaces one can read.

Views stay thin. Keys are written by `access.services`; graph data is read through
`access.operations.perform` with the signed-in user's access (`selectors.user_access`), the one
place where grants are checked, so a page can never show more than a key of the user could.
Every page is private to the user, so none may be cached (`never_cache`).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from access import namespaces, operations, selectors, services
from access.exceptions import NamespaceForbidden
from access.forms import KeyCreateForm
from access.models import ApiKey
from access.permissions import Access
from graph.exceptions import EntityNotFound
from kernel.errors import DomainError, InvalidArgument
from mcp_endpoint import sessions

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


# --- a new key's secret, from the POST that creates it to the one GET that shows it ---------------
#
# Post/Redirect/Get: the create POST answers with a redirect, so reloading the page that shows the
# secret is a harmless GET. The secret must reach that GET without being stored in clear: it is
# split into a one-time pad, sent as a short-lived cookie scoped to /keys/, and the secret XOR the
# pad, kept in the (server-side) session. Neither half alone reveals anything. The next GET of
# /keys/ removes both halves whatever happens, and shows the secret only if it comes within
# NEW_KEY_SECONDS; an unfetched half in the session is dropped by that GET, at sign-out, or with
# the session itself (the purge_sessions maintenance job), and is useless without the cookie,
# which the browser discards after NEW_KEY_SECONDS.

NEW_KEY_SECONDS = 300
NEW_KEY_SESSION = "new_key"
NEW_KEY_COOKIE = "memoryhub_new_key"
SUBMISSION_SECONDS = 24 * 3600


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


def _hold_new_key(request: HttpRequest, response: HttpResponse, created: services.CreatedKey) -> None:
    secret = created.secret.encode()
    pad = secrets.token_bytes(len(secret))
    request.session[NEW_KEY_SESSION] = {
        "key": created.key.pk,
        "sealed": base64.urlsafe_b64encode(_xor(secret, pad)).decode(),
        "at": time.time(),
    }
    response.set_cookie(
        NEW_KEY_COOKIE,
        base64.urlsafe_b64encode(pad).decode(),
        max_age=NEW_KEY_SECONDS,
        path=reverse("keys"),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def _take_new_key(request: HttpRequest) -> tuple[int, str] | None:
    """(key id, secret) held for this GET, removed from the session whether shown or not."""
    held = request.session.pop(NEW_KEY_SESSION, None)
    pad = request.COOKIES.get(NEW_KEY_COOKIE)
    if not isinstance(held, dict) or not pad or time.time() - held.get("at", 0) > NEW_KEY_SECONDS:
        return None
    try:
        secret = _xor(base64.urlsafe_b64decode(held["sealed"]), base64.urlsafe_b64decode(pad)).decode()
    except (KeyError, ValueError, binascii.Error):  # a tampered or mismatched cookie
        return None
    return held["key"], secret


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def keys(request: HttpRequest) -> HttpResponse:
    """List the user's keys and create one (Post/Redirect/Get). A new key's secret is shown on
    the one GET that follows its creation and never again (see `_hold_new_key`); a form posted
    twice (same submission token) creates one key."""
    user = _user(request)
    if request.method == "POST":
        form = KeyCreateForm(request.POST, user=user)
        if form.is_valid():
            token = form.cleaned_data["submission"]
            # cache.add is atomic: of two identical posts (a double click) exactly one gets here.
            if not cache.add(f"key-form:{user.pk}:{token}", True, SUBMISSION_SECONDS):
                messages.info(
                    request,
                    "That form was already submitted and its key already created (see the list below); "
                    "no second key was made.",
                )
                return redirect("keys")
            try:
                created = services.api_key_create_for_self(user=user, **form.key_arguments())
            except DomainError as error:
                cache.delete(f"key-form:{user.pk}:{token}")  # nothing created: the form may be sent again
                form.add_domain_error(error)
            else:
                moved = redirect("keys")
                _hold_new_key(request, moved, created)
                return moved
        new_key = None
    else:
        form = KeyCreateForm(user=user)
        new_key = _take_new_key(request)
    key_list = selectors.keys_for_user(user)
    shown: dict[str, Any] | None = None
    if new_key is not None:
        shown = next(({"key": key, "secret": new_key[1]} for key in key_list if key.pk == new_key[0]), None)
    context = {"section": "keys", "form": form, "keys": key_list, "created": shown}
    response = render(request, "access/keys.html", context)
    if NEW_KEY_COOKIE in request.COOKIES:
        response.delete_cookie(NEW_KEY_COOKIE, path=reverse("keys"), samesite="Lax")
    return response


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def key_revoke(request: HttpRequest, prefix: str) -> HttpResponse:
    """GET asks for confirmation (what the key is, when and by which MCP clients it was last
    used); only a POST of that page's form (`confirm`) revokes. Any other POST leads to the
    question, so an old one-click form cannot revoke by surprise."""
    user = _user(request)
    key = get_object_or_404(ApiKey, owner=user, prefix=prefix)  # someone else's key: 404, as if absent
    if request.method != "POST":
        context = {"section": "keys", "key": key, "clients": sessions.clients_of_key(key.pk)}
        return render(request, "access/key_revoke.html", context)
    if request.POST.get("confirm") != "yes":
        return redirect("key-revoke", prefix=key.prefix)
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
