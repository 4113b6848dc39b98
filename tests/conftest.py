"""Shared fixtures. Tests run against a real SQLite file (see settings DATABASES TEST NAME)."""

from __future__ import annotations

import pytest

# Two tenants that must never see each other's data (the store is scoped by namespace; the API
# keys of the access layer map onto these).
ALICE = "org:alice:notes"
BOB = "org:bob:notes"


@pytest.fixture
def alice(db) -> str:
    return ALICE


@pytest.fixture
def bob(db) -> str:
    return BOB
