"""Console area: one memory's page (its text, validity, lineage and full history with the
differences between versions) with its corrections (edit, supersede, restore a version, delete
with confirmation), and a namespace's free memories, newest first.

Every read and write goes through the runner. A memory is found with the user's read reach (an id
outside it is 404, like an absent one); a correction then names the memory's namespace, so the
runner refuses a user who may only read it (403) before anything changes. Forms are shown only to
users who can write the namespace.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from access import operations
from access.permissions import Access
from console.common import console_access, entity_url, forbidden, url_with, valid_namespace, with_usernames
from console.search import clip
from kernel.errors import DomainError

PAGE = 50
MEMORY_ID = re.compile(r"mem_[1-9][0-9]{0,18}")
# Texts longer than this are compared line by line rather than word by word (difflib is
# quadratic in the worst case; a memory is at most the store's observation limit).
WORD_DIFF_LIMIT = 20_000
_TOKENS = re.compile(r"\s+|[^\s]+")


# --- reading ----------------------------------------------------------------------------------------


class Found:
    """A memory as the page shows it: live (`memory`) or deleted (only `versions`), its namespace."""

    def __init__(self, memory: dict[str, Any] | None, versions: list[dict[str, Any]]) -> None:
        self.memory = memory
        self.versions = versions
        self.namespace: str = memory["namespace"] if memory is not None else versions[0]["namespace"]


def _locate(access: Access, memory_id: str) -> Found:
    """The memory within the user's read reach, or 404 (absent, malformed and out of reach alike)."""
    if not MEMORY_ID.fullmatch(memory_id):
        raise Http404("no such memory")
    memory = operations.perform(access, "memory_get", id=memory_id)
    try:
        versions = operations.perform(access, "memory_history", id=memory_id)["versions"]
    except DomainError as error:
        if error.code != "not_found":
            raise
        versions = []
    if memory is None and not versions:
        raise Http404("no such memory")
    return Found(memory, versions)


def diff(old: str, new: str) -> list[tuple[str, str]]:
    """(kind, text) pieces from `old` to `new`: kind "same", "ins" or "del". The template escapes
    every piece: user text is never marked safe."""
    if len(old) + len(new) > WORD_DIFF_LIMIT:
        before, after = old.splitlines(keepends=True), new.splitlines(keepends=True)
    else:
        before, after = _TOKENS.findall(old), _TOKENS.findall(new)
    pieces: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes():
        if tag == "equal":
            pieces.append(("same", "".join(before[i1:i2])))
            continue
        if i2 > i1:
            pieces.append(("del", "".join(before[i1:i2])))
        if j2 > j1:
            pieces.append(("ins", "".join(after[j1:j2])))
    return pieces


def _text_of(version: dict[str, Any]) -> str | None:
    state = version.get("after") or version.get("before") or {}
    text = state.get("text")
    return text if isinstance(text, str) else None


