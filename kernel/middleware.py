"""The last of Django's middleware: synchronous only, so that under ASGI the whole stack runs in
one thread, entered once per request.

Django gives each middleware that can run either way (every `MiddlewareMixin`: sessions, CSRF,
auth, messages, security) the mode of what it wraps. With an async handler innermost each one
runs async and calls its sync hooks through `sync_to_async`: two thread hops per middleware,
each a wake-up of the event loop and a GIL hand-over. A sync-only middleware innermost makes
everything outside it sync, so the ASGI handler enters the stack once (bench/RESULTS.md,
"Django's middleware in one thread", has the figures). The views are sync (DRF, ninja, the
pages); an async one (/healthz) costs one hop back.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase


class OneThreadMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)
