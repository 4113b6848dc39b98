"""Grant patterns match whole colon segments; `covers` decides what a user may delegate."""

from __future__ import annotations

import pytest

from access import patterns
from access.exceptions import InvalidGrant
from access.permissions import Access, Grant, Permission


@pytest.mark.parametrize(
    ("pattern", "namespace", "expected"),
    [
        ("org:team:project", "org:team:project", True),
        ("org:team:project", "org:team:project:sub", False),
        ("org:team:project", "org:team", False),
        ("org:team:*", "org:team:project", True),
        ("org:team:*", "org:team:project:deep:er", True),
        ("org:team:*", "org:team", False),  # the wildcard needs at least one more segment
        ("org:team:*", "org:teammate", False),  # whole segments, not string prefixes
        ("org:team:*", "org:teammate:x", False),
        ("org:team:*", "org:tea:x", False),
        ("org:*", "org:team:project", True),
        ("*", "anything:at:all", True),
        ("*", "default", True),
        ("Org:*", "org:x", False),  # case-sensitive, like namespace names
    ],
)
def test_it_matches_whole_segments(pattern: str, namespace: str, expected: bool) -> None:
    assert patterns.matches(pattern, namespace) is expected


@pytest.mark.parametrize(
    "pattern",
    ["", "org:", ":org", "org::team", "org:*:x", "org*", "org:te*", "**", "org:**", "a b", "org:team:*:*", 5, None],
)
def test_it_rejects_malformed_patterns(pattern: object) -> None:
    with pytest.raises(InvalidGrant):
        patterns.validate(pattern)


@pytest.mark.parametrize(
    ("outer", "inner", "expected"),
    [
        ("*", "*", True),
        ("*", "org:team:*", True),
        ("org:*", "org:team:*", True),
        ("org:team:*", "org:team:*", True),
        ("org:team:*", "org:team:x", True),
        ("org:team:*", "org:team", False),
        ("org:team:*", "org:*", False),
        ("org:team:*", "*", False),
        ("org:team:*", "org:teammate:*", False),
        ("org:team", "org:team", True),
        ("org:team", "org:team:*", False),  # an exact namespace never covers an open-ended set
        ("org:team:x", "org:team:*", False),
    ],
)
def test_covers_means_every_match_of_inner_matches_outer(outer: str, inner: str, expected: bool) -> None:
    assert patterns.covers(outer, inner) is expected


def test_write_implies_read_and_the_strongest_grant_wins() -> None:
    access = Access(grants=(Grant("org:*", Permission.READ), Grant("org:team:*", Permission.WRITE)))
    assert access.can("org:team:x", Permission.WRITE)
    assert access.can("org:team:x", Permission.READ)
    assert access.can("org:other", Permission.READ)
    assert not access.can("org:other", Permission.WRITE)
    assert not access.can("elsewhere", Permission.READ)
    assert access.permission_for("org:team:x") is Permission.WRITE


def test_only_a_write_grant_on_everything_is_an_operator() -> None:
    assert Access(grants=(Grant("*", Permission.WRITE),)).is_operator()
    assert not Access(grants=(Grant("*", Permission.READ),)).is_operator()
    assert not Access(grants=(Grant("org:*", Permission.WRITE),)).is_operator()
