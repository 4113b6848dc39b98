"""How memories are named on the wire: ids `mem_<observation id>` (times are `kernel.sql.iso`: ISO 8601 UTC, Z).

Every surface (REST, MCP, MemOS) shows memories this way; the ids are the graph's observation ids,
so a memory found by search (a free memory or a knowledge-graph observation) has one id everywhere.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.utils import timezone

from kernel.errors import InvalidArgument
from kernel.sql import stored_time

ID_PREFIX = "mem_"
_MEMORY_ID = re.compile(r"^mem_([1-9][0-9]{0,18})$")
# 19 digits can exceed SQLite's 64-bit INTEGER (the driver would raise OverflowError).
MAX_ROW_ID = 2**63 - 1


def memory_id(observation_id: int) -> str:
    return f"{ID_PREFIX}{observation_id}"


def parse_memory_id(value: Any) -> int:
    match = _MEMORY_ID.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) > MAX_ROW_ID:
        raise InvalidArgument(f"id must be a memory id such as 'mem_123', not {value!r}", field="id")
    return int(match.group(1))


def stored(value: Any) -> Any:
    """A time column as SQLite stores it (text, "YYYY-MM-DD HH:MM:SS[.ffffff]" UTC), whether the
    driver gave text (SQLite) or an aware datetime (PostgreSQL): times compared as text compare
    right on both backends."""
    if isinstance(value, datetime):
        return stored_time(value if timezone.is_aware(value) else value.replace(tzinfo=UTC))
    return value
