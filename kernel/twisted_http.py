"""Two costs Twisted's HTTP server charges every request under daphne, removed.

1. `twisted.web.http.Request.requestReceived` parses the Content-Type of every request with a
   body, to decide whether to decode an HTML form, by building an `email.message.EmailMessage`
   and reading its content type back. daphne never uses the decoded form (the ASGI app reads the
   raw body), and the email package's header parser is slow: a visible share of the serving
   thread's time for an MCP tool call in bench/load.py's profile. The function is pure (the same header gives
   the same answer), so it is memoised, bounded so that odd headers cannot grow the cache.
2. Twisted's `HTTPFactory.log` formats a combined-log line for every request and writes it to
   Twisted's log, which daphne sends nowhere (below `-v 2`) or to the `daphne.server` logger
   (at `-v 2`). daphne writes its own access log line for each request, so Twisted's is dropped
   before it is formatted (about 5% of the serving thread's time).

And one thing added: daphne's own access log writes each request's URL, query string included;
SSE clients must send their key there (`?key=`), so every URL it logs is redacted first
(`kernel.logs.redact`), whatever the answer's status.

`install()` runs when the ASGI application is imported (memoryhub/asgi.py), before daphne
serves a request; with another ASGI server it changes nothing that server uses.
"""

from __future__ import annotations

import functools
from typing import Any

from kernel.logs import redact

CACHED_CONTENT_TYPES = 256


def install() -> None:
    """Apply all three (idempotent; each is skipped if Twisted or daphne no longer has the code)."""
    from daphne import http_protocol, server
    from twisted.web import http

    parse: Any = getattr(http, "_parseContentType", None)
    if parse is not None and not hasattr(parse, "cache_info"):
        http._parseContentType = functools.lru_cache(maxsize=CACHED_CONTENT_TYPES)(parse)
    http_protocol.HTTPFactory.log = _no_twisted_access_log
    log_action: Any = getattr(server.Server, "log_action", None)
    if log_action is not None and not getattr(log_action, "redacts", False):
        server.Server.log_action = _redacting(log_action)


def _no_twisted_access_log(factory: Any, request: Any) -> None:
    """daphne logs each request itself (its access log); Twisted's duplicate line is not written."""


def _redacting(log_action: Any) -> Any:
    """daphne's `Server.log_action` (the access log's source), with the URL's keys redacted."""

    @functools.wraps(log_action)
    def redacted(server: Any, protocol: Any, action: Any, details: dict[str, Any]) -> None:
        path = details.get("path")
        if isinstance(path, str):
            details = {**details, "path": redact(path)}
        log_action(server, protocol, action, details)

    redacted.redacts = True  # type: ignore[attr-defined]
    return redacted
