"""Console area: the overview at /console/ and its recent writes as JSON.

The page: the namespaces the user can read (25 a page, filterable) with their counts and growth,
the latest writes across them (live over /console/live: console/live.py, with `recent.json` as
the first paint's source and the fallback when the stream is unavailable), the embedding backlog,
and the calls per day of the user's keys. Tenant data is read through the runner (ops
graph_stats, namespace_growth, recent_changes, embedding_backlog) with the user's console access;
key usage is the user's own account data (access.selectors.key_usage).

Charts are inline SVG computed here (no chart library, no script), each with an accessible name
and its numbers as a table beside it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from access import selectors
from access.operations import perform
from access.permissions import Access
from console.common import (
    console_access,
    entity_url,
    graph_url,
    memory_url,
    query_text,
    url_with,
    user,
    with_usernames,
)
from kernel.errors import DomainError
from kernel.http_errors import error_response

NAMESPACES_PER_PAGE = 25
RECENT_ON_PAGE = 30


# --- links ------------------------------------------------------------------------------------------


def memories_path(namespace: str) -> str:
    return reverse("console:namespace-memories", args=[namespace])


def search_path(namespace: str) -> str:
    return url_with(reverse("console:search"), namespace=namespace)


# --- recent writes -----------------------------------------------------------------------------------


def present(change: dict[str, Any]) -> dict[str, Any]:
    """A `recent_changes` row as the page, recent.json and the live stream show it: who, what,
    when, where, and a link the app built (never user text as a URL)."""
    namespace = change["namespace"]
    if change["label"] in ("memory", "observation"):
        url = memory_url(change["id"])
    elif change.get("entity"):
        url = entity_url(namespace, change["entity"])
    else:
        url = graph_url(namespace)
    when = change["changedAt"] or ""
    return {
        "versionId": change["versionId"],
        "id": change["id"],
        "namespace": namespace,
        "label": change["label"],
        "action": change["action"],
        "excerpt": change["excerpt"],
        "changedAt": when,
        "when": when.replace("T", " ").replace("Z", " UTC"),
        "actorId": change["actorId"],
        "key": change["key"],
        "surface": change["surface"],
        "username": change.get("username", ""),
        "url": url,
    }


def recent_for(access: Access, *, after: Any = None, limit: int = RECENT_ON_PAGE) -> list[dict[str, Any]]:
    """The readable namespaces' latest writes, newest first (after a versionId cursor if given)."""
    changes = perform(access, "recent_changes", after=after, limit=limit)
    return [present(change) for change in with_usernames(changes)]


# --- charts ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Bars in a `width` x `height` viewBox; `rows` are the numbers as text (day, value)."""

    title: str
    width: int
    height: int
    bars: list[Bar]
    rows: list[tuple[str, int]]
    peak: int
    total: int


def bar_chart(title: str, points: list[tuple[str, int]], *, width: int = 300, height: int = 60) -> Chart:
    """One bar per point, scaled to the largest; a zero is a hairline so every day is visible."""
    peak = max((value for _, value in points), default=0)
    slot = width / max(len(points), 1)
    bars = []
    for index, (day, value) in enumerate(points):
        bar_height = (value / peak) * (height - 2) if peak else 0.0
        bar_height = max(bar_height, 1.0)
        bars.append(
            Bar(
                x=round(index * slot + slot * 0.1, 2),
                y=round(height - bar_height, 2),
                width=round(slot * 0.8, 2),
                height=round(bar_height, 2),
                label=f"{day}: {value}",
            )
        )
    return Chart(title, width, height, bars, points, peak, sum(value for _, value in points))


# --- the page ----------------------------------------------------------------------------------------


@dataclass
class NamespaceRow:
    name: str
    stats: dict[str, int]
    growth: Chart
    graph_url: str
    memories_url: str
    search_url: str
    backlog: dict[str, Any] | None


@never_cache
@login_required
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    access = console_access(request)
    contains = query_text(request, "filter")
    names = selectors.reachable_namespaces(access, contains=contains).values_list("name", flat=True)
    page = Paginator(names, NAMESPACES_PER_PAGE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    growth = perform(access, "namespace_growth", namespace=shown) if shown else {}
    backlog = perform(access, "embedding_backlog")  # every readable namespace: the rows are few
    rows = [
        NamespaceRow(
            name=name,
            stats=perform(access, "graph_stats", namespace=name),
            growth=bar_chart(
                f"Objects created per day in {name}, last 30 days",
                [(day["day"], day["total"]) for day in growth.get(name, [])],
                height=40,
            ),
            graph_url=graph_url(name),
            memories_url=memories_path(name),
            search_url=search_path(name),
            backlog=backlog.get(name),
        )
        for name in shown
    ]
    recent = recent_for(access)
    usage = [
        {
            **key,
            "chart": bar_chart(
                f"Calls per day with key {key['name']} ({key['prefix']}), last 30 days",
                [(day["day"].isoformat(), day["calls"]) for day in key["days"]],
            ),
        }
        for key in selectors.key_usage(user(request))
    ]
    context = {
        "section": "console",
        "area": "overview",
        "filter": contains,
        "page": page,
        "previous_url": url_with(request.path, filter=contains, page=page.previous_page_number())
        if page.has_previous()
        else None,
        "next_url": url_with(request.path, filter=contains, page=page.next_page_number()) if page.has_next() else None,
        "rows": rows,
        "recent": recent,
        "cursor": max((row["versionId"] for row in recent), default=0),
        "backlog": sorted(backlog.items()),
        "backlog_total": {
            "pending": sum(item["pending"] for item in backlog.values()),
            "failing": sum(item["failing"] for item in backlog.values()),
        },
        "usage": usage,
        "today": dt.datetime.now(dt.UTC).date(),
    }
    return render(request, "console/dashboard.html", context)


@never_cache
@login_required
@require_safe
def recent_json(request: HttpRequest) -> HttpResponse:
    """The latest writes as JSON: {"changes": [...newest first], "cursor": versionId}. With
    `?after=<versionId>`, the (at most 30) oldest changes after it: follow `cursor` until
    `changes` is empty to miss nothing."""
    after = request.GET.get("after") or None
    try:
        changes = recent_for(console_access(request), after=after)
    except DomainError as error:
        return error_response(error)
    cursor = max((row["versionId"] for row in changes), default=int(after) if after and after.isdigit() else 0)
    return JsonResponse({"changes": changes, "cursor": cursor})


urlpatterns: list[URLPattern] = [
    path("", home, name="home"),
    path("recent.json", recent_json, name="recent"),
]
