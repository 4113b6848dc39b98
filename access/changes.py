"""Who is changing tenant data right now, for the history every change records (graph/history.py).

The runner (`access.operations.run`) opens a `Change` around every write it runs: which operation,
through which surface, by which key and user. The stores below read it with `current()` when they
record a version, so no service signature carries the caller and no surface records history on its
own. Writes that do not go through the runner (a management command, the maintenance jobs, a
migration) open one themselves with `changing(...)`, or are recorded as `system`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from access.permissions import Access

# The edges a change can come through. "system": no caller (maintenance, expiry, migrations).
SURFACES = ("mcp", "rest", "memos", "console", "admin", "import", "system")

# One id per call, so a restore can bring back everything one call deleted: the process id and a
# counter, unique across the processes that share a database without asking it for a sequence.
_counter = itertools.count(1)


@dataclass(frozen=True)
class Change:
    operation: str
    surface: str = "system"
    key_id: int | None = None
    key_prefix: str | None = None
    user_id: int | None = None
    call: str = ""

    @property
    def key_label(self) -> str:
        return f"key:{self.key_prefix}" if self.key_prefix else ""


SYSTEM = Change(operation="", surface="system")

_current: ContextVar[Change | None] = ContextVar("memoryhub_change", default=None)


def new_call_id() -> str:
    return f"{os.getpid():x}-{next(_counter):x}"


def current() -> Change:
    """The change under way, or SYSTEM when nothing opened one."""
    return _current.get() or SYSTEM


@contextlib.contextmanager
def changing(
    operation: str,
    *,
    surface: str = "system",
    key_id: int | None = None,
    key_prefix: str | None = None,
    user_id: int | None = None,
) -> Iterator[Change]:
    """Make the block's writes one change: one call id, one caller. Nested blocks keep the
    outer call (an import that runs several operations is one change)."""
    outer = _current.get()
    if outer is not None:
        yield outer
        return
    if surface not in SURFACES:
        raise ValueError(f"unknown surface {surface!r}")
    change = Change(
        operation=operation,
        surface=surface,
        key_id=key_id,
        key_prefix=key_prefix,
        user_id=user_id,
        call=new_call_id(),
    )
    token = _current.set(change)
    try:
        yield change
    finally:
        _current.reset(token)


def by(access: Access, operation: str) -> contextlib.AbstractContextManager[Change]:
    """The change `access` makes with `operation` (what the runner opens around a write)."""
    surface = access.surface or "system"
    return changing(
        operation, surface=surface, key_id=access.key_id, key_prefix=access.key_prefix, user_id=access.user_id
    )
