"""Console area: import and export in the browser.

- `transfer/`: the import form (a file, a namespace the user may write), download links for each
  namespace they may read, and their recent imports.
- `transfer/import` (POST): checks the write grant through the runner before anything is stored,
  stores the upload (graph/import_jobs.py: a name the server chooses), queues the import and
  redirects to its page. An upload over MEMORYHUB_IMPORT_MAX_BYTES is refused as it arrives. A file
  that does not parse becomes a failed job naming the line (it is parsed behind the request, where
  a large file's time is spent).
- `transfer/imports/<job>` and its `.json`: the job's progress and, when done, its counts and what
  it skipped. A job is its uploader's: anyone else gets 404 (a superuser sees all).
- `namespaces/<ns>/export?format=`: a download, streamed in batches as it is sent.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.core.handlers.asgi import ASGIRequest
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.template.defaultfilters import filesizeformat
from django.urls import URLPattern, path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_safe

from access import namespaces
from access.exceptions import AccessError
from access.operations import check, perform
from access.permissions import Permission
from access.selectors import reachable_namespaces
from console.common import console_access, forbidden, user, valid_namespace
from graph import import_jobs
from graph.models import ImportJob
from kernel.errors import InvalidArgument

IMPORT_OPERATION = "import_file"
LISTED_NAMESPACES = 200  # namespaces listed for import and export (the rest by URL)
RECENT_JOBS = 10
# How much of a request may be form fields besides the file, before its size is refused unread.
FORM_OVERHEAD_BYTES = 64 * 1024
# Chunks sent per write of a download: the exporters yield a line at a time.
DOWNLOAD_CHUNK_CHARS = 64 * 1024


# format in the URL → (the `export_stream` format, file name suffix, content type, label)
EXPORTS: dict[str, tuple[str, str, str, str]] = {
    "jsonl": ("official", ".jsonl", "application/x-ndjson; charset=utf-8", "JSONL (official memory server)"),
    "json": ("json", ".json", "application/json; charset=utf-8", "JSON"),
    "mermaid": ("mermaid", ".mmd", "text/plain; charset=utf-8", "Mermaid"),
    "dot": ("dot", ".dot", "text/vnd.graphviz; charset=utf-8", "Graphviz DOT"),
    "dump": ("jsonl", ".full.jsonl", "application/x-ndjson; charset=utf-8", "Full dump (with memories)"),
}


def max_bytes() -> int:
    return int(settings.MEMORYHUB_IMPORT_MAX_BYTES)


def _form_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    access = console_access(request)
    readable = list(
        reachable_namespaces(access, permission=Permission.READ).values_list("name", flat=True)[: LISTED_NAMESPACES + 1]
    )
    writable = list(
        reachable_namespaces(access, permission=Permission.WRITE).values_list("name", flat=True)[:LISTED_NAMESPACES]
    )
    jobs = list(import_jobs.jobs_of(user(request))[:RECENT_JOBS])
    return {
        "section": "console",
        "area": "transfer",
        "writable": writable,
        "readable": [
            {
                "name": name,
                "links": [
                    (label, reverse("console:export", args=[name]) + f"?format={fmt}")
                    for fmt, (_, _, _, label) in EXPORTS.items()
                ],
            }
            for name in readable[:LISTED_NAMESPACES]
        ],
        "more_readable": len(readable) > LISTED_NAMESPACES,
        "jobs": [(job, import_jobs.status(job)) for job in jobs],
        "max_bytes": max_bytes(),
        "errors": {},
        "chosen": "",
        "new_namespace": "",
        **extra,
    }


@never_cache
@login_required
@require_safe
def transfer(request: HttpRequest) -> HttpResponse:
    return render(request, "console/transfer.html", _form_context(request))


class _SizeLimit(FileUploadHandler):
    """Refuses a file as soon as more than `limit` bytes of it arrived (Django's own settings limit
    form fields, not files): the file is skipped, the rest of the request read and dropped."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.limit:
            self.exceeded = True
            raise SkipFile()
        return raw_data  # on to the handler that stores it

    def file_complete(self, file_size: int) -> None:
        return None


def _too_big(request: HttpRequest, *, read: bool = True) -> HttpResponse:
    error = f"The file is larger than the limit of {filesizeformat(max_bytes())}."
    return _refused(request, {"file": error}, status=413, read=read)


def _refused(request: HttpRequest, errors: dict[str, str], *, status: int, read: bool = True) -> HttpResponse:
    """The form again with `errors`, and what was chosen (when the request was `read`)."""
    chosen = request.POST.get("namespace", "") if read else ""
    new = request.POST.get("new_namespace", "").strip() if read else ""
    context = _form_context(request, errors=errors, chosen=chosen, new_namespace=new)
    return render(request, "console/transfer.html", context, status=status)


# CSRF is checked by `_import_checked`, once the size limit is in place: the CSRF middleware
# would read the whole upload (request.POST) before the view could limit it.
@csrf_exempt
@never_cache
@login_required
@require_http_methods(["POST"])
def import_upload(request: HttpRequest) -> HttpResponse:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > max_bytes() + FORM_OVERHEAD_BYTES:
        return _too_big(request, read=False)  # refused unread
    limit = _SizeLimit(request, max_bytes())
    request.upload_handlers.insert(0, limit)
    return _import_checked(request, limit)


