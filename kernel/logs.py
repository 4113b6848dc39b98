"""Request ids and structured (JSON) log lines.

Every HTTP request gets an id: the caller's `X-Request-ID` when it is sane (1 to 128 characters of
letters, digits and `-_.:/+=@`), else a new one. The ASGI middleware (kernel.observability) sets
it in `request_id` for the request's task; Django views, MCP consumers and everything they call
(also in asgiref's worker threads, which copy the context) see it, so every log line written while
serving the request carries it. It goes back to the caller in the `X-Request-ID` response header.

`MEMORYHUB_LOG_FORMAT=json` writes one JSON object per line (`JsonFormatter`):
`{"time", "level", "logger", "message", "request_id", ...}` plus the record's extra fields
(`logger.info("...", extra={"tool": "search_nodes"})`) and `exception` when there is one.

No API key is ever written: `redact` blanks MemoryHub keys wherever they appear and the values of
query parameters that carry credentials, in every formatted line (both formats) and in daphne's
access log (kernel/twisted_http.py). SSE clients must put their key in the URL (`?key=`), and
Django's 4xx lines carry the request, query string included.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import uuid
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("memoryhub_request_id", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
# What we accept from a caller: enough for UUIDs, ULIDs, AWS/GCP trace ids and the like; nothing
# that could break a log line or a header (no spaces, quotes, control characters).
_SANE = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")


# A MemoryHub key is `mh_<8 hex>_<secret>` (access/secrets.py): the public prefix stays
# (it names the key on the key pages and in the audit log), the secret goes.
_HUB_KEY = re.compile(r"(mh_[0-9a-f]{8}_)[A-Za-z0-9_-]+")
# Query parameters that carry a credential, whatever its shape (a key sent by mistake, a foreign token).
_CREDENTIAL_PARAMETER = re.compile(
    r"(?i)([?&;](?:key|api[_-]?key|x-api-key|apikey|token|access[_-]?token|auth|authorization|secret|password)=)"
    r"[^&;#\s\"'<>\\]*"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """`text` with every API key and credential query parameter's value replaced by [redacted]."""
    if "mh_" in text:
        text = _HUB_KEY.sub(rf"\1{REDACTED}", text)
    if "=" in text:
        text = _CREDENTIAL_PARAMETER.sub(rf"\1{REDACTED}", text)
    return text


class RedactingFormatter(logging.Formatter):
    """The plain format, with keys redacted from the whole line (message, extras, traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(incoming: str | bytes | None) -> str:
    """The caller's request id when it is sane, else a new one."""
    if isinstance(incoming, bytes):
        incoming = incoming.decode("latin-1")
    if incoming is not None:
        incoming = incoming.strip()
        if _SANE.fullmatch(incoming):
            return incoming
    return new_request_id()


def current_request_id() -> str | None:
    return request_id.get()


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request id of the context it was logged in (None outside a
    request), for every formatter; a record that already has one (extra=) keeps it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime", "request_id", "taskName"}
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict | list | tuple):
        try:
            json.dumps(value)
            return value
        except (TypeError, ValueError):
            pass
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601, ms), level, logger, message, request_id,
    then the record's extra fields, and `exception` / `stack` as text when present."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and not name.startswith("_") and name not in entry:
                entry[name] = _jsonable(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Redacted after encoding: every field at once, extras (Django's `request`) included.
        return redact(json.dumps(entry, ensure_ascii=False, default=str))
