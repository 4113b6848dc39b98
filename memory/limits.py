"""The limits of free-text memories, each defined once here, and the checks of the values the
memory operations take.

The operations check every value themselves: they serve the REST API, the MCP tools, the MemOS API
and chat alike. The edges publish the same limits in their own schemas (REST serializers, MCP tool
arguments, MemOS request models) by importing them from here. Sizes in bytes (of a text, of a
query) are the store's limits (`graph.limits`, MEMORYHUB_LIMITS).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from graph import limits as store_limits
from kernel.errors import InvalidArgument

# Results of one memory search (REST topK, MemOS top_k, the MCP tools' top_k). The vector tools
# rank entities and allow more (vectors.selectors.MAX_TOP_K).
MAX_TOP_K = 50
DEFAULT_TOP_K = 10
MAX_TAGS = 64
MAX_TAG_LENGTH = 255
MAX_ACTOR_LENGTH = 255
# 100 years: beyond that a TTL is a mistake, not an intention.
MAX_TTL_MS = 100 * 365 * 24 * 3600 * 1000
# Most memories one listing returns; callers page with `offset`.
MAX_LIST_LIMIT = 1000
SEARCH_MODES = ("hybrid", "vector", "keyword")


def top_k(value: Any, *, maximum: int = MAX_TOP_K, default: int = DEFAULT_TOP_K, field: str = "topK") -> int:
    return store_limits.top_k(value, maximum=maximum, default=default, field=field)


def query(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgument("query must be a non-empty string", field="query")
    return store_limits.observation(value, field="query")


def actor(value: Any, *, field: str = "actorId") -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_ACTOR_LENGTH:
        raise InvalidArgument(f"{field} must be a string of at most {MAX_ACTOR_LENGTH} characters", field=field)
    if value:
        store_limits.observation(value, field=field)  # NUL and lone surrogates cannot be stored
    return value


def tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(tag, str) for tag in value):
        raise InvalidArgument("tags must be a list of strings", field="tags")
    if len(value) > MAX_TAGS:
        raise InvalidArgument(f"at most {MAX_TAGS} tags per memory", field="tags")
    for tag in value:
        if not tag.strip() or len(tag) > MAX_TAG_LENGTH:
            raise InvalidArgument(f"each tag must be 1 to {MAX_TAG_LENGTH} characters", field="tags")
        store_limits.observation(tag, field="tags")  # NUL and lone surrogates cannot be stored
    return list(dict.fromkeys(value))


def ttl(value: Any) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TTL_MS:
        raise InvalidArgument(f"ttlMs must be a whole number of milliseconds from 1 to {MAX_TTL_MS}", field="ttlMs")
    return timedelta(milliseconds=value)


def mode(value: Any) -> str:
    if value not in SEARCH_MODES:
        raise InvalidArgument("mode must be 'hybrid', 'vector' or 'keyword'", field="mode")
    return str(value)


def page(limit: Any, offset: Any) -> tuple[int, int]:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidArgument(f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}", field="limit")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgument("offset must be a whole number, 0 or more", field="offset")
    return limit, offset
