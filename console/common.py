"""What every console page shares: the caller's access, namespace checks, the 403 page. (The
console's JSON endpoints answer a domain error as every REST edge does:
`kernel.http_errors.error_response`.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.base_user import AbstractBaseUser
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from access import namespaces, selectors
from access.permissions import Access
from kernel.errors import InvalidArgument

MAX_QUERY_LENGTH = 1024


def user(request: HttpRequest) -> AbstractBaseUser:
    found = request.user
    assert isinstance(found, AbstractBaseUser), "login_required runs first"
    return found


def console_access(request: HttpRequest) -> Access:
    """The signed-in user's reach: what they could grant a key of their own (their own space,
    what operators allowed them; everything for a superuser), on the "console" surface."""
    return selectors.user_access(user(request))


def valid_namespace(namespace: str) -> str:
    """`namespace` as stored, or 404 for a name that cannot exist."""
    try:
        return namespaces.validate(namespace)
    except InvalidArgument:
        raise Http404("no such namespace") from None


def query_text(request: HttpRequest, name: str = "q") -> str:
    return request.GET.get(name, "").strip()[:MAX_QUERY_LENGTH]


def url_with(path: str, **params: Any) -> str:
    """`path` with the non-empty `params` as its query string."""
    query = urlencode({name: value for name, value in params.items() if value not in (None, "", 0, False)})
    return f"{path}?{query}" if query else path


def forbidden(request: HttpRequest, namespace: str | None = None) -> HttpResponse:
    """The page for a namespace the user may not read: the same whether it exists or not."""
    return render(request, "403.html", {"namespace": namespace, "section": "console"}, status=403)


# --- links between the areas: always URLs the app reversed, never user text as a URL ----------------


def memory_url(wire_id: str) -> str:
    """The page of a memory or an entity's observation (mem_<n>)."""
    return reverse("console:memory", args=[wire_id])


def entity_url(namespace: str, name: str) -> str:
    """An entity's page (any name: '/', spaces, line breaks are quoted by reverse)."""
    return reverse("console:entity", args=[namespace, name])


def graph_url(namespace: str) -> str:
    return reverse("console:graph", args=[namespace])


def with_usernames(versions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """History versions (`history.wire` shapes, with `userId`), each with `username` added: who
    made the change, by name ("user <id>" for a user since deleted; "" when no user did)."""
    names = selectors.usernames(version.get("userId") for version in versions)
    return [
        {
            **version,
            "username": names.get(version["userId"], f"user {version['userId']}") if version.get("userId") else "",
        }
        for version in versions
    ]