def _shown_versions(versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The versions newest first, each with the difference from the text before it (None when the
    text did not change) and whether it can be restored (a mention records no state)."""
    shown: list[dict[str, Any]] = []
    previous: str | None = None
    for version in reversed(versions):  # oldest first, to compare each with the one before
        text = _text_of(version)
        changed = text is not None and previous is not None and text != previous
        shown.append(
            {
                **version,
                "text": text,
                "diff": diff(previous or "", text or "") if changed else None,
                "restorable": version["action"] != "mention",
            }
        )
        if text is not None:
            previous = text
    shown.reverse()
    shown = with_usernames(shown)
    if shown:
        shown[0]["latest"] = True
    return shown


def _page(
    request: HttpRequest,
    access: Access,
    found: Found,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    memory = found.memory
    versions = _shown_versions(found.versions)
    latest_text = memory["text"] if memory is not None else next((v["text"] for v in versions if v["text"]), "")
    authors = operations.perform(access, "memory_authors", ids=[memory["id"]]) if memory is not None else {}
    memory_id = memory["id"] if memory is not None else found.versions[0]["id"]
    free = memory is None or memory["entityName"] is None
    context = {
        "section": "console",
        "area": "memory",
        "memory_id": memory_id,
        "memory": memory,
        "text": latest_text,
        "namespace": found.namespace,
        "author": authors.get(memory_id, {}),
        "entity_url": entity_url(memory["namespace"], memory["entityName"]) if memory and memory["entityName"] else "",
        "versions": versions,
        "can_write": operations.allowed(access, "memory_update", namespace=found.namespace),
        "free": free,
        "errors": errors or {},
        "values": values or {},
    }
    return render(request, "console/memory.html", context, status=status)


@never_cache
@login_required
@require_safe
def memory(request: HttpRequest, id: str) -> HttpResponse:
    access = console_access(request)
    return _page(request, access, _locate(access, id))


# --- corrections (Post/Redirect/Get) ---------------------------------------------------------------

# What each correction's form is called on the page (its errors show there).
FORMS = {"memory_update": "edit", "memory_supersede": "supersede", "memory_restore": "restore"}


def _correct(request: HttpRequest, id: str, operation: str, **arguments: Any) -> tuple[Any, HttpResponse | None]:
    """Run a correction on the memory `id` in its own namespace; (result, None) when it worked,
    else (None, the answer: 403 page, or the memory page again with the error by its form)."""
    access = console_access(request)
    found = _locate(access, id)
    try:
        return operations.perform(access, operation, namespace=found.namespace, id=id, **arguments), None
    except DomainError as error:
        if error.code == "forbidden":
            return None, forbidden(request, found.namespace)
        status = 409 if error.code == "already_exists" else 404 if error.code == "not_found" else 400
        values = {FORMS[operation]: str(arguments.get("text", ""))}
        errors = {FORMS[operation]: error.message}
        return None, _page(request, access, _locate(access, id), errors=errors, values=values, status=status)


def _back(id: str) -> HttpResponse:
    return redirect(reverse("console:memory", args=[id]))


@never_cache
@login_required
@require_POST
def memory_edit(request: HttpRequest, id: str) -> HttpResponse:
    result, refused = _correct(request, id, "memory_update", text=request.POST.get("text", ""))
    if refused is not None:
        return refused
    messages.success(request, f"Saved: {id} is now at version {result['version']}.")
    return _back(id)


@never_cache
@login_required
@require_POST
def memory_supersede(request: HttpRequest, id: str) -> HttpResponse:
    result, refused = _correct(request, id, "memory_supersede", text=request.POST.get("text", ""))
    if refused is not None:
        return refused
    messages.success(request, f"{id} is now a past fact, superseded by {result['id']}.")
    return _back(id)


@never_cache
@login_required
@require_POST
def memory_restore(request: HttpRequest, id: str) -> HttpResponse:
    raw = request.POST.get("version", "").strip()
    version: int | str | None = int(raw) if raw.isdigit() and len(raw) < 10 else (raw or None)
    _result, refused = _correct(request, id, "memory_restore", version=version)
    if refused is not None:
        return refused
    messages.success(request, f"Restored {id}" + (f" to version {version}." if version is not None else "."))
    return _back(id)


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def memory_delete(request: HttpRequest, id: str) -> HttpResponse:
    """GET: the confirmation page; POST: delete, then back to the memory's page (restorable there)."""
    access = console_access(request)
    found = _locate(access, id)
    if found.memory is None:
        messages.info(request, f"{id} is already deleted.")
        return _back(id)
    if request.method == "POST":
        try:
            done = operations.perform(access, "memory_delete", namespace=found.namespace, id=id)
        except DomainError as error:
            if error.code == "forbidden":
                return forbidden(request, found.namespace)
            raise
        if done["deleted"]:
            messages.success(request, f"Deleted {id}. It can be restored from its history below.")
        else:
            messages.error(request, f"{id} was not deleted: only free memories are deleted here.")
        return _back(id)
    if not operations.allowed(access, "memory_delete", namespace=found.namespace):
        return forbidden(request, found.namespace)
    context = {
        "section": "console",
        "area": "memory",
        "memory": found.memory,
        "clipped": clip(found.memory["text"]),
    }
    return render(request, "console/memory_delete.html", context)


# --- a namespace's memories -------------------------------------------------------------------------


@never_cache
@login_required
@require_safe
def namespace_memories(request: HttpRequest, namespace: str) -> HttpResponse:
    access = console_access(request)
    name = valid_namespace(namespace)
    raw = request.GET.get("page", "1")
    number = int(raw) if raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1
    try:
        page = operations.perform(access, "memory_list", namespace=name, limit=PAGE, offset=(number - 1) * PAGE)
    except DomainError as error:
        if error.code == "forbidden":
            return forbidden(request, name)
        raise
    listed = page["memories"]
    authors = (
        operations.perform(access, "memory_authors", namespace=name, ids=[m["id"] for m in listed]) if listed else {}
    )
    here = request.path
    context = {
        "section": "console",
        "area": "memories",
        "namespace": name,
        "memories": [
            {**m, "clipped": clip(m["text"]), "author": authors.get(m["id"], {}), "score": None} for m in listed
        ],
        "total": page["total"],
        "page": number,
        "pages": max(1, -(-page["total"] // PAGE)),
        "previous_url": url_with(here, page=number - 1) if number > 1 else "",
        "next_url": url_with(here, page=number + 1) if number * PAGE < page["total"] else "",
    }
    return render(request, "console/memories.html", context)


urlpatterns: list[URLPattern] = [
    path("namespaces/<str:namespace>/memories", namespace_memories, name="namespace-memories"),
    path("memories/<str:id>", memory, name="memory"),
    path("memories/<str:id>/edit", memory_edit, name="memory-edit"),
    path("memories/<str:id>/supersede", memory_supersede, name="memory-supersede"),
    path("memories/<str:id>/restore", memory_restore, name="memory-restore"),
    path("memories/<str:id>/delete", memory_delete, name="memory-delete"),
]
