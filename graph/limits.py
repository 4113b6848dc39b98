"""Validation of user input against the limits in settings.MEMORYHUB_LIMITS.

Each check raises InvalidArgument / LimitExceeded naming the field and the limit, before
anything is written, so a call that fails leaves nothing half-done.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings

from graph.exceptions import InvalidArgument, LimitExceeded

# The largest count (offset, page) accepted: every JSON client reads it exactly, and a count of
# one page size times it still fits SQLite's 64-bit integers (beyond them: OverflowError).
MAX_INTEGER = 2**53 - 1


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
    if value > MAX_INTEGER:
        raise InvalidArgument(f"{field} must be at most {MAX_INTEGER}")
    if limit_name is not None:
        _check_maximum(value, field=field, limit_name=limit_name)
    return value


def top_k(value: Any, *, maximum: int, default: int, field: str = "topK") -> int:
    """How many results a ranked read returns: 1 to `maximum` (each caller's own limit), `default`
    when not given."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidArgument(f"{field} must be a whole number from 1 to {maximum}", field=field)
    return value


def short_lists(data: Any, *, longer: Mapping[str, int | None] | None = None) -> Any:
    """Refuse a raw object (before a schema validates it) any of whose lists is over the item
    limit: MAX_ITEMS_PER_REQUEST, or `longer[key]` for the keys given (None: the schema checks
    the length itself). Validating first would check, and report, every item of a 200,000-item
    list, and each may be wrong; the limit is checked by length alone. Anything but a dict is
    returned as is, for the schema to refuse."""
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(value, list):
                continue
            if longer is None or key not in longer:
                _check_maximum(len(value), field=str(key), limit_name="MAX_ITEMS_PER_REQUEST", unit=" items")
                continue
            maximum = longer[key]
            if maximum is not None and len(value) > maximum:
                raise LimitExceeded(
                    f"{key} is {len(value)} items; the limit is {maximum} items", maximum=maximum, actual=len(value)
                )
    return data


def unicode_strings(data: Any, *, field: str = "arguments") -> None:
    """Refuse a decoded JSON value holding a lone surrogate in any string or key (`"\\ud800"` is
    valid JSON but no text that can be stored, embedded or compared in SQLite), naming where it is.
    Iterative, so deep nesting costs no recursion."""
    pending: list[tuple[str, Any]] = [(field, data)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str):
            _utf8_size(value, where)
        elif isinstance(value, dict):
            for key, item in value.items():
                _utf8_size(str(key), where)
                pending.append((f"{where}.{key}" if where else str(key), item))
        elif isinstance(value, list):
            pending.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
