"""Validation of user input against the limits in settings.MEMORYHUB_LIMITS.

Each check raises InvalidArgument / LimitExceeded naming the field and the limit, before
anything is written, so a call that fails leaves nothing half-done.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings

from graph.exceptions import InvalidArgument, LimitExceeded


def limit(name: str) -> int:
    return int(settings.MEMORYHUB_LIMITS[name])


def _check_maximum(actual: int, *, field: str, limit_name: str, unit: str = "") -> None:
    maximum = limit(limit_name)
    if actual > maximum:
        raise LimitExceeded(
            f"{field} is {actual}{unit}; the limit is {maximum}{unit} ({limit_name})",
            limit=limit_name,
            maximum=maximum,
            actual=actual,
        )


def _utf8_size(value: str, field: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument(f"{field} is not valid Unicode (it contains a lone surrogate)") from None


def text(value: Any, *, field: str, limit_name: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise InvalidArgument(f"{field} must not be empty")
    if "\x00" in value:
        raise InvalidArgument(f"{field} must not contain NUL characters")
    _check_maximum(_utf8_size(value, field), field=field, limit_name=limit_name, unit=" bytes")
    return value


def name(value: Any, *, field: str = "name") -> str:
    return text(value, field=field, limit_name="MAX_NAME_BYTES")


def observation(value: Any, *, field: str = "observation") -> str:
    return text(value, field=field, limit_name="MAX_OBSERVATION_BYTES")


def items(value: Any, *, field: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise InvalidArgument(f"{field} must be a list")
    _check_maximum(len(value), field=field, limit_name="MAX_ITEMS_PER_REQUEST", unit=" items")
    return value


def names(value: Any, *, field: str) -> list[str]:
    """A list of entity names (`names`, `entityNames`), each checked like a name."""
    return [name(item, field=f"{field}[{i}]") for i, item in enumerate(items(value, field=field))]


def mapping(value: Any, *, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field} must be an object")
    return value


def integer(value: Any, *, field: str, default: int, minimum: int, limit_name: str | None = None) -> int:
    """An optional non-negative count such as `limit`, `offset` or `depth`."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{field} must be an integer")
    if value < minimum:
        raise InvalidArgument(f"{field} must be at least {minimum}")
    if limit_name is not None:
        _check_maximum(value, field=field, limit_name=limit_name)
    return value
