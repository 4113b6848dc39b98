"""Users of the console's tests (tests/console/memory_users.py): alice writes org:alice:*, bob
org:bob:*, carol reads org:alice:*, each signed in, with an API key of the same reach."""

from __future__ import annotations

from typing import Any

import pytest

from tests.console.memory_users import User, make_user


@pytest.fixture
def as_alice(db: Any) -> User:
    return make_user("alice", "org:alice:*", "write")


@pytest.fixture
def as_bob(db: Any) -> User:
    return make_user("bob", "org:bob:*", "write")


@pytest.fixture
def as_carol(db: Any) -> User:
    return make_user("carol", "org:alice:*", "read")
