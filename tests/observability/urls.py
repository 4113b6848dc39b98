"""The project's URLs plus a view that logs, for the request-id tests."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

logger = logging.getLogger("tests.observability")


def log_something(request: HttpRequest) -> HttpResponse:
    logger.info("serving %s", request.path)
    return HttpResponse("ok")


urlpatterns = [
    path("log-something", log_something),
    path("", include("memoryhub.urls")),
]
