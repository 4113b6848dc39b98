from __future__ import annotations

import time

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from memoryhub.database import describe_database


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database check for load balancers and operators (no auth, no tenant data)."""
    started = time.perf_counter()
    try:
        database = describe_database()
    except DatabaseError as exc:
        return JsonResponse({"status": "error", "database": {"error": str(exc)}}, status=503)
    database["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    return JsonResponse({"status": "ok", "database": database})
