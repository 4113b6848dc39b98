"""Namespace grant patterns.

A pattern is a namespace (`org:team:project`: exactly that namespace), a namespace prefix ending
in a wildcard segment (`org:team:*`: every namespace strictly below `org:team`), or `*` (every
namespace). Matching is by whole colon segments, so `org:team:*` matches `org:team:x` and
`org:team:x:y` but neither `org:team` itself nor `org:teammate`.
"""

from __future__ import annotations

import re

from access.exceptions import InvalidGrant

WILDCARD = "*"
MAX_PATTERN_LENGTH = 255
# The same segment alphabet as namespace names (access/namespaces.py).
_SEGMENT = r"[A-Za-z0-9_.@+\-]+"
_PATTERN = re.compile(rf"\*|{_SEGMENT}(?::{_SEGMENT})*(?::\*)?")


def validate(pattern: object) -> str:
    if not isinstance(pattern, str) or len(pattern) > MAX_PATTERN_LENGTH or not _PATTERN.fullmatch(pattern):
        raise InvalidGrant(
            f"{pattern!r} is not a namespace pattern: use a namespace ('org:team:project'), a prefix "
            "ending in a wildcard segment ('org:team:*'), or '*' for every namespace",
            pattern=pattern if isinstance(pattern, str) else repr(pattern),
        )
    return pattern


def _split(pattern: str) -> tuple[str, bool]:
    """(fixed part, is_wildcard): `org:team:*` -> ("org:team", True); `*` -> ("", True)."""
    if pattern == WILDCARD:
        return "", True
    if pattern.endswith(":" + WILDCARD):
        return pattern[:-2], True
    return pattern, False


def matches(pattern: str, namespace: str) -> bool:
    fixed, wildcard = _split(pattern)
    if not wildcard:
        return namespace == fixed
    return not fixed or namespace.startswith(fixed + ":")


def covers(outer: str, inner: str) -> bool:
    """True when every namespace `inner` matches is also matched by `outer`."""
    inner_fixed, inner_wildcard = _split(inner)
    if not inner_wildcard:
        return matches(outer, inner_fixed)
    outer_fixed, outer_wildcard = _split(outer)
    if not outer_wildcard:
        return False  # an exact pattern never covers an open-ended set
    return not outer_fixed or inner_fixed == outer_fixed or inner_fixed.startswith(outer_fixed + ":")