@csrf_protect
def _import_checked(request: HttpRequest, limit: _SizeLimit) -> HttpResponse:
    upload = request.FILES.get("file")
    if limit.exceeded:
        return _too_big(request)
    errors: dict[str, str] = {}
    target = request.POST.get("new_namespace", "").strip() or request.POST.get("namespace", "").strip()
    if not target:
        errors["namespace"] = "Choose a namespace, or name a new one."
    else:
        try:
            target = namespaces.validate(target)
        except InvalidArgument as error:
            errors["namespace"] = error.message
    access = console_access(request)
    if not errors:
        # The grant first: a namespace the user may not write is refused whatever else is wrong.
        try:
            check(access, IMPORT_OPERATION, namespace=target)
        except AccessError:
            return _refused(request, {"namespace": f"You may not write to {target}."}, status=403)
    if upload is None:
        errors["file"] = "Choose a file to import."
    if errors:
        return _refused(request, errors, status=400)
    assert upload is not None
    job = import_jobs.create(
        user_id=user(request).pk, namespace=target, filename=upload.name or "upload", chunks=upload.chunks()
    )
    import_jobs.start(job, access)
    messages.success(request, f"Uploaded {job.filename}; importing it into {target}.")
    location = reverse("console:import-job", args=[job.pk])
    if request.headers.get("Accept") == "application/json":
        # transfer.js sends the form itself (to show the upload's progress) and goes on from here.
        return JsonResponse({"location": location})
    return HttpResponseRedirect(location, status=303)


def _status_body(job: ImportJob) -> dict[str, Any]:
    state = import_jobs.status(job)
    done, total, phase = state["done"], state["total"], state["phase"]
    if phase == "queued":
        label = "Waiting for an earlier import to finish."
    elif phase == "reading":
        label = "Reading the file."
    elif phase == "importing":
        label = f"Importing: {done:,} of {total:,} records."
    elif state["state"] == import_jobs.INTERRUPTED:
        label = (
            "Interrupted: the server stopped during this import. What it imported stays; upload the file "
            "again to finish (nothing already imported changes)."
        )
    elif state["state"] == ImportJob.State.FAILED and done:
        label = (
            f"Failed after {done:,} of {total:,} records, which stay imported. Fix the file and upload it "
            "again to finish (nothing already imported changes)."
        )
    elif state["state"] == ImportJob.State.FAILED:
        label = "Failed: nothing was imported."
    else:
        label = f"Done: {total:,} records imported."
    active = state["state"] in (ImportJob.State.QUEUED, ImportJob.State.RUNNING)
    return {**state, "label": label, "active": active}


def _job(request: HttpRequest, job: int) -> ImportJob:
    return get_object_or_404(import_jobs.jobs_of(user(request)), pk=job)


COUNTS = (
    ("entitiesCreated", "Entities created"),
    ("observationsAdded", "Observations added"),
    ("relationsCreated", "Relations created"),
    ("relationsUnchanged", "Relations already present"),
    ("memoriesAdded", "Memories added"),
)


@never_cache
@login_required
@require_safe
def import_job(request: HttpRequest, job: int) -> HttpResponse:
    found = _job(request, job)
    state = _status_body(found)
    context = {
        "section": "console",
        "area": "transfer",
        "job": found,
        "state": state,
        "counts": [(label, found.counts.get(name, 0)) for name, label in COUNTS],
        "more_skipped": found.skipped_count - len(found.skipped),
    }
    return render(request, "console/import_job.html", context)


@never_cache
@login_required
@require_safe
def import_job_status(request: HttpRequest, job: int) -> JsonResponse:
    return JsonResponse(_status_body(_job(request, job)))


def download_name(namespace: str, suffix: str) -> str:
    """A file name from a namespace: letters, digits, `.`, `_` and `-` only (`org:alice:notes` →
    `org_alice_notes`), so it needs no quoting in Content-Disposition."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", namespace).strip("._")[:100] or "namespace"
    return stem + suffix


def _batched(chunks: Iterator[str]) -> Iterator[str]:
    pending: list[str] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= DOWNLOAD_CHUNK_CHARS:
            yield "".join(pending)
            pending, size = [], 0
    if pending:
        yield "".join(pending)


async def _in_thread(chunks: Iterator[str]) -> AsyncIterator[str]:
    # Under ASGI, Django would read a synchronous iterator whole before sending; this reads one
    # batch at a time on the request's database thread.
    def take() -> str | None:
        return next(chunks, None)

    pull = sync_to_async(take, thread_sensitive=True)
    while True:
        chunk = await pull()
        if chunk is None:
            return
        yield chunk


@never_cache
@login_required
@require_safe
def export(request: HttpRequest, namespace: str) -> HttpResponseBase:
    namespace = valid_namespace(namespace)
    fmt = request.GET.get("format", "")
    if fmt not in EXPORTS:
        return HttpResponseBadRequest(
            f"Unknown export format; use one of {', '.join(EXPORTS)}.", content_type="text/plain; charset=utf-8"
        )
    operation_format, suffix, content_type, _ = EXPORTS[fmt]
    try:
        chunks = perform(console_access(request), "export_stream", namespace=namespace, format=operation_format)
    except AccessError:
        return forbidden(request, namespace)
    batches = _batched(chunks)
    content = _in_thread(batches) if isinstance(request, ASGIRequest) else batches
    response = StreamingHttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{download_name(namespace, suffix)}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


urlpatterns: list[URLPattern] = [
    path("transfer/", transfer, name="transfer"),
    path("transfer/import", import_upload, name="import"),
    path("transfer/imports/<int:job>", import_job, name="import-job"),
    path("transfer/imports/<int:job>.json", import_job_status, name="import-job-status"),
    path("namespaces/<str:namespace>/export", export, name="export"),
]
