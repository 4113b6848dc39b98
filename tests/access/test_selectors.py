"""Which existing namespaces a caller reaches: SQL ranges must agree with `patterns.matches`."""

from __future__ import annotations

import pytest

from access import patterns, selectors
from access.permissions import Access, Grant, Permission
from graph.models import Namespace

NAMES = [
    "org",
    "org:team",
    "org:team:a",
    "org:team:a:deep",
    "org:team_b",
    "org:team-b:x",
    "org:teammate",
    "org:teammate:x",
    "org:team;x",  # not a valid namespace, but it sorts right after the range boundary
    "orgs:team:x",
    "user:dana:default",
    "zzz",
]


@pytest.fixture
def namespaces(db) -> None:
    Namespace.objects.bulk_create(Namespace(name=name) for name in NAMES)


@pytest.mark.parametrize(
    "grants",
    [
        ["org:team:*"],
        ["org:*"],
        ["org:team"],
        ["*"],
        ["org:team:*", "user:dana:*"],
        ["nothing:here"],
        [],
    ],
)
def test_reachable_namespaces_agree_with_pattern_matching(namespaces, grants: list[str]) -> None:
    access = Access(grants=tuple(Grant(pattern, Permission.READ) for pattern in grants))
    expected = sorted(name for name in NAMES if any(patterns.matches(p, name) for p in grants))
    assert list(selectors.reachable_namespaces(access).values_list("name", flat=True)) == expected


def test_reachable_namespaces_can_be_filtered_by_text(namespaces) -> None:
    access = Access(grants=(Grant("org:*", Permission.READ),))
    assert list(selectors.reachable_namespaces(access, contains="mate").values_list("name", flat=True)) == [
        "org:teammate",
        "org:teammate:x",
    ]
