"""The base of every domain error MemoryHub raises.

Apps subclass `DomainError` in their own `exceptions.py`; each edge (DRF, ninja, MCP, the
command line) translates it once into its own format using `code`, `message` and `details`.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **({"details": self.details} if self.details else {})}


class StoreBusy(DomainError):
    """The database stayed busy longer than a writer waits: SQLite's write lock held past the busy
    timeout (MEMORYHUB_SQLITE_BUSY_TIMEOUT_MS), or a PostgreSQL lock timeout, deadlock or
    serialization failure. The transaction that waited was rolled back; the call can be sent again."""

    code = "store_busy"

    def __init__(self) -> None:
        super().__init__("The store is busy with other writes; retry in a moment.", retry_after=1)


class InvalidArgument(DomainError):
    """A malformed or out-of-range argument, from any layer (a namespace name, a graph input, ...)."""

    code = "invalid_argument"


# The one text of every authentication failure (access.exceptions.NotAuthenticated, and DRF's own
# NotAuthenticated in kernel/http_errors.py): a caller cannot tell a missing key from a bad one.
API_KEY_REQUIRED = "A valid API key is required: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'."
